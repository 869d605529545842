#include "campaign/template_set.h"

#include <fstream>
#include <set>
#include <sstream>

namespace magnetic::campaign {

Result<TemplateSet> TemplateSet::load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::not_found("cannot read template '" + path + "': no such file or not readable");
  std::stringstream buf;
  buf << in.rdbuf();
  nlohmann::json doc = nlohmann::json::parse(buf.str(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Status::invalid("template '" + path + "' is not valid JSON");
  return from_json(doc, path);
}

Result<TemplateSet> TemplateSet::from_json(const nlohmann::json& doc, const std::string& origin) {
  if (!doc.is_object()) return Status::invalid("template '" + origin + "' must be a JSON object");
  TemplateSet set;
  const nlohmann::json* content = &doc;
  if (doc.contains("TemplateContent")) {
    content = &doc["TemplateContent"];
    if (!content->is_object()) {
      return Status::invalid("template '" + origin + "': TemplateContent must be an object");
    }
    if (doc.contains("TemplateName") && doc["TemplateName"].is_string()) {
      set.name_ = doc["TemplateName"].get<std::string>();
    }
  }
  auto part = [&](const char* key, std::shared_ptr<const render::Template>& out,
                  const char* part_name) -> Status {
    if (!content->contains(key) || (*content)[key].is_null()) return Status::ok();
    if (!(*content)[key].is_string()) {
      return Status::invalid("template '" + origin + "': " + key + " must be a string");
    }
    std::string src = (*content)[key].get<std::string>();
    set.source_[key] = src;
    auto compiled = render::Template::compile(src, part_name);
    if (!compiled)
      return Status::invalid("template '" + origin + "': " + compiled.status().message());
    out = *compiled;
    return Status::ok();
  };
  if (Status s = part("Subject", set.subject_, "subject"); !s) return s;
  if (Status s = part("Text", set.text_, "text"); !s) return s;
  if (Status s = part("Html", set.html_, "html"); !s) return s;
  if (!set.subject_) return Status::invalid("template '" + origin + "': Subject is missing");
  if (!set.text_ && !set.html_) {
    return Status::invalid("template '" + origin + "': needs Text or Html (or both)");
  }
  return set;
}

Status TemplateSet::render(const nlohmann::json& data, bool strict, RenderedParts& out) const {
  out.subject.clear();
  out.text.clear();
  out.html.clear();
  render::RenderOptions plain{render::Escape::kNone, strict};
  render::RenderOptions html{render::Escape::kHtml, strict};
  // A template can expand without bound: at most 40 MB per part (SES's message size), and
  // bounded work.
  plain.max_output = html.max_output = 40 * 1024 * 1024;
  plain.max_steps = html.max_steps = 10'000'000;
  if (Status s = subject_->render(data, plain, out.subject); !s) return s;
  if (text_) {
    if (Status s = text_->render(data, plain, out.text); !s) return s;
  }
  if (html_) {
    if (Status s = html_->render(data, html, out.html); !s) return s;
  }
  return Status::ok();
}

std::vector<std::string> TemplateSet::missing_variables(
    const std::vector<std::string>& columns) const {
  // A variable is provided when it names a column, or a prefix of one ("address" for
  // "address.city"), or lies inside one ("name.length" is not, but "a.b.c" under a column "a.b"
  // cannot be checked further: CSV values are strings, so it is reported).
  std::set<std::string> provided;
  for (const auto& c : columns) {
    provided.insert(c);
    for (size_t dot = c.find('.'); dot != std::string::npos; dot = c.find('.', dot + 1)) {
      provided.insert(c.substr(0, dot));
    }
  }
  std::vector<std::string> out;
  for (const auto& t : {subject_, text_, html_}) {
    if (!t) continue;
    for (const auto& v : t->root_variables()) {
      if (provided.count(v.path)) continue;
      out.push_back(t->name() + ", line " + std::to_string(v.line) + ", column " +
                    std::to_string(v.column) + ": '" + v.path + "'");
    }
  }
  return out;
}

}  // namespace magnetic::campaign
