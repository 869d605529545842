// Robustness: truncated, mutated and hostile templates must compile to a template or to a clean
// error naming the part, and a compiled template must render or fail cleanly; never crash, hang
// or overflow the stack. Seeded, bounded in count.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "render/template.h"

namespace magnetic::render {
namespace {

using nlohmann::json;

const std::vector<std::string> kSeeds = {
    "Hello {{name}}!",
    "{{#each items as |it i|}}{{i}}:{{it.name}}{{else}}none{{/each}}",
    "{{#if a}}A{{else if b}}B{{else}}C{{/if}}",
    "{{#with p}}{{../x}}{{@root.y}}{{/with}}",
    "x\n  {{#unless z}}\n  {{{raw}}}\n  {{/unless}}\n",
    "{{! c }}{{!-- long --}}{{~a~}}\\{{b}}",
    "{{> card name=x}}{{#> frame}}in{{/frame}}{{#*inline \"i\"}}[{{.}}]{{/inline}}{{> i}}",
    "{{lookup (lookup this \"o\") \"k\"}}{{log a}}{{[a b].[0]}}",
    "{{#a}}{{^b}}{{.}}{{/b}}{{/a}}",
};

const std::string kAlphabet = "{}#/^!~>&*@.[]\"' \n\\|()=-asifelsewithech0123";

TEST(RenderFuzz, MutatedTemplatesCompileOrFailCleanly) {
  std::mt19937 rng(7);
  json data = json::parse(R"({"name":"n","items":[{"name":"a"},1,null],"a":true,"b":[],
                              "p":{"x":1},"y":"<&>","z":0,"raw":"<b>","o":{"k":"v"},
                              "x":"X","a b":["q"]})");
  Partials partials;
  partials["card"] = *Template::compile("<{{name}}>", "card");
  partials["frame"] = *Template::compile("[{{> @partial-block}}]", "frame");
  partials["loop"] = *Template::compile("{{> loop}}", "loop");
  RenderOptions options;
  int compiled = 0, rendered = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string t = kSeeds[rng() % kSeeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !t.empty(); ++e) {
      size_t at = rng() % (t.size() + 1);
      switch (rng() % 5) {
        case 0:
          t.resize(at);  // truncate
          break;
        case 1:
          t.insert(at, 1, kAlphabet[rng() % kAlphabet.size()]);
          break;
        case 2:
          if (at < t.size()) t.erase(at, 1);
          break;
        case 3:
          t.insert(at, 1, static_cast<char>(rng() % 256));  // any byte, NUL included
          break;
        default:
          t.insert(at, kSeeds[rng() % kSeeds.size()]);
          break;
      }
    }
    if (rng() % 10 == 0) t += "{{> loop}}";
    auto c = Template::compile(t, "fuzz");
    if (!c.is_ok()) {
      ASSERT_EQ(c.status().message().rfind("fuzz: line ", 0), 0u) << c.status().message();
      continue;
    }
    ++compiled;
    options.strict = rng() % 2;
    options.compat = rng() % 2;
    options.escape = rng() % 2 ? Escape::kHtml : Escape::kNone;
    auto out = (*c)->render(data, options, &partials);
    if (out.is_ok()) {
      ++rendered;
    } else {
      ASSERT_FALSE(out.status().message().empty());
    }
  }
  // Enough of the mutants must get through to exercise the renderer too.
  EXPECT_GT(compiled, 2000);
  EXPECT_GT(rendered, 1000);
}

TEST(RenderFuzz, DeepNestingIsRefusedNotOverflowed) {
  std::string blocks;
  for (int i = 0; i < 100000; ++i) blocks += "{{#if a}}";
  auto t = Template::compile(blocks, "deep");
  ASSERT_FALSE(t.is_ok());
  EXPECT_NE(t.status().message().find("nested too deeply"), std::string::npos);

  std::string sexpr = "{{lookup ";
  for (int i = 0; i < 100000; ++i) sexpr += "(lookup ";
  auto s = Template::compile(sexpr, "deep");
  ASSERT_FALSE(s.is_ok());

  // Nesting within the limit still works.
  std::string ok;
  for (int i = 0; i < 150; ++i) ok += "{{#with a}}";
  ok += "{{b}}";
  for (int i = 0; i < 150; ++i) ok += "{{/with}}";
  auto fine = Template::compile(ok, "fine");
  ASSERT_TRUE(fine.is_ok()) << fine.status().message();
  auto out = (*fine)->render(json::parse(R"({"a":{"a":{"b":"deep"},"b":"x"}})"), {});
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(*out, "");  // a.a.a... runs out after two levels: #with renders nothing
}

TEST(RenderFuzz, LongPathsAndHugeLiterals) {
  std::string path = "{{a";
  for (int i = 0; i < 10000; ++i) path += ".a";
  path += "}}";
  auto t = Template::compile(path, "long");
  ASSERT_TRUE(t.is_ok());
  auto out = (*t)->render(json::parse(R"({"a":{"a":1}})"), {});
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(*out, "");
  auto num = Template::compile("{{lookup a 1" + std::string(400, '0') + "}}", "num");
  ASSERT_TRUE(num.is_ok());
  EXPECT_TRUE((*num)->render(json::parse(R"({"a":[1]})"), {}).is_ok());
}

}  // namespace
}  // namespace magnetic::render
