// SendEmail and SendBulkEmail: from the request to complete messages for the Submitter.
//
// Simple and Template content is built here (mail/mime.h) with Message-ID
// "<MessageId@From domain>", where MessageId is the SES MessageId returned to the client; Raw
// content is checked and kept as sent, apart from what prepare_raw_message changes. The
// Submitter then applies the sending policy; its refusals become the SES errors of the model
// (SendEmail) or the BulkEmailStatus of each entry (SendBulkEmail).
//
// Templates render strictly: a variable missing from the data refuses the message with an error
// naming it (SES accepts the request and drops the message later with a Rendering Failure event).
#include <algorithm>
#include <cctype>
#include <set>

#include "api/content.h"
#include "api/handler.h"
#include "base/ids.h"

namespace magnetic::api {
namespace {

using service::Refusal;

constexpr size_t kMaxBulkEntries = 50;

bool has_line_break(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

struct Sender {
  std::optional<mail::Mailbox> from;
  std::vector<mail::Mailbox> reply_to;
  std::optional<mail::Mailbox> feedback;
  std::string configuration_set;
};

void read_sender(Call& c, Sender& s) {
  s.from = read_mailbox(c.body, "FromEmailAddress", Need::kOptional);
  if (auto v = read_mailboxes(c.body, "ReplyToAddresses")) s.reply_to = std::move(*v);
  s.feedback = read_mailbox(c.body, "FeedbackForwardingEmailAddress", Need::kOptional);
  if (auto v = c.body.string("ConfigurationSetName", Need::kOptional, 1, 64)) {
    s.configuration_set = *v;
  }
}

// Closes the request body; these model members are refused by name (ARNs, tenants, endpoints
// and contact list management have no counterpart here).
void finish_send_body(Call& c) {
  c.body.finish({"FromEmailAddressIdentityArn", "FeedbackForwardingEmailAddressIdentityArn",
                 "EndpointId", "TenantName", "ListManagementOptions"});
}

// Content {Data, Charset}: the text; Charset may only name UTF-8 (or ASCII), since JSON strings
// are Unicode and the service writes UTF-8.
std::optional<std::string> read_text(JsonObject& parent, std::string_view key, Need need) {
  std::optional<JsonObject> o = parent.object(key, need);
  if (!o) return std::nullopt;
  std::optional<std::string> data = o->string("Data", Need::kRequired);
  std::optional<std::string> charset = o->string("Charset");
  o->finish();
  if (!o->ok()) return std::nullopt;
  if (charset) {
    std::string lower;
    for (char ch : *charset) {
      if (ch != '-' && ch != '_') lower.push_back(static_cast<char>(std::tolower(ch)));
    }
    if (lower != "utf8" && lower != "usascii" && lower != "ascii") {
      parent.state()->fail(o->field("Charset") + " '" + *charset +
                           "' is not supported: this service writes UTF-8 (give UTF-8 or leave "
                           "Charset out).");
      return std::nullopt;
    }
  }
  return data;
}

struct TemplateRequest {
  std::string name;                     // a stored template, or
  std::optional<TemplateText> content;  // TemplateContent given inline
  nlohmann::json data = nlohmann::json::object();
  HeaderList headers;
  std::vector<mail::Attachment> attachments;
};

std::optional<TemplateRequest> read_template_request(JsonObject& t) {
  TemplateRequest out;
  std::optional<std::string> name = t.string("TemplateName", Need::kOptional, 1, 64);
  if (auto content = t.object("TemplateContent")) {
    TemplateText text;
    if (auto v = content->string("Subject")) text.subject = *v;
    if (auto v = content->string("Text")) text.text = *v;
    if (auto v = content->string("Html")) text.html = *v;
    content->finish();
    if (content->ok() && text.text.empty() && text.html.empty()) {
      t.state()->fail(content->path() + " must have a Text or an Html part.");
    }
    out.content = std::move(text);
  }
  if (auto data = read_template_data(t, "TemplateData")) out.data = std::move(*data);
  if (auto headers = read_headers(t, "Headers")) out.headers = std::move(*headers);
  if (auto attachments = read_attachments(t, "Attachments")) {
    out.attachments = std::move(*attachments);
  }
  t.finish({"TemplateArn"});
  if (!t.ok()) return std::nullopt;
  if (name && out.content) {
    t.state()->fail(t.path() + " must have TemplateName or TemplateContent, not both.");
    return std::nullopt;
  }
  if (!name && !out.content) {
    t.state()->fail(t.path() + " must have TemplateName or TemplateContent.");
    return std::nullopt;
  }
  if (name) out.name = *name;
  return out;
}

// The compiled template of a request: kNotFound when the named template does not exist.
Result<CompiledTemplate> load_template(Services& s, const TemplateRequest& t,
                                       const std::string& field) {
  if (t.content) return compile_template(*t.content, field + ".TemplateContent");
  Result<store::EmailTemplate> stored = s.store.get_template(t.name);
  if (!stored) {
    if (stored.status().code() == StatusCode::kNotFound) {
      return Status::not_found("Template " + t.name + " does not exist.");
    }
    return stored.status();
  }
  return compile_template({stored->subject, stored->text, stored->html}, t.name);
}

// The identity (address or its domain) exists.
bool is_identity(Services& s, const mail::Mailbox& m) {
  if (s.store.get_identity(m.address())) return true;
  return s.store.get_identity(m.domain).is_ok();
}

std::vector<std::string> envelope(const Destination& d) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto* list : {&d.to, &d.cc, &d.bcc}) {
    for (const mail::Mailbox& m : *list) {
      std::string key = m.address();
      for (char& ch : key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (seen.insert(key).second) out.push_back(m.address());
    }
  }
  return out;
}

Result<std::string> build(const Sender& sender, const Destination& d, const TemplateText& parts,
                          const HeaderList& headers,
                          const std::vector<mail::Attachment>& attachments, const std::string& id,
                          std::chrono::system_clock::time_point now) {
  mail::MimeMessage m;
  m.from = sender.from;
  m.to = d.to;
  m.cc = d.cc;
  m.reply_to = sender.reply_to;
  m.subject = parts.subject;
  m.text = parts.text;
  m.html = parts.html;
  m.message_id = "<" + id + "@" + sender.from->domain + ">";
  m.date = now;
  m.headers = headers;
  m.attachments = attachments;
  std::string out;
  if (Status st = mail::build_mime(m, out); !st) return st;
  return out;
}

ApiError refusal_error(const service::SubmitResult& r) {
  auto text = [&](const char* fallback) { return r.message.empty() ? fallback : r.message; };
  switch (r.refusal) {
    case Refusal::kMessageRejected:
      return message_rejected(text("The message was rejected."));
    case Refusal::kFromDomainNotVerified:
      return mail_from_not_verified(text("The MAIL FROM domain is not verified."));
    case Refusal::kConfigurationSetNotFound:
      return not_found(text("The configuration set does not exist."));
    case Refusal::kConfigurationSetPaused:
      return sending_paused(text("Sending is paused for the configuration set."));
    case Refusal::kAccountPaused:
      return sending_paused(text("Sending is paused for the account."));
    case Refusal::kDailyQuotaExceeded:
      return limit_exceeded(text("Daily message quota exceeded."));
    case Refusal::kThrottled:
      return too_many_requests(text("Maximum sending rate exceeded."));
    case Refusal::kInvalidParameter:
      return bad_request(text("The message is not valid."));
    case Refusal::kTemporary:
    case Refusal::kNone:
      break;
  }
  return internal_error(text("The message could not be stored; try again."));
}

const char* bulk_status(Refusal r) {
  switch (r) {
    case Refusal::kNone:
      return "SUCCESS";
    case Refusal::kMessageRejected:
      return "MESSAGE_REJECTED";
    case Refusal::kFromDomainNotVerified:
      return "MAIL_FROM_DOMAIN_NOT_VERIFIED";
    case Refusal::kConfigurationSetNotFound:
      return "CONFIGURATION_SET_NOT_FOUND";
    case Refusal::kConfigurationSetPaused:
      return "CONFIGURATION_SET_SENDING_PAUSED";
    case Refusal::kAccountPaused:
      return "ACCOUNT_SENDING_PAUSED";
    case Refusal::kDailyQuotaExceeded:
      return "ACCOUNT_DAILY_QUOTA_EXCEEDED";
    case Refusal::kThrottled:
      return "ACCOUNT_THROTTLED";
    case Refusal::kInvalidParameter:
      return "INVALID_PARAMETER";
    case Refusal::kTemporary:
      return "TRANSIENT_FAILURE";
  }
  return "FAILED";
}

// The checks on addresses that the Submitter does not make: every address that may be used as
// the envelope sender must be an identity, as SES requires.
std::optional<ApiError> check_envelope_senders(Services& s, const Sender& sender,
                                               const std::optional<mail::Mailbox>& also) {
  for (auto [field, m] : {std::pair{"FeedbackForwardingEmailAddress", &sender.feedback},
                          std::pair{"FromEmailAddress", &also}}) {
    if (*m && !is_identity(s, **m)) {
      return message_rejected(std::string(field) + " " + (*m)->address() +
                              " is not a verified identity (neither the address nor its "
                              "domain).");
    }
  }
  return std::nullopt;
}

}  // namespace

Reply send_email(Services& s, Call& c) {
  Sender sender;
  read_sender(c, sender);
  std::optional<Destination> destination = read_destination(c.body, "Destination", Need::kOptional);
  TagList tags = read_message_tags(c.body, "EmailTags").value_or(TagList{});

  // Exactly one kind of content.
  std::optional<JsonObject> content = c.body.object("Content", Need::kRequired);
  std::optional<JsonObject> simple, raw, tmpl;
  if (content) {
    simple = content->object("Simple");
    raw = content->object("Raw");
    tmpl = content->object("Template");
    content->finish();
    int kinds = (simple ? 1 : 0) + (raw ? 1 : 0) + (tmpl ? 1 : 0);
    if (!c.error() && kinds != 1) {
      c.fail(std::string("Content must have exactly one of Simple, Raw or Template") +
             (kinds ? "; it has " + std::to_string(kinds) + "." : "."));
    }
  }

  std::string id = new_id();
  TemplateText parts;
  HeaderList headers;
  std::vector<mail::Attachment> attachments;
  std::optional<TemplateRequest> template_request;
  std::optional<std::string> raw_bytes;
  if (simple && !c.error()) {
    if (auto v = read_text(*simple, "Subject", Need::kRequired)) {
      parts.subject = *v;
      if (has_line_break(parts.subject)) {
        c.fail("Content.Simple.Subject.Data must not contain CR or LF.");
      }
    }
    if (auto body = simple->object("Body", Need::kRequired)) {
      if (auto v = read_text(*body, "Text", Need::kOptional)) parts.text = *v;
      if (auto v = read_text(*body, "Html", Need::kOptional)) parts.html = *v;
      body->finish();
      if (!c.error() && !body->has("Text") && !body->has("Html")) {
        c.fail("Content.Simple.Body must have Text or Html.");
      }
    }
    if (auto v = read_headers(*simple, "Headers")) headers = std::move(*v);
    if (auto v = read_attachments(*simple, "Attachments")) attachments = std::move(*v);
    simple->finish();
  } else if (tmpl && !c.error()) {
    template_request = read_template_request(*tmpl);
  } else if (raw && !c.error()) {
    raw_bytes = raw->blob("Data", Need::kRequired);
    raw->finish();
  }
  finish_send_body(c);
  if (c.error()) return *c.error();

  service::OutboundMessage message;
  message.message_id = id;
  message.configuration_set = sender.configuration_set;
  message.tags = tags;
  message.source = "api";
  if (sender.feedback) message.envelope_from = sender.feedback->address();

  if (raw_bytes) {
    // Raw: the message says who it is from and, without a Destination, to whom.
    if (!sender.reply_to.empty()) {
      return bad_request(
          "ReplyToAddresses cannot be used with Content.Raw; put a Reply-To field "
          "in the message.");
    }
    Result<RawMessage> prepared =
        prepare_raw_message(std::move(*raw_bytes), "Content.Raw.Data", id, c.now);
    if (!prepared) return bad_request(prepared.status().message());
    Destination to = destination ? *destination : prepared->header_recipients;
    if (to.count() == 0) {
      return bad_request(
          "Content.Raw.Data has no To, Cc or Bcc field and the request no "
          "Destination: the message has no recipients.");
    }
    if (to.count() > kMaxRecipients) {
      return bad_request("The message has " + std::to_string(to.count()) + " recipients; at most " +
                         std::to_string(kMaxRecipients) +
                         " are allowed (To, Cc and Bcc together).");
    }
    std::optional<mail::Mailbox> other_from;
    if (sender.from && sender.from->address() != prepared->from->address()) {
      other_from = sender.from;
    }
    if (auto e = check_envelope_senders(s, sender, other_from)) return *e;
    message.from = prepared->from->address();
    if (prepared->sender) message.sender = prepared->sender->address();
    if (message.envelope_from.empty() && sender.from)
      message.envelope_from = sender.from->address();
    message.recipients = envelope(to);
    if (message.configuration_set.empty()) message.configuration_set = prepared->configuration_set;
    message.tags = merge_tags(prepared->tags, tags);
    message.data = std::move(prepared->data);
  } else {
    // Simple or Template: built here.
    if (!sender.from) return bad_request("Missing required field FromEmailAddress.");
    if (!destination) return bad_request("Missing required field Destination.");
    if (template_request) {
      Result<store::Account> account = s.store.account();
      if (!account) return from_status(account.status());
      Result<CompiledTemplate> compiled = load_template(s, *template_request, "Content.Template");
      if (!compiled) {
        if (compiled.status().code() == StatusCode::kNotFound) {
          return not_found(compiled.status().message());
        }
        if (compiled.status().code() == StatusCode::kInvalidArgument) {
          return bad_request("The template does not compile: " + compiled.status().message());
        }
        return from_status(compiled.status());
      }
      Result<TemplateText> rendered =
          render_template(*compiled, template_request->data, account->ses_compatible_escaping);
      if (!rendered) {
        s.submitter.rendering_failed({sender.configuration_set, sender.from->address(),
                                      envelope(*destination), tags, template_request->name,
                                      rendered.status().message()});
        return bad_request("Content.Template.TemplateData does not render the template: " +
                           rendered.status().message());
      }
      if (has_line_break(rendered->subject)) {
        return bad_request("Content.Template: the rendered Subject contains CR or LF.");
      }
      parts = std::move(*rendered);
      headers = template_request->headers;
      attachments = template_request->attachments;
    }
    if (auto e = check_envelope_senders(s, sender, std::nullopt)) return *e;
    Result<std::string> data = build(sender, *destination, parts, headers, attachments, id, c.now);
    if (!data) return bad_request(data.status().message());
    message.from = sender.from->address();
    message.recipients = envelope(*destination);
    message.data = std::move(*data);
  }

  std::vector<service::OutboundMessage> batch;
  batch.push_back(std::move(message));
  std::vector<service::SubmitResult> results = s.submitter.submit(std::move(batch));
  if (results.size() != 1) return internal_error("The message could not be submitted.");
  if (results[0].refusal != Refusal::kNone) return refusal_error(results[0]);
  return nlohmann::json{{"MessageId", results[0].message_id.empty() ? id : results[0].message_id}};
}

Reply send_bulk_email(Services& s, Call& c) {
  Sender sender;
  read_sender(c, sender);
  TagList default_tags = read_message_tags(c.body, "DefaultEmailTags").value_or(TagList{});
  std::optional<TemplateRequest> request;
  if (auto content = c.body.object("DefaultContent", Need::kRequired)) {
    if (auto t = content->object("Template", Need::kRequired)) request = read_template_request(*t);
    content->finish();
  }

  struct Entry {
    Destination destination;
    TagList tags;
    nlohmann::json data;
    HeaderList headers;
  };
  std::vector<Entry> entries;
  if (auto list = c.body.array("BulkEmailEntries", Need::kRequired, 1, kMaxBulkEntries)) {
    for (size_t i = 0; i < list->size() && !c.error(); ++i) {
      std::optional<JsonObject> e = list->object(i);
      if (!e) break;
      Entry entry;
      if (auto d = read_destination(*e, "Destination", Need::kRequired)) {
        entry.destination = std::move(*d);
      }
      if (auto t = read_message_tags(*e, "ReplacementTags")) entry.tags = std::move(*t);
      if (auto h = read_headers(*e, "ReplacementHeaders")) entry.headers = std::move(*h);
      if (auto rc = e->object("ReplacementEmailContent")) {
        if (auto rt = rc->object("ReplacementTemplate")) {
          if (auto data = read_template_data(*rt, "ReplacementTemplateData")) {
            entry.data = std::move(*data);
          }
          rt->finish();
        }
        rc->finish();
      }
      e->finish();
      entries.push_back(std::move(entry));
    }
  }
  finish_send_body(c);
  if (!c.error() && !sender.from) c.fail("Missing required field FromEmailAddress.");
  if (c.error()) return *c.error();
  if (auto e = check_envelope_senders(s, sender, std::nullopt)) return *e;

  // The template once, then each entry.
  nlohmann::json results = nlohmann::json::array();
  for (size_t i = 0; i < entries.size(); ++i) results.push_back(nlohmann::json::object());
  Result<CompiledTemplate> compiled = load_template(s, *request, "DefaultContent.Template");
  if (!compiled) {
    if (compiled.status().code() == StatusCode::kNotFound) {
      for (auto& r : results) {
        r = {{"Status", "TEMPLATE_NOT_FOUND"}, {"Error", compiled.status().message()}};
      }
      return nlohmann::json{{"BulkEmailEntryResults", results}};
    }
    if (compiled.status().code() == StatusCode::kInvalidArgument) {
      return bad_request("The template does not compile: " + compiled.status().message());
    }
    return from_status(compiled.status());
  }
  Result<store::Account> account = s.store.account();
  if (!account) return from_status(account.status());

  std::vector<service::OutboundMessage> batch;
  std::vector<size_t> batch_entry;
  std::vector<std::string> ids(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    Entry& entry = entries[i];
    nlohmann::json data = request->data;
    if (entry.data.is_object()) data.update(entry.data);  // replacement keys win, as in SES
    Result<TemplateText> parts = render_template(*compiled, data, account->ses_compatible_escaping);
    if (!parts) {
      s.submitter.rendering_failed(
          {sender.configuration_set, sender.from->address(), envelope(entry.destination),
           merge_tags(default_tags, entry.tags), request->name, parts.status().message()});
      results[i] = {
          {"Status", "INVALID_PARAMETER"},
          {"Error", "BulkEmailEntries[" + std::to_string(i) +
                        "]: the data does not render the template: " + parts.status().message()}};
      continue;
    }
    if (has_line_break(parts->subject)) {
      results[i] = {{"Status", "INVALID_PARAMETER"},
                    {"Error", "BulkEmailEntries[" + std::to_string(i) +
                                  "]: the rendered Subject contains CR or LF."}};
      continue;
    }
    ids[i] = new_id();
    Result<std::string> message =
        build(sender, entry.destination, *parts, merge_headers(request->headers, entry.headers),
              request->attachments, ids[i], c.now);
    if (!message) {
      results[i] = {{"Status", "INVALID_PARAMETER"}, {"Error", message.status().message()}};
      continue;
    }
    service::OutboundMessage m;
    m.message_id = ids[i];
    m.from = sender.from->address();
    if (sender.feedback) m.envelope_from = sender.feedback->address();
    m.recipients = envelope(entry.destination);
    m.configuration_set = sender.configuration_set;
    m.tags = merge_tags(default_tags, entry.tags);
    m.data = std::move(*message);
    m.source = "api";
    batch.push_back(std::move(m));
    batch_entry.push_back(i);
  }

  if (!batch.empty()) {
    size_t count = batch.size();
    std::vector<service::SubmitResult> submitted = s.submitter.submit(std::move(batch));
    if (submitted.size() != count) return internal_error("The messages could not be submitted.");
    for (size_t k = 0; k < count; ++k) {
      const service::SubmitResult& r = submitted[k];
      nlohmann::json& out = results[batch_entry[k]];
      out["Status"] = bulk_status(r.refusal);
      if (r.refusal == Refusal::kNone) {
        out["MessageId"] = r.message_id.empty() ? ids[batch_entry[k]] : r.message_id;
      } else {
        out["Error"] = refusal_error(r).message;
      }
    }
  }
  return nlohmann::json{{"BulkEmailEntryResults", results}};
}

}  // namespace magnetic::api
