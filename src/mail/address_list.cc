// Address lists: one pass that unfolds, drops comments and cuts the value at the commas and
// group delimiters that are outside quotes and angle brackets; each piece then goes to
// parse_mailbox, so the rules for one mailbox live in one place.
#include "mail/address_list.h"

#include <string>

namespace magnetic::mail {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<std::vector<Mailbox>> parse_address_list(std::string_view value) {
  std::vector<std::string> pieces;
  std::string current;
  bool in_quote = false, in_angle = false;
  int comment_depth = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c == '\r' || c == '\n') continue;  // unfolding: the whitespace after the break stays
    if (comment_depth > 0) {
      if (c == '\\') {
        ++i;
      } else if (c == '(') {
        ++comment_depth;
      } else if (c == ')' && --comment_depth == 0) {
        current.push_back(' ');
      }
      continue;
    }
    if (in_quote) {
      current.push_back(c);
      if (c == '\\' && i + 1 < value.size()) {
        current.push_back(value[++i]);
      } else if (c == '"') {
        in_quote = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_quote = true;
        current.push_back(c);
        break;
      case '(':
        comment_depth = 1;
        break;
      case '<':
        if (in_angle) return Status::invalid("'<' inside an angle-bracketed address");
        in_angle = true;
        current.push_back(c);
        break;
      case '>':
        in_angle = false;
        current.push_back(c);
        break;
      case ',':
      case ';':
        if (in_angle) {
          current.push_back(c);
        } else {
          pieces.push_back(std::move(current));
          current.clear();
        }
        break;
      case ':':
        if (in_angle) {
          current.push_back(c);
        } else {
          current.clear();  // a group's display name
        }
        break;
      default:
        current.push_back(c);
    }
  }
  if (in_quote) return Status::invalid("unterminated quoted string");
  if (comment_depth > 0) return Status::invalid("unterminated comment");
  if (in_angle) return Status::invalid("unterminated angle bracket");
  pieces.push_back(std::move(current));

  std::vector<Mailbox> out;
  for (const std::string& piece : pieces) {
    std::string_view text = trim(piece);
    if (text.empty()) continue;
    Result<Mailbox> mailbox = parse_mailbox(text);
    if (!mailbox) {
      return Status::invalid("mailbox " + std::to_string(out.size() + 1) + " ('" +
                             std::string(text) + "'): " + mailbox.status().message());
    }
    out.push_back(std::move(*mailbox));
  }
  return out;
}

}  // namespace magnetic::mail
