// An SMTP reply as read from the wire: code, enhanced status code (RFC 3463) when the
// server gave a valid one, and the text of all lines.
#pragma once

#include <string>
#include <string_view>

namespace magnetic::smtp {

struct Reply {
  int code = 0;          // 250, 451, 550, ...; 0 when there was no reply (network error, timeout)
  std::string enhanced;  // "5.1.1" when the first line carried a valid enhanced code, else ""
  std::string text;      // the text after code (and enhanced code) of every line, joined by "\n"
  // Where the reply came from: "connect", "greeting", "ehlo", "starttls", "auth", "mail",
  // "rcpt", "data", "dot" (the reply to the final dot), "rset", "quit".
  std::string stage;

  bool positive() const { return code >= 200 && code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500 && code < 600; }
  bool no_reply() const { return code == 0; }

  // One line as people quote it: "550 5.1.1 user unknown" (lines joined by spaces).
  std::string to_string() const;
};

// Parses one complete reply (one or more lines, each ending in CRLF or LF). Returns false when
// the text is not a well-formed reply (codes differ between lines, no code, ...).
bool parse_reply(std::string_view text, Reply& out);

// Validates an enhanced status code "class.subject.detail" (RFC 3463: class 2, 4 or 5; subject
// 0-999; detail 0-999, no leading zeros beyond one digit) whose class agrees with the reply code.
bool valid_enhanced_code(std::string_view code, int reply_code);

}  // namespace magnetic::smtp
