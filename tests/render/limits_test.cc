// The render limits (RenderOptions::max_output, max_steps) and the nesting bound: templates that
// expand without bound stop with an exact error, and renders within the limits come out exactly
// as without them.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "render/template.h"

namespace magnetic::render {
namespace {

using nlohmann::json;

// What the callers outside this module set: SES's 40 MB message size and ten million steps.
constexpr size_t kCallerMaxOutput = 40 * 1024 * 1024;
constexpr size_t kCallerMaxSteps = 10'000'000;

struct Limits {
  size_t output = 0;
  size_t steps = 0;
  Escape escape = Escape::kHtml;
  bool compat = false;
};

// Renders `tpl` with `data` (JSON); returns the output or "ERROR: <message>".
std::string render(const std::string& tpl, const json& data, const Limits& limits,
                   const std::map<std::string, std::string>& partials = {}) {
  Partials compiled;
  for (const auto& [name, source] : partials) {
    auto t = Template::compile(source, name);
    if (!t.is_ok()) return "ERROR: " + t.status().message();
    compiled[name] = *t;
  }
  auto t = Template::compile(tpl);
  if (!t.is_ok()) return "ERROR: " + t.status().message();
  RenderOptions options;
  options.escape = limits.escape;
  options.compat = limits.compat;
  options.max_output = limits.output;
  options.max_steps = limits.steps;
  auto out = (*t)->render(data, options, &compiled);
  if (!out.is_ok()) return "ERROR: " + out.status().message();
  return *out;
}

json numbers(int n) {
  json a = json::array();
  for (int i = 0; i < n; ++i) a.push_back(i);
  return json{{"a", a}};
}

const std::string kOutputBomb =
    "{{#each @root.a}}{{#each @root.a}}{{#each @root.a}}{{#each @root.a}}xxxxxxxxxx"
    "{{/each}}{{/each}}{{/each}}{{/each}}";
const std::string kSilentBomb =
    "{{#each @root.a}}{{#each @root.a}}{{#each @root.a}}{{#each @root.a}}"
    "{{/each}}{{/each}}{{/each}}{{/each}}";

// ---- the faults ----

TEST(RenderLimits, nested_each_bomb_stops_at_output_limit) {
  // 100 items write 1 GB without a limit; 300 items would write 81 GB.
  const std::string want =
      "ERROR: template: line 1, column 69: the rendered part exceeds the output limit of "
      "41943040 bytes (max_output)";
  EXPECT_EQ(render(kOutputBomb, numbers(100), {kCallerMaxOutput, kCallerMaxSteps}), want);
  EXPECT_EQ(render(kOutputBomb, numbers(300), {kCallerMaxOutput, kCallerMaxSteps}), want);
  // With no output limit the step limit still stops it.
  EXPECT_EQ(render(kOutputBomb, numbers(300), {0, kCallerMaxSteps}),
            "ERROR: template: line 1, column 69: the render exceeds the step limit of 10000000 "
            "steps (max_steps)");
}

TEST(RenderLimits, nested_each_bomb_without_output_stops_at_step_limit) {
  // 1000 items: 10^12 iterations that write nothing.
  EXPECT_EQ(render(kSilentBomb, numbers(1000), {kCallerMaxOutput, kCallerMaxSteps}),
            "ERROR: template: line 1, column 52: the render exceeds the step limit of 10000000 "
            "steps (max_steps)");
  // The same written with plain names loops only under compat's lookup through the contexts
  // (in handlebars' own rules `a` of a number is nothing).
  const std::string plain =
      "{{#each a}}{{#each a}}{{#each a}}{{#each a}}{{/each}}{{/each}}{{/each}}{{/each}}";
  EXPECT_EQ(render(plain, numbers(1000), {kCallerMaxOutput, kCallerMaxSteps}), "");
  Limits compat{kCallerMaxOutput, kCallerMaxSteps};
  compat.compat = true;
  EXPECT_EQ(render(plain, numbers(1000), compat),
            "ERROR: template: line 1, column 34: the render exceeds the step limit of 10000000 "
            "steps (max_steps)");
}

TEST(RenderLimits, exponential_partial_recursion_stops_at_step_limit) {
  // Each level calls the partial twice on a context one level down: 2^40 calls in all, each
  // well within the partial depth limit.
  json data = json::object();
  for (int i = 0; i < 40; ++i) data = json{{"c", data}};
  EXPECT_EQ(render("{{> p}}", data, {kCallerMaxOutput, kCallerMaxSteps},
                   {{"p", "{{#with c}}{{> p}}{{> p}}{{/with}}"}}),
            "ERROR: p: line 1, column 12: the render exceeds the step limit of 10000000 steps "
            "(max_steps)");
}

TEST(RenderLimits, recursive_partial_in_deep_blocks_is_refused_not_overflowed) {
  // 199 blocks in a partial that calls itself: within the partial depth limit it would nest
  // 12,800 programs and overflow the stack.
  std::string p;
  for (int i = 0; i < 199; ++i) p += "{{#if a}}";
  p += "{{> self}}";
  for (int i = 0; i < 199; ++i) p += "{{/if}}";
  EXPECT_EQ(render("{{> self}}", json{{"a", 1}}, {}, {{"self", p}}),
            "ERROR: self: line 1, column 892: blocks and partials nested more than 500 deep "
            "(recursive partial?)");
  // #each levels take more stack than #if levels.
  std::string each;
  for (int i = 0; i < 150; ++i) each += "{{#each @root.a}}";
  each += "{{> self}}";
  for (int i = 0; i < 150; ++i) each += "{{/each}}";
  EXPECT_EQ(render("{{> self}}", json{{"a", {1}}}, {}, {{"self", each}}),
            "ERROR: self: line 1, column 783: blocks and partials nested more than 500 deep "
            "(recursive partial?)");
}

TEST(RenderLimits, comparing_contexts_with_a_large_array_stays_linear) {
  // handlebars' context-stack rule compares each item with the array (JS ==, so with its
  // String()). Building that string per item cost n^2 for nothing written; a number is now
  // compared without building it, and a string compared against a prefix of it.
  json data = numbers(20000);
  EXPECT_EQ(render("{{#with a}}{{#each this}}{{/each}}{{/with}}", data, {0, 100000}), "");
  json strings = json::array();
  for (int i = 0; i < 20000; ++i) strings.push_back("s");
  EXPECT_EQ(
      render("{{#with a}}{{#each this}}{{/each}}{{/with}}", json{{"a", strings}}, {0, 100000}), "");
}

// ---- the output limit ----

TEST(RenderLimits, OutputExactlyAtTheLimitPassesAndOneMoreFails) {
  json data = json{{"a", {1, 2, 3}}, {"s", "<&"}, {"arr", {"<", ">"}}};
  struct Case {
    std::string tpl;
    std::string want;
    std::string error;  // the message when the limit is one byte short
  };
  const std::vector<Case> cases = {
      {"{{#each a}}xy{{/each}}", "xyxyxy", "line 1, column 12"},
      {"{{s}}", "&lt;&amp;", "line 1, column 1"},
      {"{{{s}}}", "<&", "line 1, column 1"},
      {"{{a}}", "1,2,3", "line 1, column 1"},
      {"{{{a}}}", "1,2,3", "line 1, column 1"},
      {"{{arr}}", "&lt;,&gt;", "line 1, column 1"},
      {"{{#with a}}{{lookup this 2}}{{lookup this 0}}{{/with}}", "31", "line 1, column 29"},
      {"{{#if s}}[{{s}}]{{else}}no{{/if}}", "[&lt;&amp;]", "line 1, column 16"},
      {"{{#if s}}[{{s}}]{{else}}no{{/if}}!", "[&lt;&amp;]!", "line 1, column 34"},
      {"{{#*inline \"i\"}}<{{this}}>{{/inline}}{{#each a}}{{> i}}{{/each}}", "<1><2><3>",
       "line 1, column 26"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.tpl);
    ASSERT_EQ(render(c.tpl, data, {}), c.want);
    EXPECT_EQ(render(c.tpl, data, {c.want.size()}), c.want);
    EXPECT_EQ(render(c.tpl, data, {c.want.size() - 1}),
              "ERROR: template: " + c.error + ": the rendered part exceeds the output limit of " +
                  std::to_string(c.want.size() - 1) + " bytes (max_output)");
  }
}

TEST(RenderLimits, OutputLimitCoversPartialsBlocksAndIndentation) {
  std::map<std::string, std::string> partials = {
      {"lines", "{{a}}\n{{b}}\n"}, {"frame", "<{{> @partial-block}}>"}, {"card", "[{{name}}]"}};
  json data = json{{"a", "A"}, {"b", "B"}, {"name", "N"}};
  // "x\n" + "A\nB\n" from the partial, then its indentation "  " twice, then "y".
  const std::string indented = "x\n  {{> lines}}\ny";
  ASSERT_EQ(render(indented, data, {}, partials), "x\n  A\n  B\ny");
  EXPECT_EQ(render(indented, data, {11}, partials), "x\n  A\n  B\ny");
  // (The text after a standalone tag starts where its stripped newline was.)
  EXPECT_EQ(render(indented, data, {10}, partials),
            "ERROR: template: line 2, column 14: the rendered part exceeds the output limit of 10 "
            "bytes (max_output)");
  // Room for the partial's lines but not for their indentation.
  EXPECT_EQ(render(indented, data, {9}, partials),
            "ERROR: template: line 2, column 3: the rendered part exceeds the output limit of 9 "
            "bytes (max_output)");
  // Inside a partial the error names the partial.
  EXPECT_EQ(render("{{> card}}", data, {2}, partials),
            "ERROR: card: line 1, column 10: the rendered part exceeds the output limit of 2 "
            "bytes (max_output)");
  EXPECT_EQ(render("{{#> frame}}body{{/frame}}", data, {6}, partials), "<body>");
  EXPECT_EQ(render("{{#> frame}}body{{/frame}}", data, {5}, partials),
            "ERROR: frame: line 1, column 22: the rendered part exceeds the output limit of 5 "
            "bytes (max_output)");
}

TEST(RenderLimits, OutputLimitCountsWhatOneRenderAppends) {
  auto t = Template::compile("Hi {{name}}!", "subject");
  ASSERT_TRUE(t.is_ok());
  RenderOptions options;
  options.max_output = 5;
  std::string out = "already here: ";
  ASSERT_TRUE((*t)->render(json{{"name", "A"}}, options, out).is_ok());
  ASSERT_TRUE((*t)->render(json{{"name", "B"}}, options, out).is_ok());
  EXPECT_EQ(out, "already here: Hi A!Hi B!");
  Status s = (*t)->render(json{{"name", "CD"}}, options, out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "subject: line 1, column 12: the rendered part exceeds the output limit of 5 bytes "
            "(max_output)");
  // What was written before the text that did not fit stays; nothing past the limit is.
  EXPECT_EQ(out, "already here: Hi A!Hi B!Hi CD");
}

TEST(RenderLimits, LargeValuesAreRefusedBeforeTheyAreWritten) {
  // One value as long as the limit allows passes; one byte more is refused without writing any
  // of it, escaped or not, as a string or as an array.
  json data = json{{"s", std::string(1000, 'a')}, {"q", std::string(1000, '"')}};
  json arr = json::array();
  for (int i = 0; i < 500; ++i) arr.push_back("a");
  data["arr"] = arr;  // "a,a,...": 999 bytes
  EXPECT_EQ(render("{{s}}", data, {1000}).size(), 1000u);
  EXPECT_EQ(render("{{s}}", data, {999}),
            "ERROR: template: line 1, column 1: the rendered part exceeds the output limit of 999 "
            "bytes (max_output)");
  EXPECT_EQ(render("{{q}}", data, {6000}).size(), 6000u);  // &quot; for each
  EXPECT_EQ(render("{{q}}", data, {5999}),
            "ERROR: template: line 1, column 1: the rendered part exceeds the output limit of "
            "5999 bytes (max_output)");
  EXPECT_EQ(render("{{{arr}}}", data, {999}).size(), 999u);
  EXPECT_EQ(render("{{{arr}}}", data, {998}),
            "ERROR: template: line 1, column 1: the rendered part exceeds the output limit of 998 "
            "bytes (max_output)");
  EXPECT_EQ(render("{{arr}}", data, {998}),
            "ERROR: template: line 1, column 1: the rendered part exceeds the output limit of 998 "
            "bytes (max_output)");
}

// ---- the step limit ----

TEST(RenderLimits, StepsExactlyAtTheLimitPassAndOneMoreFails) {
  // One step for the #each node, then per item one for the iteration and one for the text.
  json data = json{{"a", {1, 2, 3}}};
  EXPECT_EQ(render("{{#each a}}x{{/each}}", data, {0, 7}), "xxx");
  EXPECT_EQ(render("{{#each a}}x{{/each}}", data, {0, 6}),
            "ERROR: template: line 1, column 12: the render exceeds the step limit of 6 steps "
            "(max_steps)");
  // An empty body: the iterations alone count.
  EXPECT_EQ(render("{{#each a}}{{/each}}", data, {0, 4}), "");
  EXPECT_EQ(render("{{#each a}}{{/each}}", data, {0, 3}),
            "ERROR: template: line 1, column 1: the render exceeds the step limit of 3 steps "
            "(max_steps)");
}

TEST(RenderLimits, StepsCountWhatLookupsReadFromTheData) {
  // `.length` of a string reads all of it: per item the iteration, the #if and 1000 bytes.
  json data = json{{"a", {1, 2, 3}}, {"s", std::string(1000, 'z')}};
  const std::string tpl = "{{#each a}}{{#if ../s.length}}{{/if}}{{/each}}";
  EXPECT_EQ(render(tpl, data, {0, 3007}), "");
  EXPECT_EQ(render(tpl, data, {0, 3006}),
            "ERROR: template: line 1, column 12: the render exceeds the step limit of 3006 steps "
            "(max_steps)");

  // An array as a lookup key is turned into its String(), "x,x,...": 199 bytes for 100 items.
  // It is built no further than the steps left allow.
  json keys = json::array();
  for (int i = 0; i < 100; ++i) keys.push_back("x");
  json lookup_data = json{{"a", {1, 2, 3}}, {"k", keys}, {"o", json::object()}};
  const std::string lookup = "{{#each a}}{{lookup ../o ../k}}{{/each}}";
  EXPECT_EQ(render(lookup, lookup_data, {0, 604}), "");
  EXPECT_EQ(render(lookup, lookup_data, {0, 603}),
            "ERROR: template: line 1, column 12: the render exceeds the step limit of 603 steps "
            "(max_steps)");
}

// ---- nothing else changes ----

TEST(RenderLimits, TemplatesWithinTheLimitsRenderAsWithout) {
  const std::string tpl =
      "Hi {{first_name}} {{{raw}}},\n"
      "{{#each items as |it i|}}\n"
      "  {{i}}. {{it.name}} {{#if it.vip}}(vip){{else}}-{{/if}} {{lookup ../prices it.sku}}\n"
      "{{else}}\n"
      "  nothing\n"
      "{{/each}}\n"
      "{{#with address}}{{city}}, {{../country}}{{/with}}\n"
      "  {{> footer}}\n"
      "{{#*inline \"tag\"}}<{{this}}>{{/inline}}{{#each tags}}{{> tag}}{{/each}}";
  json data = json::parse(R"({"first_name":"Zoë & <b>","raw":"<i>x</i>","country":"FR",
    "items":[{"name":"a\"b","sku":"k1","vip":true},{"name":"c","sku":"k2"}],
    "prices":{"k1":1.5,"k2":20},"address":{"city":"Lyon"},"tags":["x","y=z"]})");
  std::map<std::string, std::string> partials = {{"footer", "-- \n{{first_name}}\n"}};
  std::string plain = render(tpl, data, {}, partials);
  EXPECT_EQ(plain,
            "Hi Zoë &amp; &lt;b&gt; <i>x</i>,\n"
            "  0. a&quot;b (vip) 1.5\n"
            "  1. c - 20\n"
            "Lyon, FR\n"
            "  -- \n"
            "  Zoë &amp; &lt;b&gt;\n"
            "<x><y&#x3D;z>");
  EXPECT_EQ(render(tpl, data, {kCallerMaxOutput, kCallerMaxSteps}, partials), plain);
  EXPECT_EQ(render(tpl, data, {plain.size(), kCallerMaxSteps}, partials), plain);
  Limits none;
  none.escape = Escape::kNone;
  Limits limited{kCallerMaxOutput, kCallerMaxSteps, Escape::kNone};
  EXPECT_EQ(render(tpl, data, limited, partials), render(tpl, data, none, partials));
}

}  // namespace
}  // namespace magnetic::render
