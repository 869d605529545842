// Internal to api/: the parts of a SendEmail or SendBulkEmail request that become a message:
// addresses, caller headers, attachments, message tags, templates and raw messages. Readers put
// their first problem into the JsonObject's state, naming the field; builders return a Status
// whose message names the field.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "api/json_reader.h"
#include "base/status.h"
#include "mail/address.h"
#include "mail/mime.h"
#include "render/template.h"

namespace magnetic::api {

using HeaderList = std::vector<std::pair<std::string, std::string>>;
using TagList = std::vector<std::pair<std::string, std::string>>;

constexpr size_t kMaxRecipients = 50;  // SES: To, Cc and Bcc together, per message
constexpr size_t kMaxAddressLength = 512;

// One address as SES takes it: "user@example.com" or "Name <user@example.com>", with RFC 2047
// encoded-words allowed in the name.
std::optional<mail::Mailbox> read_mailbox(JsonObject& o, std::string_view key, Need need);
std::optional<std::vector<mail::Mailbox>> read_mailboxes(JsonObject& o, std::string_view key);

struct Destination {
  std::vector<mail::Mailbox> to, cc, bcc;
  size_t count() const { return to.size() + cc.size() + bcc.size(); }
};
// A Destination object: at least one address, at most kMaxRecipients.
std::optional<Destination> read_destination(JsonObject& o, std::string_view key, Need need);

// MessageHeaderList: at most 15, names and values as the model's patterns say, no CR or LF,
// and none of the fields the service writes itself (From, To, Subject, Date, ...).
std::optional<HeaderList> read_headers(JsonObject& o, std::string_view key);
// AttachmentList.
std::optional<std::vector<mail::Attachment>> read_attachments(JsonObject& o, std::string_view key);
// MessageTagList: names and values of ASCII letters, digits, '_' and '-', at most 256 each.
std::optional<TagList> read_message_tags(JsonObject& o, std::string_view key);

// TemplateData and ReplacementTemplateData: a string holding a JSON object.
std::optional<nlohmann::json> read_template_data(JsonObject& o, std::string_view key);

// Merges over: headers of the same name (without case) are replaced, new ones appended.
HeaderList merge_headers(const HeaderList& base, const HeaderList& over);
TagList merge_tags(const TagList& base, const TagList& over);

// A template's three parts, compiled. A missing part is null.
struct CompiledTemplate {
  std::shared_ptr<const render::Template> subject, text, html;
};
struct TemplateText {
  std::string subject, text, html;
};
// Compiles; a syntax error names the part ("<where>.Html: line 2, column 5: ...").
Result<CompiledTemplate> compile_template(const TemplateText& source, const std::string& where);
// Renders every part. Subject and Text never escape; Html escapes as handlebars.js does unless
// ses_escaping (SES renders {{x}} in HTML as is). A variable missing from data fails, naming the
// part and variable.
Result<TemplateText> render_template(const CompiledTemplate& t, const nlohmann::json& data,
                                     bool ses_escaping);

// A raw message (Content.Raw.Data) made ready to spool: line ends made CRLF, the Bcc,
// X-SES-CONFIGURATION-SET and X-SES-MESSAGE-TAGS fields taken out (the last two are read, as SES
// reads them), a Message-ID and Date added when missing.
struct RawMessage {
  std::string data;
  std::optional<mail::Mailbox> from;    // the From field's mailbox
  std::optional<mail::Mailbox> sender;  // the Sender field's, when there is one
  Destination header_recipients;        // from To, Cc and Bcc
  std::string configuration_set;        // X-SES-CONFIGURATION-SET, may be empty
  TagList tags;                         // X-SES-MESSAGE-TAGS
};
// field names the request field for errors. A missing Message-ID becomes
// "<ses_message_id@domain of From>" and a missing Date is now. No From field fails.
Result<RawMessage> prepare_raw_message(std::string bytes, const std::string& field,
                                       const std::string& ses_message_id,
                                       std::chrono::system_clock::time_point now);

}  // namespace magnetic::api
