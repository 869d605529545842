// Header field formatting: RFC 5322 folding and RFC 2047 encoded-words.
//
// Every function here returns a complete field, "Name: value\r\n", with lines folded at 78
// characters where possible and never longer than 998. Values may come from recipients'
// data: CR, LF and other control characters in a value are never written as such, so data
// can never end a header or add one (they become a space). Non-ASCII text becomes RFC 2047
// encoded-words (UTF-8, Q or B, whichever is shorter).
#pragma once

#include <string>
#include <string_view>

#include "mail/address.h"

namespace magnetic::mail {

// An unstructured field (Subject, X-anything): text is UTF-8.
std::string format_unstructured(std::string_view name, std::string_view text);

// An address field (From, To, Reply-To) holding one mailbox. The display name is quoted or
// encoded as needed; the address is written as is.
std::string format_mailbox(std::string_view name, const Mailbox& mailbox);

// A structured field whose value the caller has already made valid ASCII (Message-ID,
// List-Unsubscribe, Content-Type, ...). Control characters are still removed; long values are
// folded at whitespace.
std::string format_structured(std::string_view name, std::string_view value);

// One RFC 2047 encoding of a UTF-8 phrase or text, as it would appear inside a header
// (no folding). Returned unchanged when it is printable ASCII.
std::string encode_words(std::string_view text);

}  // namespace magnetic::mail
