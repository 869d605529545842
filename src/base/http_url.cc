#include "base/http_url.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace magnetic {
namespace {

bool path_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("-._~!$&'()*+,;=:@/?").find(c) != std::string_view::npos;
}

bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// What is wrong with a DNS name or dotted IPv4 host, or "". A host whose last label starts with
// a digit is an address (no top-level domain is numeric, RFC 3696 section 2) and must be four
// decimal numbers: resolvers also read "127.1", "2130706433", "0x7f.0.0.1" and "0177.0.0.1"
// (octal) as IPv4 addresses, so those would reach a host other than the one they seem to name.
std::string name_problem(std::string_view host) {
  if (host.empty()) return "it has no host";
  if (host.size() > 253) return "its host is longer than 253 characters";
  size_t last = host.rfind('.');
  std::string_view tld = last == std::string_view::npos ? host : host.substr(last + 1);
  if (!tld.empty() && std::isdigit(static_cast<unsigned char>(tld.front()))) {
    unsigned char address[4];
    if (inet_pton(AF_INET, std::string(host).c_str(), address) != 1) {
      return "its host is numeric but not an IPv4 address of four decimal numbers";
    }
    return "";
  }
  size_t label = 0;
  for (size_t i = 0; i <= host.size(); ++i) {
    if (i == host.size() || host[i] == '.') {
      if (label == 0) return "its host has an empty label";
      if (label > 63) return "its host has a label longer than 63 characters";
      if (host[i - label] == '-' || host[i - 1] == '-')
        return "its host has a label that starts or ends with '-'";
      label = 0;
      continue;
    }
    char c = host[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') {
      return "its host may hold only letters, digits, '-' and '.'";
    }
    ++label;
  }
  return "";
}

}  // namespace

Result<HttpUrl> parse_http_url(std::string_view url) {
  HttpUrl u;
  size_t sep = url.find("://");
  std::string scheme;
  if (sep != std::string_view::npos) {
    for (char c : url.substr(0, sep)) {
      scheme.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  if (scheme != "http" && scheme != "https") {
    return Status::invalid("it must start with http:// or https://");
  }
  u.tls = scheme == "https";
  std::string_view rest = url.substr(sep + 3);
  size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view tail = end == std::string_view::npos ? "" : rest.substr(end);

  // Authority: host and port, nothing else.
  if (authority.find('@') != std::string_view::npos) {
    return Status::invalid("it must not hold a user name or password");
  }
  std::string_view port;
  bool has_port = false;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return Status::invalid("its IPv6 address has no closing ']'");
    }
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return Status::invalid("its host is followed by something other than a port");
      }
      has_port = true;
      port = after.substr(1);
    }
    u.host = std::string(authority.substr(1, close - 1));
    unsigned char address[16];
    if (inet_pton(AF_INET6, u.host.c_str(), address) != 1) {
      return Status::invalid("its host is not an IPv6 address");
    }
  } else {
    std::string_view host = authority;
    if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      has_port = true;
      port = authority.substr(colon + 1);
    }
    if (std::string problem = name_problem(host); !problem.empty()) {
      return Status::invalid(problem);
    }
    u.host = std::string(host);
  }
  if (has_port) {
    if (port.empty()) return Status::invalid("its port is empty");
    bool digits = port.size() <= 5 && std::all_of(port.begin(), port.end(), [](char c) {
                    return std::isdigit(static_cast<unsigned char>(c));
                  });
    int n = digits ? std::stoi(std::string(port)) : 0;
    if (n < 1 || n > 65535) return Status::invalid("its port must be a number from 1 to 65535");
    u.port = std::string(port);
  } else {
    u.port = u.tls ? "443" : "80";
  }

  // Path and query.
  for (size_t i = 0; i < tail.size(); ++i) {
    char c = tail[i];
    if (c == '#') return Status::invalid("it must not have a fragment ('#')");
    if (c == '%') {
      if (i + 2 >= tail.size() || !is_hex(tail[i + 1]) || !is_hex(tail[i + 2])) {
        return Status::invalid("it has a '%' that is not followed by two hex digits");
      }
      i += 2;
      continue;
    }
    if (!path_char(c)) {
      return Status::invalid("its path or query holds a character that must be percent-encoded");
    }
  }
  u.target = tail.empty() || tail.front() == '?' ? "/" + std::string(tail) : std::string(tail);
  u.host_header = std::string(authority);
  return u;
}

}  // namespace magnetic
