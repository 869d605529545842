// A campaign's template: the Subject, Text and Html parts, compiled once.
//
// The file is JSON in the SES v2 shape, {"Subject": ..., "Text": ..., "Html": ...}, or a
// CreateEmailTemplate request, {"TemplateName": ..., "TemplateContent": {...}}. At least a
// subject and one of text or html are required. Subject and Text render without HTML escaping;
// Html escapes {{x}} as handlebars.js does.
//
// Immutable after loading; render from any thread.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/status.h"
#include "render/template.h"

namespace magnetic::campaign {

struct RenderedParts {
  std::string subject;
  std::string text;
  std::string html;
};

class TemplateSet {
 public:
  // Parses and compiles. Errors name the file and, for a syntax error, the part, line and column.
  static Result<TemplateSet> load_file(const std::string& path);
  static Result<TemplateSet> from_json(const nlohmann::json& doc, const std::string& origin);

  // strict: a variable missing from data fails the render, naming it (see render::RenderOptions).
  Status render(const nlohmann::json& data, bool strict, RenderedParts& out) const;

  // Root variables used by any part that are not provided by `columns` (CSV column names, with
  // "a.b" meaning data["a"]["b"]). Each entry reads "part, line L, column C: 'name'".
  std::vector<std::string> missing_variables(const std::vector<std::string>& columns) const;

  const std::string& name() const { return name_; }
  // The parts' sources, as loaded (stored with the campaign so --resume renders the same).
  const nlohmann::json& source() const { return source_; }
  bool has_text() const { return text_ != nullptr; }
  bool has_html() const { return html_ != nullptr; }

 private:
  std::string name_;
  nlohmann::json source_;
  std::shared_ptr<const render::Template> subject_, text_, html_;
};

}  // namespace magnetic::campaign
