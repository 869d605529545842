// Envelope address validation (RFC 5321 4.1.2 and 4.5.3.1) and header mailbox parsing.
//
// Strategy: an envelope address is what goes into RCPT TO, so only the RFC 5321 grammar is
// accepted: no comments, no folding whitespace, no obsolete RFC 822 forms, no domain literals
// other than IPv4 and IPv6 addresses. Each refusal names its reason, because the message ends up
// in an import report or an API error that a person reads. IDN domains go through libidn2
// (IDNA 2008 with UTS #46 non-transitional mapping, as browsers and the big mailbox providers
// do); the grammar itself is checked here because no packaged library checks RFC 5321 paths.
#include "mail/address.h"

#include <arpa/inet.h>
#include <idn2.h>

#include <cstdlib>
#include <memory>

#include "mail/header.h"
#include "mail/utf8.h"

namespace magnetic::mail {
namespace {

constexpr size_t kMaxLocal = 64;     // RFC 5321 4.5.3.1.1
constexpr size_t kMaxDomain = 255;   // RFC 5321 4.5.3.1.2
constexpr size_t kMaxLabel = 63;     // RFC 1035 2.3.4
constexpr size_t kMaxAddress = 254;  // RFC 5321 4.5.3.1.3: 256-octet path less the brackets

bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

bool is_atext(unsigned char c) {
  return is_alpha(c) || is_digit(c) ||
         std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) !=
             std::string_view::npos;
}

std::string show(unsigned char c) {
  if (c < 0x20 || c == 0x7f) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    return std::string("control character 0x") + kHex[c >> 4] + kHex[c & 15];
  }
  if (c == ' ') return "a space";
  return std::string("'") + static_cast<char>(c) + "'";
}

Status check_dot_string(std::string_view local, bool smtputf8) {
  if (local.front() == '.') return Status::invalid("local part starts with a dot");
  if (local.back() == '.') return Status::invalid("local part ends with a dot");
  for (size_t i = 0; i < local.size();) {
    auto c = static_cast<unsigned char>(local[i]);
    if (c == '.') {
      if (local[i + 1] == '.') return Status::invalid("local part has two dots in a row");
      ++i;
      continue;
    }
    if (c >= 0x80) {
      if (!smtputf8) return Status::invalid("local part is not ASCII (needs SMTPUTF8)");
      size_t n = utf8::sequence_length(local, i);
      if (n == 0) return Status::invalid("local part is not valid UTF-8");
      i += n;
      continue;
    }
    if (!is_atext(c)) {
      return Status::invalid("local part contains " + show(c) + ", which needs quoting");
    }
    ++i;
  }
  return Status::ok();
}

// RFC 5321 Quoted-string: qtextSMTP is printable ASCII but '"' and '\'; quoted-pairSMTP is a
// backslash and one printable ASCII character. Returns its length, including both quotes.
Result<size_t> scan_quoted(std::string_view text, bool smtputf8) {
  for (size_t i = 1; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '"') return i + 1;
    if (c == '\\') {
      if (i + 1 >= text.size()) break;
      auto e = static_cast<unsigned char>(text[i + 1]);
      if (e < 0x20 || e > 0x7e) {
        return Status::invalid("quoted local part escapes " + show(e) +
                               " (only printable ASCII may follow a backslash)");
      }
      i += 2;
      continue;
    }
    if (c < 0x20 || c == 0x7f) {
      return Status::invalid("quoted local part contains " + show(c));
    }
    if (c >= 0x80) {
      if (!smtputf8) return Status::invalid("local part is not ASCII (needs SMTPUTF8)");
      size_t n = utf8::sequence_length(text, i);
      if (n == 0) return Status::invalid("local part is not valid UTF-8");
      i += n;
      continue;
    }
    ++i;
  }
  return Status::invalid("quoted local part has no closing quote");
}

bool parse_ipv4(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  while (true) {
    size_t start = i;
    int value = 0;
    while (i < s.size() && is_digit(static_cast<unsigned char>(s[i])) && i - start < 3) {
      value = value * 10 + (s[i] - '0');
      ++i;
    }
    if (i == start || value > 255) return false;
    ++parts;
    if (i == s.size()) return parts == 4;
    if (s[i] != '.' || parts == 4) return false;
    ++i;
  }
}

Status check_address_literal(std::string_view domain) {
  if (domain.back() != ']') return Status::invalid("address literal has no closing ']'");
  std::string_view inner = domain.substr(1, domain.size() - 2);
  if (inner.size() >= 5 && (inner.substr(0, 5) == "IPv6:" || inner.substr(0, 5) == "ipv6:" ||
                            inner.substr(0, 5) == "IPV6:")) {
    std::string ip(inner.substr(5));
    unsigned char buf[16];
    if (ip.empty() || inet_pton(AF_INET6, ip.c_str(), buf) != 1) {
      return Status::invalid("address literal is not a valid IPv6 address");
    }
    // RFC 5321 4.1.3 is stricter than inet_pton: "::" must stand for at least two groups, so
    // at most 6 groups may be written beside it (4 when an IPv4 part ends the address).
    if (ip.find("::") != std::string::npos) {
      bool v4 = ip.find('.') != std::string::npos;
      size_t groups = 0;
      for (size_t i = 0; i < ip.size();) {
        size_t colon = ip.find(':', i);
        size_t end = colon == std::string::npos ? ip.size() : colon;
        if (end > i && ip.substr(i, end - i).find('.') == std::string::npos) ++groups;
        if (colon == std::string::npos) break;
        i = colon + 1;
      }
      if (groups > (v4 ? 4u : 6u)) {
        return Status::invalid("address literal has \"::\" standing for a single zero group");
      }
    }
    return Status::ok();
  }
  if (!parse_ipv4(inner)) {
    return Status::invalid("address literal is neither an IPv4 address nor [IPv6:...]");
  }
  return Status::ok();
}

Status check_domain_name(std::string_view domain) {
  if (domain.size() > kMaxDomain) return Status::invalid("domain longer than 255 octets");
  size_t start = 0;
  while (true) {
    size_t dot = domain.find('.', start);
    std::string_view label =
        domain.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty()) {
      if (start == 0) return Status::invalid("domain starts with a dot");
      if (dot == std::string_view::npos) return Status::invalid("domain ends with a dot");
      return Status::invalid("domain has two dots in a row");
    }
    if (label.size() > kMaxLabel) return Status::invalid("domain label longer than 63 octets");
    if (label.front() == '-') return Status::invalid("domain label starts with a hyphen");
    if (label.back() == '-') return Status::invalid("domain label ends with a hyphen");
    for (unsigned char c : label) {
      if (!is_alpha(c) && !is_digit(c) && c != '-') {
        return Status::invalid("domain contains " + show(c));
      }
    }
    if (dot == std::string_view::npos) return Status::ok();
    start = dot + 1;
  }
}

bool is_ascii(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

// The domain in A-labels: ASCII is kept as written, a UTF-8 domain goes through libidn2.
// TODO: an ASCII "xn--" label is only checked as LDH, not decoded to see that it is valid
// Punycode of an allowed U-label (idn2_to_unicode_8z8z could); a bad one fails at DNS time.
Result<std::string> to_ascii_domain(std::string_view domain) {
  if (is_ascii(domain)) return std::string(domain);
  for (size_t i = 0; i < domain.size();) {
    size_t n = utf8::sequence_length(domain, i);
    if (n == 0) return Status::invalid("domain is not valid UTF-8");
    i += n;
  }
  std::string input(domain);
  char* output = nullptr;
  int rc = idn2_to_ascii_8z(input.c_str(), &output, IDN2_NONTRANSITIONAL);
  std::unique_ptr<char, decltype(&idn2_free)> owned(output, &idn2_free);
  if (rc != IDN2_OK) {
    return Status::invalid(std::string("international domain cannot be converted: ") +
                           idn2_strerror(rc));
  }
  return std::string(output);
}

bool has_control(std::string_view s) {
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return true;
  }
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A display name as typed: quoted parts lose their quotes and escapes, the rest has its
// encoded-words decoded.
Result<std::string> parse_display_name(std::string_view text) {
  std::string name;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '"') {
      size_t j = i + 1;
      std::string quoted;
      for (; j < text.size() && text[j] != '"'; ++j) {
        if (text[j] == '\\' && j + 1 < text.size()) ++j;
        quoted.push_back(text[j]);
      }
      if (j >= text.size()) return Status::invalid("display name has no closing quote");
      name.append(quoted);
      i = j + 1;
      continue;
    }
    size_t j = text.find('"', i);
    if (j == std::string_view::npos) j = text.size();
    // Outside quotes a name is words (RFC 5322 phrase, '.' allowed as obs-phrase does): a
    // special there is another address or a list, not a name ("a@x <b@y>", "A <a@x>, B").
    std::string_view words = text.substr(i, j - i);
    if (size_t k = words.find_first_of("<>@,;:[]()\\"); k != std::string_view::npos) {
      return Status::invalid(std::string("display name has '") + words[k] +
                             "' outside quotes (quote the name)");
    }
    name.append(decode_words(words));
    i = j;
  }
  return name;
}

}  // namespace

Result<Mailbox> parse_address(std::string_view text, const AddressOptions& options) {
  if (text.empty()) return Status::invalid("address is empty");
  // A UTF-8 domain may be longer before conversion than after, so the exact limit is checked
  // at the end; this only keeps absurd input away from libidn2.
  if (text.size() > 4 * kMaxAddress) return Status::invalid("address longer than 254 octets");

  // Local part: a quoted string, or everything before the first '@'.
  size_t at;
  if (text.front() == '"') {
    auto quoted = scan_quoted(text, options.smtputf8);
    if (!quoted) return quoted.status();
    at = *quoted;
    if (at >= text.size() || text[at] != '@') {
      return Status::invalid(at >= text.size() ? "address has no @ and domain"
                                               : "quoted local part is followed by " +
                                                     show(static_cast<unsigned char>(text[at])) +
                                                     " instead of @");
    }
  } else {
    at = text.find('@');
    if (at == std::string_view::npos) return Status::invalid("address has no @ and domain");
    if (at == 0) return Status::invalid("local part is empty");
    Status s = check_dot_string(text.substr(0, at), options.smtputf8);
    if (!s) return s;
  }
  std::string_view local = text.substr(0, at);
  if (local.size() > kMaxLocal) return Status::invalid("local part longer than 64 octets");

  // Domain: an address literal or a host name, IDN converted first.
  std::string_view domain_text = text.substr(at + 1);
  if (domain_text.empty()) return Status::invalid("domain is empty");
  if (domain_text.find('@') != std::string_view::npos) {
    return Status::invalid("address has more than one @ (quote the local part)");
  }
  std::string domain;
  if (domain_text.front() == '[') {
    Status s = check_address_literal(domain_text);
    if (!s) return s;
    domain = std::string(domain_text);
  } else {
    auto ascii = to_ascii_domain(domain_text);
    if (!ascii) return ascii.status();
    domain = std::move(ascii).value();
    Status s = check_domain_name(domain);
    if (!s) return s;
    // Domain names are case-insensitive: one spelling, so that routes, counts and duplicate
    // checks agree whatever case a list was written in.
    for (char& c : domain) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
  }
  if (local.size() + 1 + domain.size() > kMaxAddress) {
    return Status::invalid("address longer than 254 octets");
  }
  return Mailbox{"", std::string(local), std::move(domain)};
}

Result<Mailbox> parse_address(std::string_view text) { return parse_address(text, {}); }

Result<Mailbox> parse_mailbox(std::string_view text) {
  if (has_control(text)) return Status::invalid("mailbox contains a control character");
  text = trim(text);
  if (text.empty() || text.back() != '>') {
    if (size_t close = text.rfind('>'); close != std::string_view::npos) {
      return Status::invalid("mailbox has text after the address's closing '>'");
    }
    if (text.find('<') != std::string_view::npos)
      return Status::invalid("mailbox has '<' without '>'");
    return parse_address(text);
  }

  // "Name <address>": the '<' that opens the address is the last one outside quotes.
  size_t open = std::string_view::npos;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (quoted && text[i] == '\\') {
      ++i;
    } else if (text[i] == '"') {
      quoted = !quoted;
    } else if (!quoted && text[i] == '<') {
      open = i;
    }
  }
  if (open == std::string_view::npos) return Status::invalid("mailbox has '>' without '<'");
  std::string_view inside = trim(text.substr(open + 1, text.size() - open - 2));
  auto mailbox = parse_address(inside);
  if (!mailbox) return mailbox.status();
  std::string_view display = trim(text.substr(0, open));
  // The address repeated as the name ("a@x <a@x>") is common and harmless; any other '@'
  // outside quotes is refused by parse_display_name.
  if (std::equal(display.begin(), display.end(), inside.begin(), inside.end(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) ==
               std::tolower(static_cast<unsigned char>(b));
      })) {
    mailbox->display_name = std::string(display);
    return mailbox;
  }
  auto name = parse_display_name(display);
  if (!name) return name.status();
  mailbox->display_name = std::move(name).value();
  return mailbox;
}

}  // namespace magnetic::mail
