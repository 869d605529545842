// parse_route: the --route and --relay syntax. Validation is strict so that a typo on the
// command line fails at startup with a message that says which part is wrong, instead of
// turning into deferred mail later.
#include <arpa/inet.h>

#include <cctype>
#include <string>
#include <string_view>

#include "dns/domain_name.h"
#include "dns/resolver.h"

namespace magnetic::dns {
namespace {

Result<uint16_t> parse_port(std::string_view text, const std::string& where) {
  if (text.empty() || text.size() > 5) {
    return Status::invalid(where + "port \"" + std::string(text) +
                           "\" is not a number from 1 to 65535");
  }
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return Status::invalid(where + "port \"" + std::string(text) +
                             "\" is not a number from 1 to 65535");
    }
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535) {
    return Status::invalid(where + "port " + std::string(text) + " is out of range (1 to 65535)");
  }
  return static_cast<uint16_t>(value);
}

// "HOST", "HOST:PORT", "[IPV6]" or "[IPV6]:PORT". where prefixes every error message.
Result<Target> parse_target(std::string_view text, const std::string& where) {
  Target target;
  std::string_view port_text;
  bool has_port = false;

  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return Status::invalid(where + "missing ']' after the IPv6 address");
    }
    std::string address = lower(text.substr(1, close - 1));
    in6_addr unused;
    if (::inet_pton(AF_INET6, address.c_str(), &unused) != 1) {
      return Status::invalid(where + "\"" + address + "\" in brackets is not an IPv6 address");
    }
    target.host = address;
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return Status::invalid(where + "expected ':PORT' after ']', got \"" + std::string(rest) +
                               "\"");
      }
      port_text = rest.substr(1);
      has_port = true;
    }
  } else {
    size_t colon = text.find(':');
    if (colon != std::string_view::npos && text.find(':', colon + 1) != std::string_view::npos) {
      return Status::invalid(where +
                             "an IPv6 address must be written in brackets, as in "
                             "[::1]:2525");
    }
    std::string_view host = text.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = text.substr(colon + 1);
      has_port = true;
    }
    if (host.empty()) return Status::invalid(where + "the host is empty");
    if (!valid_name(host)) {
      return Status::invalid(where + "\"" + std::string(host) +
                             "\" is not a host name or IPv4 address");
    }
    target.host = lower(host);
  }

  if (has_port) {
    auto port = parse_port(port_text, where);
    if (!port) return port.status();
    target.port = *port;
  }
  target.mx = target.host;
  return target;
}

}  // namespace

Result<std::pair<std::string, Target>> parse_route(const std::string& text, bool relay) {
  // Every message starts with what was given, so the user sees which flag is wrong.
  const std::string where = std::string(relay ? "relay" : "route") + " \"" + text + "\": ";
  std::string domain = "*";
  std::string_view target_text = text;

  size_t equals = text.find('=');
  if (relay) {
    if (equals != std::string::npos) {
      return Status::invalid(where + "expected HOST:PORT, not DOMAIN=HOST:PORT");
    }
  } else {
    if (equals == std::string::npos) {
      return Status::invalid(where + "expected DOMAIN=HOST:PORT (no '=')");
    }
    std::string_view name = std::string_view(text).substr(0, equals);
    if (name.size() > 1 && name.back() == '.') name.remove_suffix(1);  // "example.com."
    if (name.empty()) return Status::invalid(where + "the domain is empty");
    if (name != "*" && !valid_name(name)) {
      return Status::invalid(where + "\"" + std::string(name) +
                             "\" is not a domain name (IDN must be given as A-labels)");
    }
    domain = lower(name);
    target_text = std::string_view(text).substr(equals + 1);
  }

  if (target_text.empty()) {
    return Status::invalid(where + "the host is empty");
  }
  auto target = parse_target(target_text, where);
  if (!target) return target.status();
  return std::make_pair(std::move(domain), std::move(target).value());
}

}  // namespace magnetic::dns
