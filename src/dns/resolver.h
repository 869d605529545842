// Where to deliver a domain's mail: static routes (tests, --route, --relay) first, then MX
// lookup through c-ares with preference order, A/AAAA fallback when there is no MX, and null
// MX (RFC 7505) as a permanent failure. Results are cached for their TTL.
//
// Every DNS answer is reduced to IP literals here, so the SMTP client never asks DNS itself and
// every lookup goes to the servers configured in ResolverOptions (tests point them at a
// responder on loopback). Target::mx keeps the host name each address belongs to: it names the
// site and is the name to log.
//
// Thread-safe. resolve() blocks the calling thread while it asks DNS: call it off the I/O
// threads (the delivery engine does so on its own resolver thread). Concurrent calls for the
// same domain share one lookup.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace magnetic::dns {

struct Target {
  // Where to connect: an IP literal for a DNS answer (IPv6 without brackets, "2001:db8::1"),
  // or the host exactly as written in a route (a name or an IP literal).
  std::string host;
  uint16_t port = 25;
  int preference = 0;  // MX preference; lower is tried first. 0 for routes and implicit MX.
  // The MX host name this address came from; the domain itself for an implicit MX (RFC 5321
  // section 5.1); for a route, its own mx, or its host when that is empty.
  std::string mx;

  bool operator==(const Target&) const = default;
};

struct ResolverOptions {
  // Fixed routes: domain (lower case, A-label) -> target. "*" matches every domain (--relay).
  std::map<std::string, Target> routes;
  // DNS servers "ip" or "ip:port" to ask instead of /etc/resolv.conf (tests run one on loopback).
  // IPv6 servers are written "[::1]:53".
  std::vector<std::string> servers;
  bool allow_dns = true;  // false: a domain with no route fails (tests must never ask real DNS)
  // The port of hosts found through DNS (MX hosts, implicit MX, address literals). 25 but in
  // tests, which run their receiving MTAs on ephemeral loopback ports.
  uint16_t smtp_port = 25;

  // Wait for one answer before asking again (c-ares doubles it on each later round), and how
  // many times to ask each server.
  std::chrono::milliseconds timeout{3000};
  int tries = 2;

  // A positive answer (a null MX too) is cached for its smallest TTL, at most max_ttl. A negative
  // one (NXDOMAIN, no address at all) for the SOA's negative TTL (RFC 2308), at most
  // negative_ttl, or negative_ttl when the server sent no SOA. A failure worth retrying (SERVFAIL,
  // timeout) for failure_ttl, so that a queue full of one broken domain does not wait out one
  // timeout each.
  std::chrono::seconds max_ttl{3600};
  std::chrono::seconds negative_ttl{300};
  std::chrono::seconds failure_ttl{30};

  // The clock for cache expiry; steady_clock::now when empty (tests move time by hand).
  std::function<std::chrono::steady_clock::time_point()> clock;
};

class Resolver {
 public:
  explicit Resolver(ResolverOptions options);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Targets for a domain in the order to try them. Errors: Status::permanent for a null MX or a
  // domain that does not exist (NXDOMAIN), Status::unavailable for a DNS failure worth retrying.
  //
  // The domain is lower-cased and a trailing dot dropped; routes match it exactly, then "*".
  // Without a route and with allow_dns false: Status::invalid naming the domain. A malformed
  // domain or a bad entry in servers: Status::invalid.
  //
  // Order: MX hosts by preference; hosts of equal preference are shuffled on every call (RFC
  // 5321 section 5.1 asks senders to spread load among them), each host's addresses stay
  // together, IPv4 before IPv6 (bulk senders' reputation lives on IPv4; a caller with only IPv4
  // egress sources drops the targets whose host contains ':'). At most kMaxMxHosts MX hosts
  // are looked up; an MX host without addresses is skipped.
  Result<std::vector<Target>> resolve(const std::string& domain);

  static constexpr int kMaxMxHosts = 10;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Parses "DOMAIN=HOST:PORT" (--route) or "HOST:PORT" (--relay; domain is "*"). The port is 25
// when left out; an IPv6 host is written in brackets ("[::1]:2525") and returned without them.
// The domain and host are lower-cased; the domain must already be an A-label. The target's
// preference is 0 and its mx is its host. Errors are Status::invalid saying what is wrong.
Result<std::pair<std::string, Target>> parse_route(const std::string& text, bool relay);

}  // namespace magnetic::dns
