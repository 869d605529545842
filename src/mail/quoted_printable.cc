// Quoted-printable (RFC 2045 6.7), written for the delivery hot path.
//
// Encoding, one input line at a time: bytes 33..126 except '=' stay as they are, everything else
// becomes =XX; a space or tab stays literal unless it ends the line (rule 3), a '.' that would
// start an output line becomes =2E (so the SMTP layer never has to dot-stuff a body line), and a
// lone CR becomes =0D (so no bare CR reaches the wire). Output lines hold at most 76 characters:
// a soft break "=" CRLF is taken before the token that would not fit, never inside an =XX.
// LF and CRLF in the input both become a hard CRLF. A table lookup per byte and appends into the
// caller's buffer keep this at memory speed; GMime's encoder would need its own stream objects
// for every part.
#include "mail/quoted_printable.h"

#include <array>

namespace magnetic::mail {
namespace {

constexpr size_t kMaxLine = 76;
constexpr char kHex[] = "0123456789ABCDEF";

constexpr std::array<bool, 256> make_literal_table() {
  std::array<bool, 256> t{};
  for (int c = 33; c <= 126; ++c) t[c] = c != '=';
  t[' '] = true;
  t['\t'] = true;
  return t;
}
constexpr std::array<bool, 256> kLiteral = make_literal_table();

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Encodes one line (no line break in it) into out.
void encode_line(std::string_view line, std::string& out) {
  size_t column = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    auto c = static_cast<unsigned char>(line[i]);
    bool last = i + 1 == line.size();
    bool ws = c == ' ' || c == '\t';
    bool literal = kLiteral[c] && !(ws && last);
    if (c == '.' && column == 0) literal = false;
    size_t width = literal ? 1 : 3;

    // The last token may reach column 76; any other needs room for a soft break after it.
    size_t limit = last ? kMaxLine : kMaxLine - 1;
    if (column + width > limit) {
      out.append("=\r\n");
      column = 0;
      if (c == '.') {
        literal = false;
        width = 3;
      }
    }
    if (literal) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('=');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
    column += width;
  }
}

}  // namespace

void qp_encode(std::string_view text, std::string& out) {
  out.reserve(out.size() + text.size() + text.size() / 16);
  size_t start = 0;
  while (start <= text.size()) {
    size_t lf = text.find('\n', start);
    if (lf == std::string_view::npos) {
      encode_line(text.substr(start), out);
      break;
    }
    size_t end = (lf > start && text[lf - 1] == '\r') ? lf - 1 : lf;
    encode_line(text.substr(start, end - start), out);
    out.append("\r\n");
    start = lf + 1;
  }
}

std::string qp_decode(std::string_view encoded) {
  std::string out;
  out.reserve(encoded.size());
  size_t i = 0;
  while (i < encoded.size()) {
    // One line at a time: trailing whitespace a transport may have added is dropped (6.7 (3)).
    size_t lf = encoded.find('\n', i);
    size_t line_end = lf == std::string_view::npos ? encoded.size() : lf;
    size_t content_end = line_end;
    if (content_end > i && encoded[content_end - 1] == '\r') --content_end;
    while (content_end > i &&
           (encoded[content_end - 1] == ' ' || encoded[content_end - 1] == '\t')) {
      --content_end;
    }
    bool soft = false;
    for (size_t k = i; k < content_end; ++k) {
      char c = encoded[k];
      if (c != '=') {
        out.push_back(c);
        continue;
      }
      if (k + 1 == content_end) {
        soft = true;
        break;
      }
      if (k + 2 < content_end && hex_value(encoded[k + 1]) >= 0 && hex_value(encoded[k + 2]) >= 0) {
        out.push_back(
            static_cast<char>(hex_value(encoded[k + 1]) * 16 + hex_value(encoded[k + 2])));
        k += 2;
      } else {
        out.push_back('=');  // not an escape: keep it, as RFC 2045 suggests for robustness
      }
    }
    if (lf == std::string_view::npos) break;
    if (!soft) out.append("\r\n");
    i = lf + 1;
  }
  return out;
}

}  // namespace magnetic::mail
