// Reply parsing: a reply is one or more lines "CCC-text" ending with "CCC text" (or a bare
// "CCC"). The enhanced status code is taken from the first line only, and only when it is
// well formed and its class agrees with the reply code: servers do send "250 5.1.1" or
// "451 5.7.1", and trusting such a code would turn a deferral into a bounce.
#include "smtp/reply.h"

#include <cstddef>

namespace magnetic::smtp {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// One number of an enhanced code: 1 to 3 digits, no leading zero unless it is just "0".
bool valid_number(std::string_view part, size_t max_digits) {
  if (part.empty() || part.size() > max_digits) return false;
  for (char c : part) {
    if (!is_digit(c)) return false;
  }
  return part.size() == 1 || part[0] != '0';
}

// The reply code of a line, or -1 when the line does not start with a valid one.
int line_code(std::string_view line) {
  if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2])) {
    return -1;
  }
  if (line[0] < '2' || line[0] > '5' || line[1] > '5') return -1;
  return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

// Removes a leading enhanced code (and the spaces after it) from text when it equals `code`.
std::string_view strip_code(std::string_view text, std::string_view code) {
  if (text.size() < code.size() || text.substr(0, code.size()) != code) return text;
  if (text.size() > code.size() && text[code.size()] != ' ') return text;
  text.remove_prefix(code.size());
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  return text;
}

}  // namespace

std::string Reply::to_string() const {
  std::string out;
  if (code == 0) {
    out = "no reply";
    if (!stage.empty()) out += " at " + stage;
    if (!text.empty()) out += ": ";
  } else {
    out = std::to_string(code);
    if (!enhanced.empty()) out += " " + enhanced;
    if (!text.empty()) out += ' ';
  }
  for (char c : text) out += c == '\n' ? ' ' : c;
  return out;
}

bool valid_enhanced_code(std::string_view code, int reply_code) {
  size_t first_dot = code.find('.');
  if (first_dot == std::string_view::npos) return false;
  size_t second_dot = code.find('.', first_dot + 1);
  if (second_dot == std::string_view::npos) return false;

  std::string_view klass = code.substr(0, first_dot);
  std::string_view subject = code.substr(first_dot + 1, second_dot - first_dot - 1);
  std::string_view detail = code.substr(second_dot + 1);
  if (klass != "2" && klass != "4" && klass != "5") return false;
  if (!valid_number(subject, 3) || !valid_number(detail, 3)) return false;
  return klass[0] - '0' == reply_code / 100;
}

bool parse_reply(std::string_view text, Reply& out) {
  out.code = 0;
  out.enhanced.clear();
  out.text.clear();

  bool first = true;
  bool complete = false;
  while (!text.empty()) {
    if (complete) return false;  // lines after the last line

    // Split off one line; the last one may lack its line ending.
    size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

    int code = line_code(line);
    if (code < 0) return false;
    if (!first && code != out.code) return false;
    if (line.size() > 3 && line[3] != '-' && line[3] != ' ') return false;
    complete = line.size() == 3 || line[3] == ' ';
    std::string_view rest = line.size() > 4 ? line.substr(4) : std::string_view();

    if (first) {
      out.code = code;
      std::string_view token = rest.substr(0, rest.find(' '));
      if (valid_enhanced_code(token, code)) {
        out.enhanced = std::string(token);
        rest = strip_code(rest, token);
      }
    } else {
      out.text += '\n';
      // Multi-line replies usually repeat the enhanced code on every line.
      if (!out.enhanced.empty()) rest = strip_code(rest, out.enhanced);
    }
    out.text.append(rest);
    first = false;
  }
  return complete;
}

}  // namespace magnetic::smtp
