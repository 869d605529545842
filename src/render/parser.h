// Template source to the compiled tree (ast.h): lexing as handlebars.js's lexer does, its
// grammar, and its whitespace-control pass (~ and standalone lines). Internal to the render
// module.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "render/ast.h"
#include "render/template.h"

namespace magnetic::render::detail {

struct Parsed {
  std::unique_ptr<Program> root;
  std::vector<VariableRef> root_variables;
};

// Errors read "<name>: line L, column C: <what>", 1-based, columns counted in characters.
Result<Parsed> parse_template(std::string_view source, std::string_view name);

}  // namespace magnetic::render::detail
