// DKIM canonicalization (RFC 6376 section 3.4) and splitting a message into fields and body.
//
// Strategy: single forward passes over views of the message that append into a caller's
// buffer, so the signer can reuse one per-thread buffer and never copies a field twice. The
// relaxed body pass defers empty lines and writes them only when a non-empty line follows,
// which removes trailing empty lines without looking ahead. Written by hand because OpenSSL
// and GMime offer no DKIM canonicalization and the pass is on the signing hot path.
#include "dkim/canonicalize_internal.h"

#include <openssl/evp.h>

#include <cstring>

#include "dkim/signer.h"

namespace magnetic::dkim {
namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool is_blank(std::string_view line) {
  for (char c : line) {
    if (!is_wsp(c)) return false;
  }
  return true;
}

// Appends the relaxed form of one body line (no CRLF): WSP runs become one SP, trailing WSP
// goes; leading WSP of a non-blank line stays as one SP.
void append_relaxed_line(std::string& out, std::string_view line) {
  bool pending_space = false;
  for (char c : line) {
    if (is_wsp(c)) {
      pending_space = true;
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
}

}  // namespace

void append_header_relaxed(std::string& out, std::string_view name, std::string_view value) {
  for (char c : name) {
    if (!is_wsp(c)) out.push_back(ascii_lower(c));
  }
  out.push_back(':');

  // Unfolding removes every CRLF; the WSP around it then joins the run that is collapsed.
  bool pending_space = false;
  bool any = false;
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c == '\r' && i + 1 < value.size() && value[i + 1] == '\n') {
      ++i;
      continue;
    }
    if (is_wsp(c)) {
      pending_space = true;
      continue;
    }
    if (pending_space && any) out.push_back(' ');
    pending_space = false;
    any = true;
    out.push_back(c);
  }
  out.append("\r\n");
}

void append_body_relaxed(std::string& out, std::string_view body) {
  size_t deferred_empty_lines = 0;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t eol = body.find("\r\n", pos);
    std::string_view line =
        body.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    pos = eol == std::string_view::npos ? body.size() : eol + 2;

    if (is_blank(line)) {
      ++deferred_empty_lines;
      continue;
    }
    for (; deferred_empty_lines > 0; --deferred_empty_lines) out.append("\r\n");
    append_relaxed_line(out, line);
    out.append("\r\n");  // also ends a last line that had no CRLF
  }
}

Status split_message_into(std::string_view message, MessageParts& parts) {
  parts.fields.clear();
  parts.body = {};

  size_t pos = 0;
  while (pos < message.size()) {
    size_t eol = message.find("\r\n", pos);
    size_t line_end = eol == std::string_view::npos ? message.size() : eol;
    size_t next = eol == std::string_view::npos ? message.size() : eol + 2;

    if (line_end == pos) {  // the empty line: the body follows
      parts.body = message.substr(next);
      return Status::ok();
    }
    if (is_wsp(message[pos]) && !parts.fields.empty()) {
      // A continuation: widen the previous field's value over this line.
      HeaderField& last = parts.fields.back();
      last.value = std::string_view(
          last.value.data(), static_cast<size_t>(message.data() + line_end - last.value.data()));
    } else {
      std::string_view line = message.substr(pos, line_end - pos);
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) {
        return Status::invalid("header line " + std::to_string(parts.fields.size() + 1) +
                               " has no colon");
      }
      parts.fields.push_back({line.substr(0, colon), line.substr(colon + 1)});
    }
    pos = next;
  }
  return Status::ok();
}

Result<MessageParts> split_message(std::string_view message) {
  MessageParts parts;
  Status s = split_message_into(message, parts);
  if (!s) return s;
  return parts;
}

std::string canonicalize_header_relaxed(std::string_view name, std::string_view value) {
  std::string out;
  out.reserve(name.size() + value.size() + 3);
  append_header_relaxed(out, name, value);
  return out;
}

std::string canonicalize_header_simple(std::string_view name, std::string_view value) {
  std::string out;
  out.reserve(name.size() + value.size() + 3);
  out.append(name).append(":").append(value);
  if (!value.ends_with("\r\n")) out.append("\r\n");
  return out;
}

std::string canonicalize_body_relaxed(std::string_view body) {
  std::string out;
  out.reserve(body.size() + 2);
  append_body_relaxed(out, body);
  return out;
}

std::string canonicalize_body_simple(std::string_view body) {
  // Trailing empty lines go; what remains ends with exactly one CRLF ("" becomes "\r\n").
  size_t end = body.size();
  while (end >= 2 && body[end - 2] == '\r' && body[end - 1] == '\n') end -= 2;
  std::string out(body.substr(0, end));
  out.append("\r\n");
  return out;
}

std::string body_hash(std::string_view body, Canonicalization canonicalization) {
  std::string canonical = canonicalization == Canonicalization::kRelaxed
                              ? canonicalize_body_relaxed(body)
                              : canonicalize_body_simple(body);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(canonical.data(), canonical.size(), digest, &len, EVP_sha256(), nullptr);
  return base64_encode({reinterpret_cast<const char*>(digest), len});
}

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<CanonicalizationPair> parse_canonicalization_tag(std::optional<std::string_view> value) {
  CanonicalizationPair pair;
  if (!value) return pair;

  auto word = [](std::string_view w) -> std::optional<Canonicalization> {
    if (w == "simple") return Canonicalization::kSimple;
    if (w == "relaxed") return Canonicalization::kRelaxed;
    return std::nullopt;
  };
  std::string_view v = *value;
  size_t slash = v.find('/');
  auto header = word(v.substr(0, slash));
  if (!header) return Status::invalid("bad c= value '" + std::string(v) + "'");
  pair.header = *header;
  if (slash == std::string_view::npos) return pair;
  auto body = word(v.substr(slash + 1));
  if (!body) return Status::invalid("bad c= value '" + std::string(v) + "'");
  pair.body = *body;
  return pair;
}

}  // namespace magnetic::dkim
