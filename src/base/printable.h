// Quoting bytes that came from outside (a file, a peer) into an error message or a log line:
// a binary file named as a rules file, or a control character in a report field, must not put
// raw bytes on a terminal or split a log line.
#pragma once

#include <string>
#include <string_view>

namespace magnetic {

// `text` with every byte outside printable ASCII written as \xHH (a backslash as "\\"), cut
// after max_bytes of input with "..." appended.
inline std::string printable(std::string_view text, size_t max_bytes = 80) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  size_t n = text.size() < max_bytes ? text.size() : max_bytes;
  for (size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '\\') {
      out += "\\\\";
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (n < text.size()) out += "...";
  return out;
}

}  // namespace magnetic
