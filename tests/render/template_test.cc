// Unit tests of the template engine, one feature at a time. Expected strings are handlebars.js
// 4.7's output for the same template and data, except where a test says otherwise.
#include "render/template.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace magnetic::render {
namespace {

using nlohmann::json;

// Renders `tpl` with `data` (JSON text); returns the output or "ERROR: <message>".
std::string render(const std::string& tpl, const std::string& data = "{}",
                   Escape escape = Escape::kHtml,
                   const std::map<std::string, std::string>& partials = {}, bool strict = false) {
  Partials compiled;
  for (const auto& [name, source] : partials) {
    auto t = Template::compile(source, name);
    if (!t.is_ok()) return "ERROR: " + t.status().message();
    compiled[name] = *t;
  }
  auto t = Template::compile(tpl);
  if (!t.is_ok()) return "ERROR: " + t.status().message();
  RenderOptions options;
  options.escape = escape;
  options.strict = strict;
  auto out = (*t)->render(json::parse(data), options, &compiled);
  if (!out.is_ok()) return "ERROR: " + out.status().message();
  return *out;
}

std::string compile_error(const std::string& tpl) {
  auto t = Template::compile(tpl, "body.html");
  return t.is_ok() ? "compiled" : t.status().message();
}

TEST(RenderPaths, DottedSlashThisAndSegmentLiterals) {
  EXPECT_EQ(render("{{a.b}} {{a/b}} {{this.a.b}} {{./a.b}} {{[a].[b]}}", R"({"a":{"b":"x"}})"),
            "x x x x x");
  EXPECT_EQ(
      render("{{[weird key]}} {{a.[b c]}} {{a.[0]}}", R"({"weird key":1,"a":{"b c":2,"0":3}})"),
      "1 2 3");
  EXPECT_EQ(render("{{a.length}} {{s.length}} {{s.[1]}}", R"({"a":[1,2,3],"s":"héllo"})"), "3 5 é");
}

TEST(RenderPaths, ParentAndRoot) {
  EXPECT_EQ(render("{{#each items}}{{name}}-{{../title}} {{/each}}",
                   R"({"title":"T","items":[{"name":"a"},{"name":"b"}]})"),
            "a-T b-T ");
  EXPECT_EQ(render("{{#with a}}{{#with b}}{{../../top}}{{../x}}{{/with}}{{/with}}",
                   R"({"top":"R","a":{"x":"A","b":{"y":1}}})"),
            "RA");
  EXPECT_EQ(render("{{#each list}}{{@root.title}}{{/each}}", R"({"title":"T","list":[1,2]})"),
            "TT");
}

TEST(RenderPaths, ContextStackSkipsEqualContexts) {
  // handlebars.js pushes a context only when it differs (==) from the current one: the inner
  // 1 equals the outer 1, so ../ reaches the root.
  EXPECT_EQ(render("{{#each a}}{{#each ../b}}{{../x}}{{/each}}{{/each}}",
                   R"({"x":"root","a":[1],"b":[1]})"),
            "root");
}

TEST(RenderPaths, MissingValuesRenderEmpty) {
  EXPECT_EQ(render("[{{nope}}] [{{nope.deeper}}] [{{../up}}] [{{@index}}]"), "[] [] [] []");
}

TEST(RenderConditionals, IfElseUnlessAndChains) {
  EXPECT_EQ(
      render("{{#if a}}yes{{else}}no{{/if}}|{{#if b}}yes{{else}}no{{/if}}", R"({"a":1,"b":0})"),
      "yes|no");
  EXPECT_EQ(render("{{#if a}}A{{else if b}}B{{else if c}}C{{else}}D{{/if}}", R"({"c":true})"), "C");
  EXPECT_EQ(render("{{#unless a}}not a{{else}}a{{/unless}}", R"({"a":[]})"), "not a");
}

TEST(RenderConditionals, TruthinessIsJavaScripts) {
  // Empty array, 0, "", null and false are falsy; {} is truthy; includeZero admits 0.
  EXPECT_EQ(render("{{#if e}}1{{/if}}{{#if z}}2{{/if}}{{#if s}}3{{/if}}{{#if o}}4{{/if}}"
                   "{{#if n}}5{{/if}}{{#if f}}6{{/if}}{{#if z includeZero=true}}7{{/if}}",
                   R"({"e":[],"z":0,"s":"","o":{},"n":null,"f":false})"),
            "47");
}

TEST(RenderEach, ArraysWithDataVariables) {
  EXPECT_EQ(render("{{#each a}}{{@index}}:{{this}}{{#if @first}}F{{/if}}{{#if @last}}L{{/if}} "
                   "{{/each}}",
                   R"({"a":["x","y","z"]})"),
            "0:xF 1:y 2:zL ");
  EXPECT_EQ(render("{{#each a}}x{{else}}empty{{/each}}", R"({"a":[]})"), "empty");
  EXPECT_EQ(
      render("{{#each a as |item i|}}{{i}}={{item.n}} {{/each}}", R"({"a":[{"n":"p"},{"n":"q"}]})"),
      "0=p 1=q ");
}

TEST(RenderEach, ObjectKeysInJsOrderOverSortedJson) {
  // Array-index keys first, ascending, as Object.keys() gives them. The other keys come in
  // nlohmann::json's (sorted) order: handlebars.js would give insertion order, "b" before "a".
  EXPECT_EQ(render("{{#each o}}{{@key}}={{this}}{{#unless @last}},{{/unless}}{{/each}}",
                   R"({"o":{"b":2,"a":1,"10":3,"2":4}})"),
            "2=4,10=3,a=1,b=2");
}

TEST(RenderWith, ContextBlockParamAndElse) {
  EXPECT_EQ(render("{{#with p as |q|}}{{first}} {{q.last}}{{/with}}{{#with missing}}x{{else}}"
                   "none{{/with}}",
                   R"({"p":{"first":"A","last":"B"}})"),
            "A Bnone");
}

TEST(RenderLookup, ObjectsArraysAndParents) {
  EXPECT_EQ(render("{{lookup o k}} {{lookup a 1}} {{#each a}}{{lookup ../b @index}}{{/each}}",
                   R"({"o":{"x":"ox"},"k":"x","a":["a0","a1"],"b":["b0","b1"]})"),
            "ox a1 b0b1");
  EXPECT_EQ(render("{{lookup (lookup this \"o\") \"x\"}}", R"({"o":{"x":"deep"}})"), "deep");
}

TEST(RenderSections, MustacheStyleBlocks) {
  EXPECT_EQ(render("{{#o}}{{k}}{{/o}}{{#l}}{{.}}{{/l}}{{^e}}empty{{/e}}{{#t}}T{{/t}}",
                   R"({"o":{"k":"K"},"l":[1,2],"e":[],"t":true})"),
            "K12emptyT");
}

TEST(RenderWhitespace, CommentsTildesAndStandaloneLines) {
  EXPECT_EQ(render("a{{! short }}b{{!-- has }} inside --}}c"), "abc");
  EXPECT_EQ(render("a  {{~b~}}  c {{~#if t~}}  d  {{~/if~}} e", R"({"b":"B","t":true})"), "aBcde");
  EXPECT_EQ(
      render("x\n  {{#if t}}\n  y\n  {{else}}\n  n\n  {{/if}}\nz\n  {{! c }}\nw", R"({"t":true})"),
      "x\n  y\nz\nw");
  EXPECT_EQ(render("a\r\n{{#if t}}\r\nb\r\n{{/if}}\r\nc", R"({"t":true})"), "a\r\nb\r\nc");
}

TEST(RenderEscaping, HtmlEntitiesTripleStashAndNoEscape) {
  EXPECT_EQ(render("{{s}} {{{s}}} {{&s}}", R"({"s":"<a href=\"x\">'&`=</a>"})"),
            "&lt;a href&#x3D;&quot;x&quot;&gt;&#x27;&amp;&#x60;&#x3D;&lt;/a&gt; "
            "<a href=\"x\">'&`=</a> <a href=\"x\">'&`=</a>");
  EXPECT_EQ(render("{{s}}", R"({"s":"<a>&"})", Escape::kNone), "<a>&");
  EXPECT_EQ(render("\\{{a}} \\\\{{a}} {{a}}", R"({"a":"A"})"), "{{a}} \\A A");

  std::string out = "prefix:";
  escape_html("a&b<c>d\"e'f`g=h", out);
  EXPECT_EQ(out, "prefix:a&amp;b&lt;c&gt;d&quot;e&#x27;f&#x60;g&#x3D;h");
}

TEST(RenderValues, JsFormattingOfJson) {
  EXPECT_EQ(render("{{a}} {{b}} {{c}} {{d}} {{e}} {{f}} {{g}} {{h}}",
                   R"({"a":1.0,"b":1e21,"c":1e-7,"d":0.000001,"e":123456789012345680000,
                       "f":-0.0,"g":2.5,"h":9007199254740993})"),
            "1 1e+21 1e-7 0.000001 123456789012345680000 0 2.5 9007199254740992");
  EXPECT_EQ(render("[{{t}}] [{{f}}] [{{n}}] [{{m}}] [{{a}}] [{{o}}] [{{na}}]",
                   R"({"t":true,"f":false,"n":null,"a":[1,"x",[2,3],null],"o":{"k":1},
                       "na":[{"k":1}]})"),
            "[true] [false] [] [] [1,x,2,3,] [[object Object]] [[object Object]]");
  // A helper's `this` for a null context is an empty object, as in handlebars.js.
  EXPECT_EQ(
      render("{{#each a}}[{{this}}]{{#if true}}({{this}}){{/if}}{{/each}}", R"({"a":[null,1]})"),
      "[]([object Object])[1](1)");
}

TEST(RenderValues, AdjacentUnescapedValuesAreConcatenated) {
  // Deliberate difference: handlebars.js joins adjacent unescaped values with JS `+` and
  // prints "3" here. We write what the template says, "1" then "2".
  EXPECT_EQ(render("{{{a}}}{{{b}}}", R"({"a":1,"b":2})"), "12");
  EXPECT_EQ(render("{{a}}{{b}}", R"({"a":true,"b":2})", Escape::kNone), "true2");
}

TEST(RenderPartials, ContextHashAndIndentation) {
  std::map<std::string, std::string> p = {
      {"card", "<{{name}}>"}, {"lines", "{{a}}\n{{b}}\n"}, {"outer", "[{{> card}}]"}};
  EXPECT_EQ(render("{{> card}} {{> card person}} {{> card name=\"lit\"}} {{> outer}}",
                   R"({"name":"root","person":{"name":"P"}})", Escape::kHtml, p),
            "<root> <P> <lit> [<root>]");
  // A standalone partial indents every line it writes.
  EXPECT_EQ(render("x\n  {{> lines}}\ny", R"({"a":"A","b":"B"})", Escape::kHtml, p),
            "x\n  A\n  B\ny");
  // Partials are looked up by their literal name, slashes and all.
  EXPECT_EQ(render("{{> shared/footer}}", "{}", Escape::kHtml, {{"shared/footer", "F"}}), "F");
}

TEST(RenderPartials, InlinePartialsAndPartialBlocks) {
  EXPECT_EQ(render("{{#*inline \"p\"}}<{{name}}>{{/inline}}{{> p}}{{#each l}}{{> p}}{{/each}}",
                   R"({"name":"r","l":[{"name":"a"}]})"),
            "<r><a>");
  EXPECT_EQ(render("{{#> nope}}fallback {{x}}{{/nope}}", R"({"x":1})"), "fallback 1");
  EXPECT_EQ(render("{{#> frame}}body{{/frame}}", "{}", Escape::kHtml,
                   {{"frame", "<{{> @partial-block}}>"}}),
            "<body>");
}

TEST(RenderPartials, MissingAndRecursivePartialsFail) {
  EXPECT_EQ(render("a\n {{> nope}}"),
            "ERROR: template: line 2, column 2: the partial nope "
            "could not be found");
  EXPECT_EQ(render("{{> self}}", "{}", Escape::kHtml, {{"self", "x{{> self}}"}}),
            "ERROR: self: line 1, column 2: partials nested more than 64 deep (recursive "
            "partial?)");
}

TEST(RenderStrict, MissingValuesFailWithPosition) {
  EXPECT_EQ(render("Hi {{name}}", R"({"name":"A"})", Escape::kHtml, {}, true), "Hi A");
  EXPECT_EQ(render("Hi\n  {{first_name}}", "{}", Escape::kHtml, {}, true),
            "ERROR: template: line 2, column 5: \"first_name\" is not defined (strict mode)");
  EXPECT_EQ(render("{{a.b}}", R"({"a":{}})", Escape::kHtml, {}, true),
            "ERROR: template: line 1, column 3: \"a.b\" is not defined (strict mode)");
  // A present null is defined; #if conditions are never strict; #each arguments are.
  EXPECT_EQ(render("[{{n}}]{{#if nope}}x{{/if}}", R"({"n":null})", Escape::kHtml, {}, true), "[]");
  EXPECT_EQ(render("{{#each nope}}x{{/each}}", "{}", Escape::kHtml, {}, true),
            "ERROR: template: line 1, column 9: \"nope\" is not defined (strict mode)");
}

TEST(RenderCompile, ErrorsNameThePartLineAndColumn) {
  EXPECT_EQ(compile_error("a\n{{#if x}}\nb"),
            "body.html: line 2, column 1: {{#if}} is never closed (expected {{/if}})");
  EXPECT_EQ(compile_error("{{#if x}}\n  {{/each}}"),
            "body.html: line 2, column 3: {{/each}} does not match {{#if}} opened at line 1, "
            "column 1");
  EXPECT_EQ(compile_error("ok {{name"),
            "body.html: line 1, column 4: unterminated tag: {{ "
            "without }}");
  EXPECT_EQ(compile_error("{{/if}}"),
            "body.html: line 1, column 1: {{/if}} closes a block that was never opened");
  EXPECT_EQ(compile_error("x {{else}}"),
            "body.html: line 1, column 3: {{else}} outside of a "
            "block");
  EXPECT_EQ(compile_error("{{{a}}"),
            "body.html: line 1, column 5: {{{ closed with }} instead "
            "of }}}");
  EXPECT_EQ(compile_error("{{!-- open"),
            "body.html: line 1, column 1: unterminated comment "
            "{{!-- (no --}})");
  EXPECT_EQ(compile_error("{{upper name}}"),
            "body.html: line 1, column 1: unknown helper 'upper' (only if, unless, each, with, "
            "lookup and log exist)");
  EXPECT_EQ(compile_error("{{#if a b}}{{/if}}"),
            "body.html: line 1, column 1: #if takes exactly one argument, got 2");
  EXPECT_EQ(compile_error("{{a/this/b}}"), "body.html: line 1, column 3: invalid path: a/this");
  EXPECT_EQ(compile_error("{{> a b c}}"),
            "body.html: line 1, column 1: a partial takes at most one context argument, got 2");
  EXPECT_EQ(compile_error("{{{{raw}}}}"),
            "body.html: line 1, column 1: raw blocks ({{{{raw}}}}) are not supported");
  EXPECT_EQ(compile_error("é{{a\"}}"),
            "body.html: line 1, column 5: unexpected character "
            "'\"' after 'a'");
}

TEST(RenderCompile, RootVariablesInOrderWithoutDuplicates) {
  auto t = Template::compile(
      "{{first_name}} {{address.city}}{{#each items}}{{name}}{{../currency}}{{@root.shop}}"
      "{{/each}}{{#if vip}}{{first_name}}{{/if}}{{#with address}}{{zip}}{{../country}}{{/with}}"
      "{{#each items as |it|}}{{it.price}}{{/each}}{{lookup prices sku}}");
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  std::string got;
  for (const auto& v : (*t)->root_variables()) {
    got += v.path + "@" + std::to_string(v.line) + ":" + std::to_string(v.column) + " ";
  }
  EXPECT_EQ(got,
            "first_name@1:3 address.city@1:18 items@1:40 currency@1:57 shop@1:72 vip@1:99 "
            "address@1:133 country@1:151 prices@1:225 sku@1:232 ");
}

TEST(RenderApi, RenderAppendsAndCompiledTemplateIsReusable) {
  auto t = Template::compile("Hi {{name}}!", "subject");
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ((*t)->name(), "subject");
  std::string out = "> ";
  RenderOptions options;
  ASSERT_TRUE((*t)->render(json{{"name", "A"}}, options, out).is_ok());
  ASSERT_TRUE((*t)->render(json{{"name", "B&"}}, options, out).is_ok());
  EXPECT_EQ(out, "> Hi A!Hi B&amp;!");
}

}  // namespace
}  // namespace magnetic::render
