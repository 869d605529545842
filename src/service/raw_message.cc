#include "service/raw_message.h"

#include <cctype>

#include "base/ids.h"
#include "mail/address.h"
#include "mail/message.h"

namespace magnetic::service {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

// Where the header block ends: the offset just past its empty line (or the message size when it
// has no body), and where the body starts.
size_t header_end(std::string_view m, size_t& body_start) {
  size_t pos = 0;
  while (pos < m.size()) {
    size_t eol = m.find('\n', pos);
    if (eol == std::string_view::npos) {
      body_start = m.size();
      return m.size();
    }
    size_t len = eol - pos;
    if (len == 0 || (len == 1 && m[pos] == '\r')) {
      body_start = eol + 1;
      return pos;
    }
    pos = eol + 1;
  }
  body_start = m.size();
  return m.size();
}

// Splits an address list on commas outside quotes, angle brackets and comments.
std::vector<std::string> split_addresses(std::string_view v) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false, escaped = false;
  int angle = 0, comment = 0;
  for (char c : v) {
    if (escaped) {
      cur += c;
      escaped = false;
      continue;
    }
    if (c == '\\' && (quoted || comment)) {
      escaped = true;
      cur += c;
      continue;
    }
    if (c == '"' && !comment) quoted = !quoted;
    if (!quoted) {
      if (c == '(') ++comment;
      if (c == ')' && comment) --comment;
      if (c == '<' && !comment) ++angle;
      if (c == '>' && angle && !comment) --angle;
      if (c == ',' && !angle && !comment) {
        out.push_back(cur);
        cur.clear();
        continue;
      }
    }
    cur += c;
  }
  out.push_back(cur);
  std::vector<std::string> trimmed;
  for (auto& s : out) {
    size_t a = s.find_first_not_of(" \t");
    if (a == std::string::npos) continue;
    size_t b = s.find_last_not_of(" \t");
    trimmed.push_back(s.substr(a, b - a + 1));
  }
  return trimmed;
}

// Removes "(comments)" outside quotes, so that "a@b.example (Ann)" reads as an address.
std::string strip_comments(std::string_view v) {
  std::string out;
  bool quoted = false, escaped = false;
  int depth = 0;
  for (char c : v) {
    if (escaped) {
      if (!depth) out += c;
      escaped = false;
      continue;
    }
    if (c == '\\' && (quoted || depth)) {
      escaped = true;
      if (!depth) out += c;
      continue;
    }
    if (!depth && c == '"') quoted = !quoted;
    if (!quoted && c == '(') {
      ++depth;
      continue;
    }
    if (!quoted && depth && c == ')') {
      --depth;
      continue;
    }
    if (!depth) out += c;
  }
  size_t a = out.find_first_not_of(" \t");
  size_t b = out.find_last_not_of(" \t");
  return a == std::string::npos ? std::string() : out.substr(a, b - a + 1);
}

Status read_list(const HeaderField& f, std::vector<std::string>& out) {
  for (const auto& item : split_addresses(f.value)) {
    std::string text = strip_comments(item);
    // A group "name: a@x, b@y;" is not split here; its display name is dropped.
    if (auto colon = text.find(':'); colon != std::string::npos && text.find('<') > colon &&
                                      text.find('"') > colon) {
      text = text.substr(colon + 1);
      if (!text.empty() && text.back() == ';') text.pop_back();
      if (text.find_first_not_of(" \t") == std::string::npos) continue;
    }
    auto m = mail::parse_mailbox(text);
    if (!m) {
      return Status::invalid("the " + f.name + " field: '" + item + "': " + m.status().message());
    }
    out.push_back(m->address());
  }
  return Status::ok();
}

}  // namespace

Result<std::vector<HeaderField>> parse_header_block(std::string_view m) {
  size_t body_start = 0;
  size_t end = header_end(m, body_start);
  std::vector<HeaderField> fields;
  size_t pos = 0;
  while (pos < end) {
    size_t eol = m.find('\n', pos);
    if (eol == std::string_view::npos || eol > end) eol = end;
    std::string_view line = m.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = eol + 1;
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      if (fields.empty()) return Status::invalid("the message starts with a continuation line");
      fields.back().value += line;
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return Status::invalid("header line " + std::to_string(fields.size() + 1) +
                             " is not a field (no 'name:')");
    }
    std::string_view name = line.substr(0, colon);
    for (unsigned char c : name) {
      if (c < 33 || c > 126) {
        return Status::invalid("header field name '" + std::string(name) +
                               "' has a character that is not allowed");
      }
    }
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    fields.push_back({std::string(name), std::string(value)});
  }
  if (fields.empty()) return Status::invalid("the message has no header fields");
  return fields;
}

Result<SubmittedMessage> prepare_submitted(std::string_view m, const std::string& message_id,
                                           const std::string& message_id_domain) {
  auto fields = parse_header_block(m);
  if (!fields) return fields.status();
  SubmittedMessage out;
  bool has_message_id = false, has_date = false;
  int froms = 0;
  for (const auto& f : *fields) {
    if (iequals(f.name, "From")) {
      ++froms;
      std::vector<std::string> list;
      if (Status s = read_list(f, list); !s) return s;
      if (list.size() != 1) {
        return Status::invalid("the From field must hold exactly one address (it holds " +
                               std::to_string(list.size()) + ")");
      }
      out.from = list[0];
    } else if (iequals(f.name, "To")) {
      if (Status s = read_list(f, out.to); !s) return s;
    } else if (iequals(f.name, "Cc")) {
      if (Status s = read_list(f, out.cc); !s) return s;
    } else if (iequals(f.name, "Bcc")) {
      if (Status s = read_list(f, out.bcc); !s) return s;
    } else if (iequals(f.name, "Message-ID")) {
      has_message_id = true;
    } else if (iequals(f.name, "Date")) {
      has_date = true;
    } else if (iequals(f.name, "X-SES-CONFIGURATION-SET")) {
      out.configuration_set = strip_comments(f.value);
    } else if (iequals(f.name, "X-SES-MESSAGE-TAGS")) {
      for (const auto& item : split_addresses(f.value)) {
        auto eq = item.find('=');
        if (eq == std::string::npos || eq == 0) {
          return Status::invalid("X-SES-MESSAGE-TAGS: '" + item + "' is not name=value");
        }
        out.tags.emplace_back(item.substr(0, eq), item.substr(eq + 1));
      }
    }
  }
  if (froms > 1) return Status::invalid("the message has " + std::to_string(froms) + " From fields");

  // Copy the message without the control fields and Bcc, line by line (folded lines belong to
  // the field before them).
  size_t body_start = 0;
  size_t end = header_end(m, body_start);
  std::string data;
  data.reserve(m.size() + 128);
  if (!has_date) {
    data += "Date: " + mail::format_date(std::chrono::system_clock::now()) + "\r\n";
  }
  if (!has_message_id) data += "Message-ID: <" + message_id + "@" + message_id_domain + ">\r\n";
  bool dropping = false;
  size_t pos = 0;
  while (pos < end) {
    size_t eol = m.find('\n', pos);
    if (eol == std::string_view::npos || eol > end) eol = end;
    std::string_view line = m.substr(pos, eol - pos);
    pos = eol + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    bool continuation = !line.empty() && (line[0] == ' ' || line[0] == '\t');
    if (!continuation) {
      std::string_view name = line.substr(0, line.find(':'));
      dropping = iequals(name, "X-SES-CONFIGURATION-SET") || iequals(name, "X-SES-MESSAGE-TAGS") ||
                 iequals(name, "Bcc");
    }
    if (dropping) continue;
    data.append(line);
    data += "\r\n";
  }
  data += "\r\n";
  // The body as it came, with bare LF line ends made CRLF (SMTP requires CRLF).
  std::string_view body = body_start < m.size() ? m.substr(body_start) : std::string_view();
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '\n' && (i == 0 || body[i - 1] != '\r')) data += '\r';
    data += body[i];
  }
  if (!body.empty() && (data.size() < 2 || data.compare(data.size() - 2, 2, "\r\n") != 0)) {
    data += "\r\n";
  }
  out.data = std::move(data);
  return out;
}

}  // namespace magnetic::service
