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
#include <vector>

#include "mail/address.h"

namespace magnetic::mail {

// An unstructured field (Subject, X-anything): text is UTF-8.
std::string format_unstructured(std::string_view name, std::string_view text);

// An address field (From, To, Reply-To) holding one mailbox. The display name is quoted or
// encoded as needed; the address is written as is.
std::string format_mailbox(std::string_view name, const Mailbox& mailbox);

// An address field holding a list of mailboxes ("To: a@example.com, B <b@example.com>"), with
// each display name quoted or encoded as in format_mailbox (encoded-words follow RFC 2047's
// phrase rules, so a name with a comma stays one name). Folded at spaces, between mailboxes or
// inside a display name. An empty list gives the name with an empty value.
std::string format_mailbox_list(std::string_view name, const std::vector<Mailbox>& mailboxes);

// A structured field whose value the caller has already made valid ASCII (Message-ID,
// List-Unsubscribe, Content-Type, ...). Control characters are still removed; long values are
// folded at whitespace. A single token longer than a line (998) cannot be folded and is broken
// with CRLF SP, which changes it: callers keep tokens shorter than that.
std::string format_structured(std::string_view name, std::string_view value);

// One RFC 2047 encoding of a UTF-8 phrase or text, as it would appear inside a header
// (no folding). Returned unchanged when it is printable ASCII. Two refinements of that rule, so
// that decode_words(encode_words(s)) == s: an ASCII word containing "=?" is encoded too (a reader
// would otherwise take it for an encoded-word), and control characters become a space as in the
// format_* functions. Each encoded-word is at most 75 characters and holds whole UTF-8
// characters; invalid UTF-8 is replaced by U+FFFD.
std::string encode_words(std::string_view text);

// The same fields appended to out instead of returned (the message builder's hot path).
void append_unstructured(std::string& out, std::string_view name, std::string_view text);
void append_mailbox(std::string& out, std::string_view name, const Mailbox& mailbox);
void append_structured(std::string& out, std::string_view name, std::string_view value);
void append_mailbox_list(std::string& out, std::string_view name,
                         const std::vector<Mailbox>& mailboxes);

// Decodes a field value as a reader sees it (after "Name:", without the final line break):
// folds (CRLF or LF followed by whitespace) are unfolded as RFC 5322 says (the line break goes,
// the whitespace stays), RFC 2047 encoded-words are decoded to UTF-8 (any charset iconv knows;
// an RFC 2231 language suffix "*en" is ignored), and whitespace between two adjacent
// encoded-words is dropped. Lenient where mail in the wild needs it: adjacent words of one
// charset are joined before conversion (a character split across words survives), whitespace
// inside an encoded-word that a fold put there is dropped, and "=?" that does not start a
// well-formed word is kept as text. Unknown charsets leave the word as it was.
std::string decode_words(std::string_view value);

}  // namespace magnetic::mail
