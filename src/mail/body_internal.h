// Body helpers shared by the message builder (message.cc) and the MIME builder (mime.cc).
// Internal to mail/.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace magnetic::mail::internal {

// True when body can go as 7bit: ASCII without NUL, CR only before LF, no line over max_line.
inline bool fits_7bit(std::string_view body, size_t max_line) {
  size_t line = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    auto c = static_cast<unsigned char>(body[i]);
    if (c >= 0x80 || c == 0) return false;
    if (c == '\r') {
      if (i + 1 >= body.size() || body[i + 1] != '\n') return false;
      continue;
    }
    if (c == '\n') {
      line = 0;
    } else if (++line > max_line) {
      return false;
    }
  }
  return true;
}

// Appends body with every line ending made CRLF (fits_7bit has ruled out a bare CR).
inline void append_7bit(std::string_view body, std::string& out) {
  size_t start = 0;
  while (start < body.size()) {
    size_t lf = body.find('\n', start);
    if (lf == std::string_view::npos) {
      out.append(body.substr(start));
      return;
    }
    size_t end = (lf > start && body[lf - 1] == '\r') ? lf - 1 : lf;
    out.append(body.substr(start, end - start));
    out.append("\r\n");
    start = lf + 1;
  }
}

}  // namespace magnetic::mail::internal
