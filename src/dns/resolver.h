// Where to deliver a domain's mail: static routes (tests, --route, --relay) first, then MX
// lookup through c-ares with preference order, A/AAAA fallback when there is no MX, and null
// MX (RFC 7505) as a permanent failure. Results are cached for their TTL.
//
// Thread-safe. resolve() blocks the calling thread while it asks DNS: call it off the I/O
// threads (the delivery engine does so on its own resolver thread).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"

namespace magnetic::dns {

struct Target {
  std::string host;  // host name or IP literal to connect to
  uint16_t port = 25;
  int preference = 0;  // MX preference; lower is tried first
};

struct ResolverOptions {
  // Fixed routes: domain (lower case, A-label) -> target. "*" matches every domain (--relay).
  std::map<std::string, Target> routes;
  // DNS servers "ip" or "ip:port" to ask instead of /etc/resolv.conf (tests run one on loopback).
  std::vector<std::string> servers;
  bool allow_dns = true;  // false: a domain with no route fails (tests must never ask real DNS)
};

class Resolver {
 public:
  explicit Resolver(ResolverOptions options);
  ~Resolver();

  // Targets for a domain in the order to try them. Errors: Status::permanent for a null MX or a
  // domain that does not exist (NXDOMAIN), Status::unavailable for a DNS failure worth retrying.
  Result<std::vector<Target>> resolve(const std::string& domain);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Parses "DOMAIN=HOST:PORT" (--route) or "HOST:PORT" (--relay; domain is "*").
Result<std::pair<std::string, Target>> parse_route(const std::string& text, bool relay);

}  // namespace magnetic::dns
