// Reading and adjusting the header block of a message submitted whole (SMTP submission, SES Raw
// content) before it is spooled: find the From address, take out the X-SES-* control fields that
// SES removes, and add the Message-ID and Date fields a message must carry when the client left
// them out.
//
// Only the header block is parsed (up to the first empty line); the body is kept byte for byte.
// Hand-written rather than GMime: GMime re-serializes what it parses, and a message that is
// signed later must go out with the client's bytes untouched.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace magnetic::service {

struct HeaderField {
  std::string name;   // as written
  std::string value;  // unfolded (CRLF + WSP joined), leading space removed
};

// The header fields of a message, in order. Errors: no header block (no colon on a first
// line), a field name with bytes outside 33..126.
Result<std::vector<HeaderField>> parse_header_block(std::string_view message);

struct SubmittedMessage {
  std::string data;               // the message to spool
  std::string from;               // the From address (addr-spec), "" if there is none
  std::string configuration_set;  // from X-SES-CONFIGURATION-SET, removed from data
  std::vector<std::pair<std::string, std::string>> tags;  // X-SES-MESSAGE-TAGS "k=v, k=v"
  std::vector<std::string> to, cc, bcc;  // addr-specs of To, Cc and Bcc (Bcc removed from data)
};

// Prepares a submitted message. message_id_domain names the domain of an added Message-ID
// (<message_id@domain>). Errors name the field at fault (e.g. two From fields, an unreadable
// From).
Result<SubmittedMessage> prepare_submitted(std::string_view message, const std::string& message_id,
                                           const std::string& message_id_domain);

}  // namespace magnetic::service
