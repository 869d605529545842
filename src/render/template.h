// A Handlebars-compatible template engine: compile once per campaign, render per recipient.
//
// Supported: paths (a.b, this, ../, @root), {{#if}}/{{else}}/{{#unless}}, {{#each}} over arrays
// and objects with @index/@first/@last/@key and block params, {{#with}}, {{else if}} chains,
// comments ({{! }} and {{!-- --}}), whitespace control ({{~ ~}}), triple-stash and {{& }},
// partials ({{> name}}) with indentation and hash/context arguments, inline partials
// ({{#*inline}}), partial blocks ({{#> name}}fallback{{/name}}, {{> @partial-block}}), and
// the `lookup` and `log` helpers. Output matches handlebars.js 4.x byte for byte for these,
// except (each pinned in this module's tests):
//  - #each over an object visits keys in nlohmann::json's sorted order (index-like keys first,
//    ascending, as in JS), not in the insertion order that nlohmann::json does not keep;
//  - adjacent unescaped values are concatenated ({{{a}}}{{{b}}} with 1 and 2 gives "12";
//    handlebars.js adds them up to "3");
//  - unknown helpers and wrong argument counts of built-in helpers are compile errors, where
//    handlebars.js throws when the tag is rendered.
// Not supported (compile errors): custom helpers, decorators other than inline, raw blocks
// ({{{{raw}}}}) and {{= }} delimiter changes.
//
// A compiled Template is immutable and thread-safe to render from many threads at once.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace magnetic::render {

enum class Escape {
  kHtml,  // {{x}} escapes & < > " ' ` = as handlebars.js does (the Html part)
  kNone,  // {{x}} is written as is (Subject and Text parts)
};

struct RenderOptions {
  Escape escape = Escape::kHtml;
  // When true, a {{path}} (or helper argument other than a condition of #if/#unless) whose
  // value is missing fails the render with an error naming the variable, line and column.
  bool strict = false;
  // When true, a name not found in the current context is looked up in the enclosing contexts
  // too (mustache's rule; handlebars.js's `compat` compile option).
  bool compat = false;

  // A template comes from whoever sends it, and a few nested #each over a modest array expand
  // without bound, so a caller rendering untrusted templates sets both limits below. 0 means no
  // limit. Each applies to one render() call.
  //
  // The most bytes the render may append to `out`. A render that would write more stops before
  // writing past it and fails with "<name>: line L, column C: the rendered part exceeds the
  // output limit of N bytes (max_output)"; `out` then holds what was written before.
  size_t max_output = 0;
  // The most steps the render may take. A step is a node of the template visited or one
  // iteration of a block (#each, or a section over an array), plus, for what costs in proportion
  // to the data rather than the template, one step per array element or string byte a
  // comparison or lookup reads (a context compared with an array under handlebars' context-stack
  // rule, `.length` or `[i]` of a long string). It bounds loops that write little or nothing. A
  // render past it fails with "<name>: line L, column C: the render exceeds the step limit of N
  // steps (max_steps)".
  size_t max_steps = 0;
};

class Template;
using Partials = std::map<std::string, std::shared_ptr<const Template>, std::less<>>;

// One variable the template reads from the root data, e.g. "first_name" or "address.city",
// with where it first appears. Used to check a template against CSV columns before sending.
struct VariableRef {
  std::string path;
  int line = 0;
  int column = 0;
};

class Template {
 public:
  // Compiles source. On a syntax error the Status message reads
  // "<name>: line L, column C: <what is wrong>", with 1-based line and column.
  static Result<std::shared_ptr<const Template>> compile(std::string_view source,
                                                         std::string_view name = "template");

  // Renders into out (appending). Partials are looked up first among the template's inline
  // partials, then in `partials`. A missing partial is an error, as in handlebars.js.
  Status render(const nlohmann::json& data, const RenderOptions& options, std::string& out,
                const Partials* partials = nullptr) const;
  Result<std::string> render(const nlohmann::json& data, const RenderOptions& options,
                             const Partials* partials = nullptr) const;

  // Root-context variables read by the template (outside #each/#with bodies, plus @root.x and
  // ../ paths that climb back to the root), in order of first appearance, without duplicates.
  const std::vector<VariableRef>& root_variables() const;

  const std::string& name() const;

  struct Impl;
  explicit Template(std::unique_ptr<Impl> impl);
  const Impl& impl() const { return *impl_; }  // for the renderer of a calling template
  ~Template();

 private:
  std::unique_ptr<Impl> impl_;
};

// handlebars.js's escapeExpression: & < > " ' ` = to entities. Appends to out.
void escape_html(std::string_view text, std::string& out);

}  // namespace magnetic::render
