// Email templates: Create/Get/Update/Delete/List and TestRender.
//
// A template is compiled when it is stored, so a syntax error is refused at once, naming the part,
// line and column (SES stores it and fails each send later with a Rendering Failure event).
#include "api/content.h"
#include "api/handler.h"

namespace magnetic::api {
namespace {

constexpr size_t kMaxNameLength = 64;

// SES: ASCII letters, digits, '_' and '-', at most 64.
bool check_template_name(Call& c, const std::string& name, const std::string& field) {
  for (char ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-') {
      c.fail(field + " may only contain ASCII letters, digits, '_' and '-'; got '" + name + "'.");
      return false;
    }
  }
  if (name.empty() || name.size() > kMaxNameLength) {
    c.fail(field + " must be 1 to 64 characters long.");
    return false;
  }
  return true;
}

// TemplateContent {Subject, Text, Html}: at least Text or Html, each compiling.
std::optional<store::EmailTemplate> read_content(Call& c, const std::string& name) {
  std::optional<JsonObject> content = c.body.object("TemplateContent", Need::kRequired);
  if (!content) return std::nullopt;
  store::EmailTemplate t;
  t.name = name;
  if (auto v = content->string("Subject")) t.subject = *v;
  if (auto v = content->string("Text")) t.text = *v;
  if (auto v = content->string("Html")) t.html = *v;
  content->finish();
  if (c.error()) return std::nullopt;
  if (t.text.empty() && t.html.empty()) {
    c.fail("TemplateContent must have a Text or an Html part.");
    return std::nullopt;
  }
  Result<CompiledTemplate> compiled =
      compile_template({t.subject, t.text, t.html}, "TemplateContent");
  if (!compiled) {
    c.fail("The template does not compile: " + compiled.status().message());
    return std::nullopt;
  }
  return t;
}

bool refuse_tags(Call& c) {
  if (auto tags = c.body.array("Tags"); tags && tags->size() > 0) {
    c.fail("Tags: tags on email templates are not supported by this service.");
    return false;
  }
  return true;
}

}  // namespace

Reply create_email_template(Services& s, Call& c) {
  std::optional<std::string> name = c.body.string("TemplateName", Need::kRequired);
  if (name) check_template_name(c, *name, "TemplateName");
  std::optional<store::EmailTemplate> t;
  if (!c.error()) t = read_content(c, *name);
  refuse_tags(c);
  c.body.finish();
  if (c.error()) return *c.error();

  t->created_at = t->updated_at = rfc3339(c.now);
  if (Status st = s.store.create_template(*t); !st) {
    if (st.code() == StatusCode::kAlreadyExists) {
      return already_exists("Template " + *name + " already exists.");
    }
    return from_status(st);
  }
  return nlohmann::json::object();
}

Reply get_email_template(Services& s, Call& c) {
  c.finish_query();
  if (c.error()) return *c.error();
  Result<store::EmailTemplate> t = s.store.get_template(c.labels[0]);
  if (!t) {
    if (t.status().code() == StatusCode::kNotFound) {
      return not_found("Template " + c.labels[0] + " does not exist.");
    }
    return from_status(t.status());
  }
  nlohmann::json content = nlohmann::json::object();
  if (!t->subject.empty()) content["Subject"] = t->subject;
  if (!t->text.empty()) content["Text"] = t->text;
  if (!t->html.empty()) content["Html"] = t->html;
  return nlohmann::json{{"TemplateName", t->name}, {"TemplateContent", content}};
}

Reply update_email_template(Services& s, Call& c) {
  const std::string& name = c.labels[0];
  std::optional<store::EmailTemplate> t = read_content(c, name);
  c.body.finish();
  if (c.error()) return *c.error();

  Result<store::EmailTemplate> old = s.store.get_template(name);
  if (!old) {
    if (old.status().code() == StatusCode::kNotFound) {
      return not_found("Template " + name + " does not exist.");
    }
    return from_status(old.status());
  }
  t->created_at = old->created_at;
  t->updated_at = rfc3339(c.now);
  if (Status st = s.store.update_template(*t); !st) {
    if (st.code() == StatusCode::kNotFound)
      return not_found("Template " + name + " does not exist.");
    return from_status(st);
  }
  return nlohmann::json::object();
}

Reply delete_email_template(Services& s, Call& c) {
  c.finish_query();
  if (c.error()) return *c.error();
  if (Status st = s.store.delete_template(c.labels[0]); !st) {
    if (st.code() == StatusCode::kNotFound) {
      return not_found("Template " + c.labels[0] + " does not exist.");
    }
    return from_status(st);
  }
  return nlohmann::json::object();
}

Reply list_email_templates(Services& s, Call& c) {
  store::Page page = read_page(c, 10, 100);
  c.finish_query();
  if (c.error()) return *c.error();
  auto listing = s.store.list_templates(page);
  if (!listing) {
    if (listing.status().code() == StatusCode::kInvalidArgument) {
      return bad_request("NextToken is not a token this service returned.");
    }
    return from_status(listing.status());
  }
  nlohmann::json items = nlohmann::json::array();
  for (const store::EmailTemplate& t : listing->items) {
    items.push_back({{"TemplateName", t.name}, {"CreatedTimestamp", epoch_seconds(t.created_at)}});
  }
  nlohmann::json out = {{"TemplatesMetadata", items}};
  if (!listing->next_token.empty()) out["NextToken"] = listing->next_token;
  return out;
}

Reply test_render_email_template(Services& s, Call& c) {
  std::optional<nlohmann::json> data = read_template_data(c.body, "TemplateData");
  if (!c.error() && !data) c.fail("Missing required field TemplateData.");
  c.body.finish();
  if (c.error()) return *c.error();

  const std::string& name = c.labels[0];
  Result<store::EmailTemplate> t = s.store.get_template(name);
  if (!t) {
    if (t.status().code() == StatusCode::kNotFound) {
      return not_found("Template " + name + " does not exist.");
    }
    return from_status(t.status());
  }
  Result<store::Account> account = s.store.account();
  if (!account) return from_status(account.status());
  Result<CompiledTemplate> compiled = compile_template({t->subject, t->text, t->html}, name);
  if (!compiled)
    return bad_request("The template does not compile: " + compiled.status().message());
  Result<TemplateText> parts = render_template(*compiled, *data, account->ses_compatible_escaping);
  if (!parts) return bad_request("The template does not render: " + parts.status().message());

  mail::MimeMessage m;
  m.subject = parts->subject;
  m.text = parts->text;
  m.html = parts->html;
  m.date = c.now;
  std::string rendered;
  if (Status st = mail::build_mime(m, rendered); !st) return bad_request(st.message());
  return nlohmann::json{{"RenderedTemplate", rendered}};
}

}  // namespace magnetic::api
