// Resolver strategy: routes first, then the cache, then DNS in two rounds on one c-ares channel.
// Round one asks MX; round two asks A and AAAA for every MX host at once (or for the domain
// itself when it has no MX: the implicit MX of RFC 5321 section 5.1). The answer is stored as
// MX hosts with their addresses and expiry; the order of equal-preference hosts is drawn anew
// on every call, so a cached answer still spreads load.
//
// One c-ares channel per lookup: c-ares 1.18 channels are not safe to share between threads,
// and opening one (it reads /etc/resolv.conf unless servers are given) costs far less than the
// round trips it serves; the cache keeps lookups rare. The wait is poll() on ares_getsock's
// sockets rather than select(), which breaks on descriptors above FD_SETSIZE in a busy process.
//
// Only ares_query is used, never ares_search: a mail domain is always fully qualified, so no
// search domain from resolv.conf or LOCALDOMAIN may be appended to it.
//
// TTLs are read from the raw answer by hand because ares_parse_mx_reply in c-ares 1.18 drops
// them (the record API that keeps them came with 1.22).
#include "dns/resolver.h"

#include <ares.h>
#include <arpa/inet.h>
#include <poll.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <optional>
#include <random>
#include <set>
#include <string_view>

#include "base/log.h"
#include "dns/domain_name.h"

namespace magnetic::dns {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kTypeA = 1;
constexpr int kTypeSoa = 6;
constexpr int kTypeMx = 15;
constexpr int kTypeAaaa = 28;
constexpr int kClassIn = 1;
constexpr int kMaxAddressesPerHost = 16;

// ---- Reading TTLs from a raw DNS message ----

uint32_t read32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint16_t read16(const unsigned char* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// Length of the (possibly compressed) name at p, or -1 when it runs off the message.
long name_length(const unsigned char* p, const unsigned char* abuf, int alen) {
  char* name = nullptr;
  long length = 0;
  if (ares_expand_name(p, abuf, alen, &name, &length) != ARES_SUCCESS) return -1;
  ares_free_string(name);
  return length;
}

struct RecordTtls {
  std::optional<uint32_t> answer;    // smallest TTL of the answer records of the asked type
  std::optional<uint32_t> negative;  // min(SOA TTL, SOA minimum) from the authority section
};

// Walks the header, the question and the answer and authority sections. A message cut short
// yields what was read before the cut.
RecordTtls record_ttls(const std::vector<unsigned char>& message, int type) {
  RecordTtls out;
  const unsigned char* abuf = message.data();
  const int alen = static_cast<int>(message.size());
  if (alen < 12) return out;
  const int qdcount = read16(abuf + 4), ancount = read16(abuf + 6), nscount = read16(abuf + 8);
  const unsigned char* p = abuf + 12;
  const unsigned char* end = abuf + alen;

  for (int i = 0; i < qdcount; ++i) {
    long n = name_length(p, abuf, alen);
    if (n < 0 || end - p < n + 4) return out;
    p += n + 4;
  }
  for (int i = 0; i < ancount + nscount; ++i) {
    long n = name_length(p, abuf, alen);
    if (n < 0 || end - p < n + 10) return out;
    p += n;
    const int rr_type = read16(p), rr_class = read16(p + 2);
    const uint32_t ttl = read32(p + 4);
    const int rdlength = read16(p + 8);
    p += 10;
    if (end - p < rdlength) return out;
    const bool answer_section = i < ancount;
    if (answer_section && rr_type == type && rr_class == kClassIn) {
      out.answer = std::min(out.answer.value_or(ttl), ttl);
    }
    if (!answer_section && rr_type == kTypeSoa && rdlength > 20) {
      // RDATA: MNAME, RNAME, then serial, refresh, retry, expire, minimum (RFC 1035 3.3.13).
      const uint32_t minimum = read32(p + rdlength - 4);
      out.negative = std::min(ttl, minimum);
    }
    p += rdlength;
  }
  return out;
}

// ---- One c-ares channel and the loop that drives it ----

struct Answer {
  int status = ARES_ENODATA;
  std::vector<unsigned char> message;  // the raw reply, when the server sent one
};

class Channel {
 public:
  ~Channel() {
    if (channel_) ares_destroy(channel_);
  }

  static Result<std::unique_ptr<Channel>> open(const ResolverOptions& options) {
    // Initialized once and never cleaned up: other modules may use c-ares in the same process.
    static std::once_flag library_once;
    static int library_status = ARES_SUCCESS;
    std::call_once(library_once, [] { library_status = ares_library_init(ARES_LIB_INIT_ALL); });
    if (library_status != ARES_SUCCESS) {
      return Status::internal(std::string("c-ares init: ") + ares_strerror(library_status));
    }

    // No search list, ndots 1: together with ares_query this keeps names as given.
    ares_options o{};
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
    o.timeout = static_cast<int>(std::max<int64_t>(1, options.timeout.count()));
    o.tries = std::max(1, options.tries);
    o.ndots = 1;
    o.domains = nullptr;
    o.ndomains = 0;
    const int mask =
        ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_NDOTS | ARES_OPT_DOMAINS;

    auto channel = std::unique_ptr<Channel>(new Channel());
    int rc = ares_init_options(&channel->channel_, &o, mask);
    if (rc != ARES_SUCCESS) {
      channel->channel_ = nullptr;
      return Status::unavailable(std::string("DNS resolver setup failed: ") + ares_strerror(rc));
    }

    if (!options.servers.empty()) {
      std::string csv;
      for (const std::string& server : options.servers) {
        if (server.empty() || server.find_first_of(", \t") != std::string::npos) {
          return Status::invalid("DNS server \"" + server + "\" is not ip or ip:port");
        }
        if (!csv.empty()) csv += ',';
        csv += server;
      }
      rc = ares_set_servers_ports_csv(channel->channel_, csv.c_str());
      if (rc != ARES_SUCCESS) {
        return Status::invalid("DNS servers \"" + csv + "\": " + ares_strerror(rc));
      }
    }
    return channel;
  }

  // Starts a query; out must stay valid until wait() returns.
  void query(const std::string& name, int type, Answer* out) {
    ++pending_;
    ares_query(channel_, name.c_str(), kClassIn, type, &Channel::on_answer,
               new Callback{this, out});
  }

  // Drives the channel until every query started has its answer (or its error).
  // TODO: an asynchronous resolve (callback or awaitable) on one long-lived channel would let a
  // single thread wait on many domains at once; with this blocking contract, a domain whose
  // servers do not answer holds its calling thread for the whole timeout.
  void wait() {
    while (pending_ > 0) {
      ares_socket_t sockets[ARES_GETSOCK_MAXNUM];
      const int bits = ares_getsock(channel_, sockets, ARES_GETSOCK_MAXNUM);
      pollfd fds[ARES_GETSOCK_MAXNUM];
      nfds_t count = 0;
      for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
        const bool readable = ARES_GETSOCK_READABLE(bits, i);
        const bool writable = ARES_GETSOCK_WRITABLE(bits, i);
        if (!readable && !writable) continue;
        fds[count++] = pollfd{
            sockets[i], static_cast<short>((readable ? POLLIN : 0) | (writable ? POLLOUT : 0)), 0};
      }

      timeval tv{};
      const timeval* next = ares_timeout(channel_, nullptr, &tv);
      const int wait_ms =
          next ? static_cast<int>(next->tv_sec * 1000 + (next->tv_usec + 999) / 1000) : 1000;
      const int ready = ::poll(fds, count, wait_ms);
      if (ready < 0 && errno != EINTR) {
        ares_cancel(channel_);  // answers every pending query with ARES_ECANCELLED
        continue;
      }

      // With nothing ready this still lets c-ares handle the timeouts that expired.
      bool processed = false;
      for (nfds_t i = 0; ready > 0 && i < count; ++i) {
        if (fds[i].revents == 0) continue;
        const bool in = fds[i].revents & (POLLIN | POLLERR | POLLHUP);
        const bool out = fds[i].revents & POLLOUT;
        ares_process_fd(channel_, in ? fds[i].fd : ARES_SOCKET_BAD,
                        out ? fds[i].fd : ARES_SOCKET_BAD);
        processed = true;
      }
      if (!processed) ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    }
  }

 private:
  struct Callback {
    Channel* channel;
    Answer* out;
  };

  Channel() = default;

  static void on_answer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
    auto* callback = static_cast<Callback*>(arg);
    callback->out->status = status;
    if (abuf && alen > 0) callback->out->message.assign(abuf, abuf + alen);
    --callback->channel->pending_;
    delete callback;
  }

  ares_channel channel_ = nullptr;
  int pending_ = 0;
};

// What went wrong, for messages and logs. c-ares' own texts mislead here: it moves on to the next
// server after a SERVFAIL or REFUSED and, once none is left, reports "Could not contact DNS
// servers" (ARES_ECONNREFUSED) although every server answered.
std::string describe(int status) {
  switch (status) {
    case ARES_ECONNREFUSED:
      return "no DNS server gave a usable answer (SERVFAIL, REFUSED or unreachable)";
    case ARES_ESERVFAIL:
      return "the DNS server failed (SERVFAIL)";
    case ARES_EREFUSED:
      return "the DNS server refused the query (REFUSED)";
    case ARES_ETIMEOUT:
      return "no answer from the DNS servers in time";
    default:
      return ares_strerror(status);
  }
}

bool temporary(int status) {
  return status != ARES_SUCCESS && status != ARES_ENODATA && status != ARES_ENOTFOUND;
}

// ---- What is cached: MX hosts with their addresses, or the failure ----

struct MxHost {
  std::string name;
  int preference = 0;
  std::vector<std::string> addresses;  // IPv4 first, then IPv6
};

struct Entry {
  Status status;  // ok: hosts holds the answer
  std::vector<MxHost> hosts;
  Clock::time_point expires;
};

// The addresses of one host from its A and AAAA answers; extends ttl with theirs.
std::vector<std::string> addresses_of(const Answer& a, const Answer& aaaa,
                                      std::optional<uint32_t>& ttl) {
  std::vector<std::string> out;
  char text[INET6_ADDRSTRLEN];
  if (a.status == ARES_SUCCESS) {
    ares_addrttl records[kMaxAddressesPerHost];
    int n = kMaxAddressesPerHost;
    if (ares_parse_a_reply(a.message.data(), static_cast<int>(a.message.size()), nullptr, records,
                           &n) == ARES_SUCCESS) {
      for (int i = 0; i < n; ++i) {
        if (!::inet_ntop(AF_INET, &records[i].ipaddr, text, sizeof text)) continue;
        out.emplace_back(text);
        const uint32_t t = static_cast<uint32_t>(std::max(0, records[i].ttl));
        ttl = std::min(ttl.value_or(t), t);
      }
    }
  }
  if (aaaa.status == ARES_SUCCESS) {
    ares_addr6ttl records[kMaxAddressesPerHost];
    int n = kMaxAddressesPerHost;
    if (ares_parse_aaaa_reply(aaaa.message.data(), static_cast<int>(aaaa.message.size()), nullptr,
                              records, &n) == ARES_SUCCESS) {
      for (int i = 0; i < n; ++i) {
        if (!::inet_ntop(AF_INET6, &records[i].ip6addr, text, sizeof text)) continue;
        out.emplace_back(text);
        const uint32_t t = static_cast<uint32_t>(std::max(0, records[i].ttl));
        ttl = std::min(ttl.value_or(t), t);
      }
    }
  }
  return out;
}

// "[192.0.2.1]" or "[IPv6:2001:db8::1]" (RFC 5321 section 4.1.3) -> the bare address.
std::optional<std::string> address_literal(std::string_view domain) {
  if (domain.size() < 3 || domain.front() != '[' || domain.back() != ']') return std::nullopt;
  std::string inner(domain.substr(1, domain.size() - 2));
  unsigned char buffer[sizeof(in6_addr)];
  if (inner.rfind("ipv6:", 0) == 0) {
    inner.erase(0, 5);
    if (::inet_pton(AF_INET6, inner.c_str(), buffer) == 1) return inner;
    return std::nullopt;
  }
  if (::inet_pton(AF_INET, inner.c_str(), buffer) == 1) return inner;
  return std::nullopt;
}

}  // namespace

struct Resolver::Impl {
  explicit Impl(ResolverOptions o) : options(std::move(o)), random(std::random_device{}()) {
    if (!options.clock) options.clock = [] { return Clock::now(); };
  }

  Result<std::vector<Target>> resolve(const std::string& input);
  Entry lookup(const std::string& domain);
  Entry finish_mx(const std::string& domain, std::vector<MxHost> hosts,
                  std::optional<uint32_t> mx_ttl, Channel& channel);
  Entry finish_implicit(const std::string& domain, const Answer& mx, Channel& channel);
  Result<std::vector<Target>> answer(const Entry& entry);  // under mutex: draws from random

  // Now plus the TTL, at most cap; cap itself when there is no TTL to go by.
  Clock::time_point expiry(std::optional<uint32_t> ttl, std::chrono::seconds cap) const {
    auto seconds = std::chrono::seconds(ttl.value_or(cap.count()));
    return options.clock() + std::min(seconds, cap);
  }

  ResolverOptions options;
  std::mutex mutex;
  std::condition_variable lookup_done;
  std::map<std::string, Entry> cache;
  std::set<std::string> in_flight;  // domains being looked up; others wait for the answer
  size_t next_sweep = 1024;         // drop expired entries when the cache grows past this
  std::mt19937 random;
};

Result<std::vector<Target>> Resolver::Impl::resolve(const std::string& input) {
  // Normalize: lower case, no trailing dot.
  std::string domain = lower(input);
  if (domain.size() > 1 && domain.back() == '.') domain.pop_back();

  // Routes: the domain exactly, then the relay.
  auto route = options.routes.find(domain);
  if (route == options.routes.end()) route = options.routes.find("*");
  if (route != options.routes.end()) {
    Target target = route->second;
    if (target.mx.empty()) target.mx = target.host;  // a route written by hand names its site
    return std::vector<Target>{std::move(target)};
  }
  if (!options.allow_dns) {
    return Status::invalid("no route for domain \"" + domain + "\" and DNS lookups are off");
  }
  if (auto literal = address_literal(domain)) {
    return std::vector<Target>{Target{*literal, options.smtp_port, 0, domain}};
  }
  if (!valid_name(domain)) {
    return Status::invalid("\"" + input + "\" is not a domain name (IDN must be an A-label)");
  }

  // The cache, or the lookup another thread is already doing for this domain.
  std::unique_lock lock(mutex);
  for (;;) {
    if (auto it = cache.find(domain); it != cache.end() && options.clock() < it->second.expires) {
      return answer(it->second);
    }
    if (!in_flight.contains(domain)) break;
    lookup_done.wait(lock);
  }
  in_flight.insert(domain);
  lock.unlock();

  Entry entry = lookup(domain);

  lock.lock();
  in_flight.erase(domain);
  if (cache.size() >= next_sweep) {
    const auto now = options.clock();
    std::erase_if(cache, [&](const auto& item) { return item.second.expires <= now; });
    next_sweep = std::max<size_t>(1024, cache.size() * 2);
  }
  auto& stored = cache[domain] = std::move(entry);
  lookup_done.notify_all();
  return answer(stored);
}

Result<std::vector<Target>> Resolver::Impl::answer(const Entry& entry) {
  if (!entry.status.is_ok()) return entry.status;
  std::vector<MxHost> hosts = entry.hosts;  // sorted by preference when stored
  for (auto first = hosts.begin(); first != hosts.end();) {
    auto last = std::find_if(first, hosts.end(),
                             [&](const MxHost& h) { return h.preference != first->preference; });
    std::shuffle(first, last, random);
    first = last;
  }
  std::vector<Target> out;
  for (const MxHost& host : hosts) {
    for (const std::string& address : host.addresses) {
      out.push_back(Target{address, options.smtp_port, host.preference, host.name});
    }
  }
  return out;
}

Entry Resolver::Impl::lookup(const std::string& domain) {
  auto log = logger("dns");
  auto channel = Channel::open(options);
  if (!channel) return Entry{channel.status(), {}, expiry(std::nullopt, options.failure_ttl)};

  // Round one: MX.
  Answer mx;
  (*channel)->query(domain, kTypeMx, &mx);
  (*channel)->wait();

  if (mx.status == ARES_ENOTFOUND) {
    auto ttl = record_ttls(mx.message, kTypeMx).negative;
    return Entry{Status::permanent("domain " + domain + " does not exist (NXDOMAIN)"),
                 {},
                 expiry(ttl, options.negative_ttl)};
  }
  if (temporary(mx.status)) {
    log->warn("MX lookup for {} failed: {}", domain, describe(mx.status));
    return Entry{Status::unavailable("MX lookup for " + domain + " failed: " + describe(mx.status)),
                 {},
                 expiry(std::nullopt, options.failure_ttl)};
  }

  std::vector<MxHost> hosts;
  if (mx.status == ARES_SUCCESS) {
    ares_mx_reply* replies = nullptr;
    int rc = ares_parse_mx_reply(mx.message.data(), static_cast<int>(mx.message.size()), &replies);
    if (rc != ARES_SUCCESS && rc != ARES_ENODATA) {
      log->warn("MX answer for {} is malformed: {}", domain, ares_strerror(rc));
      return Entry{
          Status::unavailable("MX answer for " + domain + " is malformed: " + ares_strerror(rc)),
          {},
          expiry(std::nullopt, options.failure_ttl)};
    }
    for (ares_mx_reply* r = replies; r; r = r->next) {
      hosts.push_back(MxHost{lower(r->host ? r->host : ""), r->priority, {}});
    }
    ares_free_data(replies);
  }

  // An answer of CNAMEs without MX counts as no MX.
  if (hosts.empty()) return finish_implicit(domain, mx, **channel);

  // Null MX (RFC 7505): "." is all there is. Mixed with real hosts, the "." is dropped.
  auto is_root = [](const MxHost& h) { return h.name.empty() || h.name == "."; };
  const bool all_root = std::all_of(hosts.begin(), hosts.end(), is_root);
  auto mx_ttl = record_ttls(mx.message, kTypeMx).answer;
  if (all_root) {
    return Entry{Status::permanent("null MX: domain does not accept mail (RFC 7505)"),
                 {},
                 expiry(mx_ttl, options.max_ttl)};
  }
  std::erase_if(hosts, is_root);
  return finish_mx(domain, std::move(hosts), mx_ttl, **channel);
}

Entry Resolver::Impl::finish_mx(const std::string& domain, std::vector<MxHost> hosts,
                                std::optional<uint32_t> mx_ttl, Channel& channel) {
  std::stable_sort(hosts.begin(), hosts.end(),
                   [](const MxHost& a, const MxHost& b) { return a.preference < b.preference; });
  if (hosts.size() > static_cast<size_t>(kMaxMxHosts)) hosts.resize(kMaxMxHosts);

  // Round two: A and AAAA of every MX host at once.
  // TODO: cache MX host addresses apart from domains; many domains share one provider's MX
  // hosts, and each of them asks for the same addresses again.
  std::vector<Answer> a(hosts.size()), aaaa(hosts.size());
  for (size_t i = 0; i < hosts.size(); ++i) {
    channel.query(hosts[i].name, kTypeA, &a[i]);
    channel.query(hosts[i].name, kTypeAaaa, &aaaa[i]);
  }
  channel.wait();

  std::optional<uint32_t> ttl = mx_ttl;
  bool any_temporary = false;
  std::vector<MxHost> usable;
  for (size_t i = 0; i < hosts.size(); ++i) {
    hosts[i].addresses = addresses_of(a[i], aaaa[i], ttl);
    const bool failed = temporary(a[i].status) || temporary(aaaa[i].status);
    any_temporary = any_temporary || failed;
    if (failed) {
      logger("dns")->warn("address lookup for MX host {} of {} failed: {}", hosts[i].name, domain,
                          describe(temporary(a[i].status) ? a[i].status : aaaa[i].status));
    }
    if (!hosts[i].addresses.empty()) usable.push_back(std::move(hosts[i]));
  }

  if (usable.empty()) {
    std::string names;
    for (const MxHost& h : hosts) names += (names.empty() ? "" : ", ") + h.name;
    if (any_temporary) {
      return Entry{Status::unavailable("no address for the MX hosts of " + domain + " (" + names +
                                       "): lookup failed"),
                   {},
                   expiry(std::nullopt, options.failure_ttl)};
    }
    return Entry{Status::permanent("no MX host of " + domain + " has an address (" + names + ")"),
                 {},
                 expiry(std::nullopt, options.negative_ttl)};
  }
  // A host that failed for now is missing from the answer: keep that answer only briefly.
  return Entry{Status::ok(), std::move(usable),
               expiry(ttl, any_temporary ? options.failure_ttl : options.max_ttl)};
}

Entry Resolver::Impl::finish_implicit(const std::string& domain, const Answer& mx,
                                      Channel& channel) {
  Answer a, aaaa;
  channel.query(domain, kTypeA, &a);
  channel.query(domain, kTypeAaaa, &aaaa);
  channel.wait();

  std::optional<uint32_t> ttl;
  MxHost self{domain, 0, addresses_of(a, aaaa, ttl)};
  if (!self.addresses.empty()) {
    const bool partial = temporary(a.status) || temporary(aaaa.status);
    return Entry{Status::ok(),
                 {std::move(self)},
                 expiry(ttl, partial ? options.failure_ttl : options.max_ttl)};
  }
  if (temporary(a.status) || temporary(aaaa.status)) {
    const int status = temporary(a.status) ? a.status : aaaa.status;
    logger("dns")->warn("address lookup for {} (no MX) failed: {}", domain, describe(status));
    return Entry{Status::unavailable("no MX for " + domain +
                                     " and its address lookup failed: " + describe(status)),
                 {},
                 expiry(std::nullopt, options.failure_ttl)};
  }
  if (a.status == ARES_ENOTFOUND || aaaa.status == ARES_ENOTFOUND) {
    // The name vanished between the two rounds.
    return Entry{Status::permanent("domain " + domain + " does not exist (NXDOMAIN)"),
                 {},
                 expiry(record_ttls(a.message, kTypeA).negative, options.negative_ttl)};
  }
  auto negative = record_ttls(mx.message, kTypeMx).negative;
  return Entry{Status::permanent("domain " + domain + " has no MX and no A/AAAA record"),
               {},
               expiry(negative, options.negative_ttl)};
}

Resolver::Resolver(ResolverOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Resolver::~Resolver() = default;

Result<std::vector<Target>> Resolver::resolve(const std::string& domain) {
  return impl_->resolve(domain);
}

}  // namespace magnetic::dns
