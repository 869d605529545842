// Email addresses: validation of envelope addresses (RFC 5321) and parsing of header
// mailboxes (RFC 5322 "Display Name <local@domain>"), with IDN domains converted to
// A-labels through libidn2.
//
// Thread-safe: all functions are pure.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace magnetic::mail {

struct Mailbox {
  std::string display_name;  // decoded UTF-8, may be empty
  std::string local;         // local part as it goes on the wire (dot-atom or quoted string)
  std::string domain;        // ASCII lower case: IDN domains are converted to A-labels ("xn--...")
  std::string address() const { return local + "@" + domain; }
};

// Validates one envelope address ("user@example.com", no angle brackets, no display name):
// RFC 5321 syntax (dot-atom or quoted-string local part, LDH domain labels, or an address
// literal), local part <= 64 octets, domain <= 255, whole path <= 254. A UTF-8 domain is
// converted to A-labels. The error message says why the address is invalid.
Result<Mailbox> parse_address(std::string_view text);

// Options for parse_address. By default a local part must be ASCII: a UTF-8 local part is only
// deliverable over SMTPUTF8 (RFC 6531), which the receiving MX must offer, so a caller that
// can fall back to plain SMTP must refuse such addresses up front.
struct AddressOptions {
  bool smtputf8 = false;  // accept UTF-8 (RFC 6531 UTF8-non-ascii) in the local part
};
Result<Mailbox> parse_address(std::string_view text, const AddressOptions& options);

// Parses a header mailbox as a user writes it for --from: "Name <user@example.com>",
// "\"Last, First\" <user@example.com>" or a bare address. The address part is validated
// with parse_address. A quoted display name has its backslash escapes removed; RFC 2047
// encoded-words outside quotes are decoded (RFC 2047 5(3): not inside them). Control characters
// (CR, LF, ...; TAB counts as a space) are refused.
// Comments and groups are not supported: this is for names that people type, not for reading
// arbitrary received headers.
Result<Mailbox> parse_mailbox(std::string_view text);

}  // namespace magnetic::mail
