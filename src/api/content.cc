#include "api/content.h"

#include <algorithm>
#include <cctype>

#include "base/json_depth.h"
#include "mail/address_list.h"
#include "mail/header.h"
#include "mail/message.h"

namespace magnetic::api {
namespace {

constexpr size_t kMaxHeaders = 15;
constexpr size_t kMaxLine = 998;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Fields the service writes itself or that would change who gets the message or how it parses.
constexpr std::string_view kReservedHeaders[] = {"Date",
                                                 "From",
                                                 "Sender",
                                                 "To",
                                                 "Cc",
                                                 "Bcc",
                                                 "Reply-To",
                                                 "Subject",
                                                 "Message-ID",
                                                 "MIME-Version",
                                                 "Content-Type",
                                                 "Content-Transfer-Encoding",
                                                 "Content-Disposition",
                                                 "Return-Path",
                                                 "DKIM-Signature",
                                                 "Received"};

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7f;
  });
}

bool has_line_break(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

bool is_tag_text(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c > 32 && c < 127 &&
           std::string_view("()<>@,;:\\\"/[]?=").find(static_cast<char>(c)) ==
               std::string_view::npos;
  });
}

}  // namespace

std::optional<mail::Mailbox> read_mailbox(JsonObject& o, std::string_view key, Need need) {
  std::optional<std::string> text = o.string(key, need, 1, kMaxAddressLength);
  if (!text) return std::nullopt;
  if (has_line_break(*text)) {
    o.state()->fail(o.field(key) + " must not contain CR or LF.");
    return std::nullopt;
  }
  Result<mail::Mailbox> m = mail::parse_mailbox(*text);
  if (!m) {
    o.state()->fail(o.field(key) + " is not a valid email address ('" + *text +
                    "'): " + m.status().message());
    return std::nullopt;
  }
  return *m;
}

std::optional<std::vector<mail::Mailbox>> read_mailboxes(JsonObject& o, std::string_view key) {
  std::optional<JsonArray> list = o.array(key);
  if (!list) return std::nullopt;
  std::vector<mail::Mailbox> out;
  for (size_t i = 0; i < list->size(); ++i) {
    std::optional<std::string> text = list->string(i, kMaxAddressLength);
    if (!text) return std::nullopt;
    if (has_line_break(*text)) {
      o.state()->fail(list->item_path(i) + " must not contain CR or LF.");
      return std::nullopt;
    }
    Result<mail::Mailbox> m = mail::parse_mailbox(*text);
    if (!m) {
      o.state()->fail(list->item_path(i) + " is not a valid email address ('" + *text +
                      "'): " + m.status().message());
      return std::nullopt;
    }
    out.push_back(std::move(*m));
  }
  return out;
}

std::optional<Destination> read_destination(JsonObject& o, std::string_view key, Need need) {
  std::optional<JsonObject> d = o.object(key, need);
  if (!d) return std::nullopt;
  Destination out;
  if (auto v = read_mailboxes(*d, "ToAddresses")) out.to = std::move(*v);
  if (auto v = read_mailboxes(*d, "CcAddresses")) out.cc = std::move(*v);
  if (auto v = read_mailboxes(*d, "BccAddresses")) out.bcc = std::move(*v);
  d->finish();
  if (!d->ok()) return std::nullopt;
  if (out.count() == 0) {
    o.state()->fail(o.field(key) +
                    " must have at least one address in ToAddresses, "
                    "CcAddresses or BccAddresses.");
    return std::nullopt;
  }
  if (out.count() > kMaxRecipients) {
    o.state()->fail(o.field(key) + " has " + std::to_string(out.count()) +
                    " addresses; a message may have at most " + std::to_string(kMaxRecipients) +
                    " recipients (To, Cc and Bcc together).");
    return std::nullopt;
  }
  return out;
}

std::optional<HeaderList> read_headers(JsonObject& o, std::string_view key) {
  std::optional<JsonArray> list = o.array(key, Need::kOptional, 0, kMaxHeaders);
  if (!list) return std::nullopt;
  HeaderList out;
  for (size_t i = 0; i < list->size(); ++i) {
    std::optional<JsonObject> h = list->object(i);
    if (!h) return std::nullopt;
    std::optional<std::string> name = h->string("Name", Need::kRequired, 1, 126);
    std::optional<std::string> value = h->string("Value", Need::kRequired, 1, 995);
    h->finish();
    if (!h->ok()) return std::nullopt;
    if (has_line_break(*name) || has_line_break(*value)) {
      o.state()->fail(h->field(has_line_break(*name) ? "Name" : "Value") +
                      " must not contain CR or LF.");
      return std::nullopt;
    }
    for (unsigned char c : *name) {
      if (c < 33 || c > 126 || c == ':') {
        o.state()->fail(h->field("Name") + " must be printable ASCII without spaces or ':'; got '" +
                        *name + "'.");
        return std::nullopt;
      }
    }
    for (unsigned char c : *value) {
      if (c < 32 || c > 126) {
        o.state()->fail(h->field("Value") +
                        " must be printable ASCII (encode other text with RFC 2047).");
        return std::nullopt;
      }
    }
    for (std::string_view reserved : kReservedHeaders) {
      if (iequals(*name, reserved)) {
        o.state()->fail(h->field("Name") + " '" + *name +
                        "' is set by the service and cannot be given as a header.");
        return std::nullopt;
      }
    }
    out.emplace_back(std::move(*name), std::move(*value));
  }
  return out;
}

std::optional<std::vector<mail::Attachment>> read_attachments(JsonObject& o, std::string_view key) {
  std::optional<JsonArray> list = o.array(key);
  if (!list) return std::nullopt;
  std::vector<mail::Attachment> out;
  for (size_t i = 0; i < list->size(); ++i) {
    std::optional<JsonObject> a = list->object(i);
    if (!a) return std::nullopt;
    mail::Attachment at;
    std::optional<std::string> data = a->blob("RawContent", Need::kRequired);
    std::optional<std::string> file = a->string("FileName", Need::kRequired, 1, 255);
    std::optional<std::string> disposition =
        a->enumeration("ContentDisposition", {"ATTACHMENT", "INLINE"});
    std::optional<std::string> description =
        a->string("ContentDescription", Need::kOptional, 0, 1000);
    std::optional<std::string> id = a->string("ContentId", Need::kOptional, 1, 78);
    std::optional<std::string> encoding =
        a->enumeration("ContentTransferEncoding", {"BASE64", "QUOTED_PRINTABLE", "SEVEN_BIT"});
    std::optional<std::string> type = a->string("ContentType", Need::kOptional, 1, 78);
    a->finish();
    if (!a->ok()) return std::nullopt;

    if (has_control(*file)) {
      o.state()->fail(a->field("FileName") + " must not contain control characters.");
      return std::nullopt;
    }
    if (description && has_control(*description)) {
      o.state()->fail(a->field("ContentDescription") + " must not contain control characters.");
      return std::nullopt;
    }
    if (id) {
      for (unsigned char c : *id) {
        if (c < 33 || c > 126 || c == '<' || c == '>') {
          o.state()->fail(a->field("ContentId") +
                          " must be printable ASCII without spaces or angle brackets.");
          return std::nullopt;
        }
      }
      at.content_id = *id;
    }
    if (type) {
      size_t slash = type->find('/');
      std::string lower = *type;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (slash == std::string::npos || !is_token(type->substr(0, slash)) ||
          !is_token(type->substr(slash + 1))) {
        o.state()->fail(a->field("ContentType") +
                        " must be a media type such as "
                        "application/pdf; got '" +
                        *type + "'.");
        return std::nullopt;
      }
      if (lower.starts_with("multipart/") || lower.starts_with("message/")) {
        o.state()->fail(a->field("ContentType") + " cannot be " + *type +
                        " (attach such content as application/octet-stream or use Raw).");
        return std::nullopt;
      }
      at.content_type = *type;
    }
    at.filename = std::move(*file);
    at.data = std::move(*data);
    at.inline_disposition = disposition && *disposition == "INLINE";
    if (description) at.description = std::move(*description);
    if (encoding && *encoding == "QUOTED_PRINTABLE") {
      at.encoding = mail::TransferEncoding::kQuotedPrintable;
    } else if (encoding && *encoding == "SEVEN_BIT") {
      at.encoding = mail::TransferEncoding::k7bit;
      if (std::string why = mail::why_not_7bit(at.data); !why.empty()) {
        o.state()->fail(a->field("RawContent") + " cannot be sent as SEVEN_BIT: " + why + ".");
        return std::nullopt;
      }
    }
    out.push_back(std::move(at));
  }
  return out;
}

std::optional<TagList> read_message_tags(JsonObject& o, std::string_view key) {
  std::optional<JsonArray> list = o.array(key);
  if (!list) return std::nullopt;
  TagList out;
  for (size_t i = 0; i < list->size(); ++i) {
    std::optional<JsonObject> t = list->object(i);
    if (!t) return std::nullopt;
    std::optional<std::string> name = t->string("Name", Need::kRequired, 1, 256);
    std::optional<std::string> value = t->string("Value", Need::kRequired, 1, 256);
    t->finish();
    if (!t->ok()) return std::nullopt;
    for (const auto& [field, text] : {std::pair{"Name", &*name}, std::pair{"Value", &*value}}) {
      if (!is_tag_text(*text)) {
        o.state()->fail(t->field(field) +
                        " may only contain ASCII letters, digits, '_' and '-'; got '" + *text +
                        "'.");
        return std::nullopt;
      }
    }
    out.emplace_back(std::move(*name), std::move(*value));
  }
  return out;
}

std::optional<nlohmann::json> read_template_data(JsonObject& o, std::string_view key) {
  std::optional<std::string> text = o.string(key, Need::kOptional, 0, 262144);
  if (!text) return std::nullopt;
  if (json_nesting_exceeds(*text, kMaxDataNesting)) {
    o.state()->fail(o.field(key) + " nests deeper than " + std::to_string(kMaxDataNesting) +
                    " levels.");
    return std::nullopt;
  }
  nlohmann::json data = nlohmann::json::parse(*text, nullptr, false);
  if (data.is_discarded() || !data.is_object()) {
    o.state()->fail(o.field(key) +
                    " must be a JSON object in a string, e.g. "
                    "\"{\\\"name\\\":\\\"Alice\\\"}\".");
    return std::nullopt;
  }
  return data;
}

HeaderList merge_headers(const HeaderList& base, const HeaderList& over) {
  HeaderList out;
  for (const auto& h : base) {
    bool replaced = std::any_of(over.begin(), over.end(),
                                [&](const auto& o) { return iequals(o.first, h.first); });
    if (!replaced) out.push_back(h);
  }
  out.insert(out.end(), over.begin(), over.end());
  return out;
}

TagList merge_tags(const TagList& base, const TagList& over) {
  TagList out;
  for (const auto& t : base) {
    bool replaced =
        std::any_of(over.begin(), over.end(), [&](const auto& o) { return o.first == t.first; });
    if (!replaced) out.push_back(t);
  }
  out.insert(out.end(), over.begin(), over.end());
  return out;
}

Result<CompiledTemplate> compile_template(const TemplateText& source, const std::string& where) {
  CompiledTemplate out;
  for (auto [part, text, slot] :
       {std::tuple{"Subject", &source.subject, &out.subject},
        std::tuple{"Text", &source.text, &out.text}, std::tuple{"Html", &source.html, &out.html}}) {
    if (text->empty()) continue;
    auto t = render::Template::compile(*text, where + "." + part);
    if (!t) return t.status();
    *slot = *t;
  }
  return out;
}

Result<TemplateText> render_template(const CompiledTemplate& t, const nlohmann::json& data,
                                     bool ses_escaping) {
  render::RenderOptions plain{render::Escape::kNone, /*strict=*/true};
  render::RenderOptions html{ses_escaping ? render::Escape::kNone : render::Escape::kHtml,
                             /*strict=*/true};
  // A template can expand without bound: at most SES's message size per part, and bounded work.
  plain.max_output = html.max_output = 40 * 1024 * 1024;
  plain.max_steps = html.max_steps = 10'000'000;
  TemplateText out;
  for (auto [tmpl, options, slot] :
       {std::tuple{t.subject.get(), &plain, &out.subject},
        std::tuple{t.text.get(), &plain, &out.text}, std::tuple{t.html.get(), &html, &out.html}}) {
    if (!tmpl) continue;
    if (Status s = tmpl->render(data, *options, *slot); !s) return s;
  }
  return out;
}

Result<RawMessage> prepare_raw_message(std::string bytes, const std::string& field,
                                       const std::string& ses_message_id,
                                       std::chrono::system_clock::time_point now) {
  // Line ends: CRLF throughout (a bare LF or CR becomes CRLF).
  std::string data;
  data.reserve(bytes.size() + bytes.size() / 32);
  for (size_t i = 0; i < bytes.size(); ++i) {
    char c = bytes[i];
    if (c == '\r') {
      data.append("\r\n");
      if (i + 1 < bytes.size() && bytes[i + 1] == '\n') ++i;
    } else if (c == '\n') {
      data.append("\r\n");
    } else {
      data.push_back(c);
    }
  }
  bytes.clear();

  // The header block and its fields.
  size_t end = data.starts_with("\r\n") ? 0 : data.find("\r\n\r\n");
  if (end == std::string::npos || end == 0) {
    return Status::invalid(field +
                           ": the message must have header fields, then an empty line, "
                           "then the body.");
  }
  struct Field {
    size_t start, length;  // the whole field with its final CRLF
    std::string name;
  };
  std::vector<Field> fields;
  size_t pos = 0;
  size_t line_number = 0;
  while (pos < end + 2) {
    size_t eol = data.find("\r\n", pos);
    ++line_number;
    std::string_view line(data.data() + pos, eol - pos);
    if (line.size() > kMaxLine) {
      return Status::invalid(field + ": header line " + std::to_string(line_number) +
                             " is longer than 998 characters.");
    }
    if (line.front() == ' ' || line.front() == '\t') {
      if (fields.empty()) {
        return Status::invalid(field + ": the message starts with a continuation line.");
      }
      fields.back().length = eol + 2 - fields.back().start;
    } else {
      size_t colon = line.find(':');
      std::string_view name = line.substr(0, colon);
      bool valid = colon != std::string_view::npos && colon > 0 &&
                   std::all_of(name.begin(), name.end(), [](char ch) {
                     auto c = static_cast<unsigned char>(ch);
                     return c > 32 && c < 127;
                   });
      if (!valid) {
        return Status::invalid(field + ": header line " + std::to_string(line_number) +
                               " is not a 'Name: value' field.");
      }
      fields.push_back({pos, eol + 2 - pos, std::string(name)});
    }
    pos = eol + 2;
  }
  for (size_t at = end + 4, number = line_number + 2; at < data.size(); ++number) {
    size_t eol = data.find("\r\n", at);
    if (eol == std::string::npos) eol = data.size();
    if (eol - at > kMaxLine) {
      return Status::invalid(field + ": line " + std::to_string(number) +
                             " is longer than 998 characters.");
    }
    at = eol + 2;
  }

  // RFC 5322 section 3.6 (and RFC 2045 for the MIME fields): these appear at most once. A second
  // From or Subject is how a message shows one sender to a filter and another to a reader.
  for (const char* once :
       {"From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Subject", "Date", "Message-ID",
        "In-Reply-To", "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"}) {
    size_t n = std::count_if(fields.begin(), fields.end(),
                             [&](const Field& f) { return iequals(f.name, once); });
    if (n > 1) {
      return Status::invalid(field + ": the message has " + std::to_string(n) + " " + once +
                             " fields; at most one is allowed.");
    }
  }

  // What the fields say, and which of them stay.
  RawMessage out;
  bool has_id = false, has_date = false;
  std::string headers;
  for (const Field& f : fields) {
    std::string_view whole(data.data() + f.start, f.length);
    std::string_view value = whole.substr(f.name.size() + 1);
    value.remove_suffix(2);
    auto list = [&](std::vector<mail::Mailbox>* into) -> Status {
      Result<std::vector<mail::Mailbox>> r = mail::parse_address_list(value);
      if (!r) return Status::invalid(field + ": the " + f.name + " field: " + r.status().message());
      if (into) into->insert(into->end(), r->begin(), r->end());
      return Status::ok();
    };
    if (iequals(f.name, "From")) {
      std::vector<mail::Mailbox> from;
      if (Status s = list(&from); !s) return s;
      if (from.size() != 1) {
        return Status::invalid(field + ": the From field must name exactly one mailbox (it names " +
                               std::to_string(from.size()) + ").");
      }
      out.from = from.front();
    } else if (iequals(f.name, "Sender")) {
      std::vector<mail::Mailbox> sender;
      if (Status s = list(&sender); !s) return s;
      if (sender.size() != 1) {
        return Status::invalid(field + ": the Sender field must name exactly one mailbox.");
      }
      out.sender = sender.front();
    } else if (iequals(f.name, "To")) {
      if (Status s = list(&out.header_recipients.to); !s) return s;
    } else if (iequals(f.name, "Cc")) {
      if (Status s = list(&out.header_recipients.cc); !s) return s;
    } else if (iequals(f.name, "Bcc")) {
      if (Status s = list(&out.header_recipients.bcc); !s) return s;
      continue;  // never sent
    } else if (iequals(f.name, "X-SES-CONFIGURATION-SET")) {
      std::string v = mail::decode_words(value);
      v.erase(0, v.find_first_not_of(" \t"));
      v.erase(v.find_last_not_of(" \t") + 1);
      out.configuration_set = v;
      continue;
    } else if (iequals(f.name, "X-SES-MESSAGE-TAGS")) {
      // "name1=value1, name2=value2"
      std::string v(value);
      size_t at = 0;
      while (at <= v.size()) {
        size_t comma = v.find(',', at);
        if (comma == std::string::npos) comma = v.size();
        std::string pair = v.substr(at, comma - at);
        pair.erase(0, pair.find_first_not_of(" \t\r\n"));
        pair.erase(pair.find_last_not_of(" \t\r\n") + 1);
        if (!pair.empty()) {
          size_t eq = pair.find('=');
          std::string n = pair.substr(0, eq);
          std::string t = eq == std::string::npos ? "" : pair.substr(eq + 1);
          if (n.empty() || t.empty() || !is_tag_text(n) || !is_tag_text(t)) {
            return Status::invalid(field +
                                   ": X-SES-MESSAGE-TAGS must be name=value pairs of "
                                   "ASCII letters, digits, '_' and '-'; got '" +
                                   pair + "'.");
          }
          out.tags.emplace_back(n, t);
        }
        at = comma + 1;
      }
      continue;
    } else if (iequals(f.name, "Message-ID")) {
      has_id = true;
    } else if (iequals(f.name, "Date")) {
      has_date = true;
    }
    headers.append(whole);
  }
  if (!out.from) return Status::invalid(field + ": the message has no From field.");

  std::string prefix;
  if (!has_date) prefix += "Date: " + mail::format_date(now) + "\r\n";
  if (!has_id) {
    prefix +=
        mail::format_structured("Message-ID", "<" + ses_message_id + "@" + out.from->domain + ">");
  }
  out.data.reserve(prefix.size() + headers.size() + data.size() - end);
  out.data.append(prefix);
  out.data.append(headers);
  out.data.append(std::string_view(data).substr(end + 2));
  return out;
}

}  // namespace magnetic::api
