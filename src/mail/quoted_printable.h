// Quoted-printable body encoding (RFC 2045 section 6.7).
#pragma once

#include <string>
#include <string_view>

namespace magnetic::mail {

// Appends the quoted-printable form of text to out. Line breaks in text (LF or CRLF) become
// CRLF; encoded lines are at most 76 characters with soft breaks; trailing whitespace before a
// break is encoded; a leading '.' is encoded so the body never needs dot-stuffing at a line start.
void qp_encode(std::string_view text, std::string& out);

// Decodes quoted-printable (for tests and for reading messages back).
std::string qp_decode(std::string_view encoded);

}  // namespace magnetic::mail
