// Building one RFC 5322 / MIME message for one recipient.
//
// The builder writes CRLF line endings throughout, no line over 998 octets, and chooses
// each part's transfer encoding: 7bit when the text is ASCII with short lines,
// quoted-printable otherwise. Text and HTML together make multipart/alternative (text
// first); one alone makes a single-part message.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mail/address.h"

namespace magnetic::mail {

struct MessageSpec {
  Mailbox from;
  Mailbox to;
  std::string subject;     // UTF-8; encoded and folded by the builder
  std::string text;        // text/plain body, UTF-8; empty means no text part
  std::string html;        // text/html body, UTF-8; empty means no HTML part
  std::string message_id;  // with angle brackets, from make_message_id()
  std::chrono::system_clock::time_point date;
  // Further fields in order, e.g. {"List-Unsubscribe", "<https://...>, <mailto:...>"}.
  // Values are formatted with format_structured (ASCII expected, controls removed).
  std::vector<std::pair<std::string, std::string>> extra_headers;
};

// Appends the whole message (headers, blank line, body) to out. Reusing out across calls
// avoids an allocation per message. Field order: Date, From, To, Subject, Message-ID,
// MIME-Version, extra_headers, then Content-Type (and Content-Transfer-Encoding for one part).
// Bodies are written with CRLF line breaks; a single-part body that does not end with a line
// break gets one, since a message ends with CRLF. Thread-safe (no shared state).
void build_message(const MessageSpec& spec, std::string& out);

// "<26-char-id@domain>": unique across nodes (base/ids.h).
std::string make_message_id(std::string_view domain);

// RFC 5322 date-time in UTC: "Thu, 03 Dec 2026 22:24:09 +0000".
std::string format_date(std::chrono::system_clock::time_point when);

}  // namespace magnetic::mail
