// Resolver: routes and the relay, allow_dns=false, and every DNS path against DnsResponder on
// loopback (never a real DNS server). Cache behaviour is checked with a hand-moved clock and by
// counting the queries that reach the responder.
#include "dns/resolver.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "dns_responder.h"

namespace magnetic::dns {
namespace {

using magnetic::testing::DnsResponder;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;
constexpr int kMx = DnsResponder::kMx, kA = DnsResponder::kA, kAaaa = DnsResponder::kAaaa;

// ---- Routes, no DNS ----

ResolverOptions routed() {
  ResolverOptions options;
  options.allow_dns = false;
  options.routes["exact.example"] = Target{"127.0.0.1", 2525, 0, "127.0.0.1"};
  return options;
}

TEST(ResolverRoutes, ExactDomainMatchesCaseInsensitively) {
  Resolver resolver(routed());
  for (const char* domain : {"exact.example", "EXACT.Example", "exact.example."}) {
    SCOPED_TRACE(domain);
    auto targets = resolver.resolve(domain);
    ASSERT_TRUE(targets.is_ok()) << targets.status().message();
    EXPECT_EQ(*targets, (std::vector<Target>{{"127.0.0.1", 2525, 0, "127.0.0.1"}}));
  }
}

TEST(ResolverRoutes, NoRouteWithoutDnsFailsNamingTheDomain) {
  Resolver resolver(routed());
  auto targets = resolver.resolve("Other.Example");
  ASSERT_FALSE(targets.is_ok());
  EXPECT_EQ(targets.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(targets.status().message(),
            "no route for domain \"other.example\" and DNS lookups are off");

  // A subdomain is a different domain: routes match exactly.
  auto sub = resolver.resolve("sub.exact.example");
  ASSERT_FALSE(sub.is_ok());
  EXPECT_EQ(sub.status().message(),
            "no route for domain \"sub.exact.example\" and DNS lookups are off");

  // An address literal needs no DNS but is still not a route.
  auto literal = resolver.resolve("[127.0.0.1]");
  ASSERT_FALSE(literal.is_ok());
  EXPECT_EQ(literal.status().code(), StatusCode::kInvalidArgument);
}

TEST(ResolverRoutes, ExactRouteBeatsRelayAndRelayTakesTheRest) {
  ResolverOptions options = routed();
  options.routes["*"] = Target{"::1", 587, 0, "::1"};
  Resolver resolver(options);

  auto exact = resolver.resolve("exact.example");
  ASSERT_TRUE(exact.is_ok());
  EXPECT_EQ(*exact, (std::vector<Target>{{"127.0.0.1", 2525, 0, "127.0.0.1"}}));

  for (const char* domain : {"other.example", "sub.exact.example", "x.test"}) {
    SCOPED_TRACE(domain);
    auto relayed = resolver.resolve(domain);
    ASSERT_TRUE(relayed.is_ok()) << relayed.status().message();
    EXPECT_EQ(*relayed, (std::vector<Target>{{"::1", 587, 0, "::1"}}));
  }
}

TEST(ResolverRoutes, RouteWithoutMxNamesItsHost) {
  ResolverOptions options;
  options.allow_dns = false;
  options.routes["*"] = Target{"relay.example", 2525};
  Resolver resolver(options);
  EXPECT_EQ(resolver.resolve("a.example").value(),
            (std::vector<Target>{{"relay.example", 2525, 0, "relay.example"}}));
}

TEST(ResolverRoutes, RoutesFromParseRouteWork) {
  ResolverOptions options;
  options.allow_dns = false;
  for (auto [text, relay] :
       {std::pair{"a.example=[::1]:2526", false}, std::pair{"127.0.0.1:2527", true}}) {
    auto route = parse_route(text, relay);
    ASSERT_TRUE(route.is_ok()) << route.status().message();
    options.routes.insert(*route);
  }
  Resolver resolver(options);
  EXPECT_EQ(resolver.resolve("A.example").value(), (std::vector<Target>{{"::1", 2526, 0, "::1"}}));
  EXPECT_EQ(resolver.resolve("b.example").value(),
            (std::vector<Target>{{"127.0.0.1", 2527, 0, "127.0.0.1"}}));
}

// ---- DNS through the responder ----

class ResolverDns : public ::testing::Test {
 protected:
  ResolverDns() {
    // Three MX hosts given out of order; addresses of both families; TTLs 600, 300 and 900.
    dns_.add_mx("mx.example", 20, "mx2.mx.example", 600);
    dns_.add_mx("mx.example", 10, "mx1.mx.example", 300);
    dns_.add_mx("mx.example", 30, "mx3.mx.example", 900);
    dns_.add_a("mx1.mx.example", "192.0.2.11");
    dns_.add_aaaa("mx1.mx.example", "2001:db8::11");
    dns_.add_a("mx2.mx.example", "192.0.2.12");
    dns_.add_a("mx2.mx.example", "192.0.2.112");
    dns_.add_aaaa("mx3.mx.example", "2001:db8::13");

    dns_.add_mx("ties.example", 10, "a.ties.example");
    dns_.add_mx("ties.example", 10, "b.ties.example");
    dns_.add_mx("ties.example", 5, "c.ties.example");
    dns_.add_a("a.ties.example", "192.0.2.21");
    dns_.add_a("b.ties.example", "192.0.2.22");
    dns_.add_a("c.ties.example", "192.0.2.23");

    dns_.add_mx("nullmx.example", 0, ".");
    dns_.add_a("nullmx.example", "192.0.2.99");  // must not be used

    dns_.add_mx("mixednull.example", 0, ".");
    dns_.add_mx("mixednull.example", 10, "mx.mixednull.example");
    dns_.add_a("mx.mixednull.example", "192.0.2.51");

    dns_.add_a("onlya.example", "192.0.2.31", 120);
    dns_.add_aaaa("onlyaaaa.test", "2001:db8::41");
    dns_.add_txt("nothing.example", "v=spf1 -all");  // exists, but no MX, A or AAAA

    dns_.add_mx("ghost.example", 10, "mx.ghost.example");  // mx.ghost.example: NXDOMAIN

    dns_.add_mx("partial.example", 10, "good.partial.example");
    dns_.add_mx("partial.example", 20, "broken.partial.example");
    dns_.add_a("good.partial.example", "192.0.2.61");
    dns_.set_mode("broken.partial.example", DnsResponder::Mode::kServfail);

    dns_.set_mode("servfail.example", DnsResponder::Mode::kServfail);
    dns_.set_mode("silent.invalid", DnsResponder::Mode::kSilent);

    dns_.add_mx("zero.example", 10, "mx.zero.example", 0);
    dns_.add_a("mx.zero.example", "192.0.2.71");

    dns_.add_mx("long.example", 10, "mx.long.example", 86400);
    dns_.add_a("mx.long.example", "192.0.2.81", 86400);

    dns_.add_mx("slow.example", 10, "mx.slow.example");
    dns_.set_delay("slow.example", milliseconds(150));
    dns_.add_a("mx.slow.example", "192.0.2.91");
  }

  ResolverOptions options() {
    ResolverOptions o;
    o.servers = {dns_.server()};
    o.timeout = milliseconds(1000);  // only the silent name waits it out; slack for a busy machine
    o.tries = 1;
    o.clock = [this] { return now_; };
    return o;
  }

  static void expect_error(const Result<std::vector<Target>>& result, StatusCode code,
                           const std::string& message) {
    ASSERT_FALSE(result.is_ok());
    EXPECT_EQ(result.status().code(), code);
    EXPECT_EQ(result.status().message(), message);
  }

  DnsResponder dns_;
  Clock::time_point now_ = Clock::time_point() + std::chrono::hours(1000);
};

TEST_F(ResolverDns, MxHostsInPreferenceOrderWithTheirAddresses) {
  Resolver resolver(options());
  auto targets = resolver.resolve("mx.example");
  ASSERT_TRUE(targets.is_ok()) << targets.status().message();
  EXPECT_EQ(*targets, (std::vector<Target>{
                          {"192.0.2.11", 25, 10, "mx1.mx.example"},
                          {"2001:db8::11", 25, 10, "mx1.mx.example"},
                          {"192.0.2.12", 25, 20, "mx2.mx.example"},
                          {"192.0.2.112", 25, 20, "mx2.mx.example"},
                          {"2001:db8::13", 25, 30, "mx3.mx.example"},
                      }));
  EXPECT_EQ(dns_.queries("mx.example", kMx), 1);
  for (const char* host : {"mx1.mx.example", "mx2.mx.example", "mx3.mx.example"}) {
    EXPECT_EQ(dns_.queries(host, kA), 1) << host;
    EXPECT_EQ(dns_.queries(host, kAaaa), 1) << host;
  }
  EXPECT_EQ(dns_.total_queries(), 7);
}

TEST_F(ResolverDns, CacheAnswersUntilTheSmallestTtl) {
  Resolver resolver(options());
  ASSERT_TRUE(resolver.resolve("mx.example").is_ok());
  ASSERT_EQ(dns_.total_queries(), 7);

  // Same domain written differently, 299 s later: from the cache (smallest TTL is mx1's 300).
  now_ += seconds(299);
  auto again = resolver.resolve("MX.Example.");
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->size(), 5u);
  EXPECT_EQ(dns_.total_queries(), 7);

  now_ += seconds(1);
  ASSERT_TRUE(resolver.resolve("mx.example").is_ok());
  EXPECT_EQ(dns_.queries("mx.example", kMx), 2);
  EXPECT_EQ(dns_.total_queries(), 14);
}

TEST_F(ResolverDns, CacheKeepsAnAnswerAtMostAnHour) {
  Resolver resolver(options());
  ASSERT_TRUE(resolver.resolve("long.example").is_ok());
  now_ += seconds(3599);
  ASSERT_TRUE(resolver.resolve("long.example").is_ok());
  EXPECT_EQ(dns_.queries("long.example", kMx), 1);
  now_ += seconds(1);
  auto targets = resolver.resolve("long.example");
  ASSERT_TRUE(targets.is_ok());
  EXPECT_EQ(*targets, (std::vector<Target>{{"192.0.2.81", 25, 10, "mx.long.example"}}));
  EXPECT_EQ(dns_.queries("long.example", kMx), 2);
}

TEST_F(ResolverDns, TtlZeroIsNotCached) {
  Resolver resolver(options());
  for (int i = 0; i < 2; ++i) {
    auto targets = resolver.resolve("zero.example");
    ASSERT_TRUE(targets.is_ok()) << targets.status().message();
    EXPECT_EQ(*targets, (std::vector<Target>{{"192.0.2.71", 25, 10, "mx.zero.example"}}));
  }
  EXPECT_EQ(dns_.queries("zero.example", kMx), 2);
}

TEST_F(ResolverDns, EqualPreferencesAreShuffledOnEveryCall) {
  Resolver resolver(options());
  std::set<std::string> second_and_third;
  for (int i = 0; i < 64; ++i) {
    auto targets = resolver.resolve("ties.example");
    ASSERT_TRUE(targets.is_ok()) << targets.status().message();
    ASSERT_EQ(targets->size(), 3u);
    EXPECT_EQ((*targets)[0], (Target{"192.0.2.23", 25, 5, "c.ties.example"}));
    std::set<std::string> tied{(*targets)[1].mx, (*targets)[2].mx};
    EXPECT_EQ(tied, (std::set<std::string>{"a.ties.example", "b.ties.example"}));
    EXPECT_EQ((*targets)[1].preference, 10);
    EXPECT_EQ((*targets)[2].preference, 10);
    second_and_third.insert((*targets)[1].mx + "," + (*targets)[2].mx);
  }
  // Both orders within 64 draws (a false failure has odds of 2 in 2^64).
  EXPECT_EQ(second_and_third.size(), 2u);
  EXPECT_EQ(dns_.queries("ties.example", kMx), 1);
}

TEST_F(ResolverDns, NullMxIsPermanentAndAskedOnce) {
  Resolver resolver(options());
  for (int i = 0; i < 2; ++i) {
    expect_error(resolver.resolve("nullmx.example"), StatusCode::kPermanent,
                 "null MX: domain does not accept mail (RFC 7505)");
  }
  EXPECT_EQ(dns_.queries("nullmx.example", kMx), 1);
  EXPECT_EQ(dns_.total_queries(), 1);  // its A record is never asked
}

TEST_F(ResolverDns, RootNextToRealMxHostsIsIgnored) {
  Resolver resolver(options());
  auto targets = resolver.resolve("mixednull.example");
  ASSERT_TRUE(targets.is_ok()) << targets.status().message();
  EXPECT_EQ(*targets, (std::vector<Target>{{"192.0.2.51", 25, 10, "mx.mixednull.example"}}));
}

TEST_F(ResolverDns, NoMxFallsBackToTheDomainsAddress) {
  Resolver resolver(options());
  auto v4 = resolver.resolve("onlya.example");
  ASSERT_TRUE(v4.is_ok()) << v4.status().message();
  EXPECT_EQ(*v4, (std::vector<Target>{{"192.0.2.31", 25, 0, "onlya.example"}}));
  EXPECT_EQ(dns_.asked(),
            (std::vector<std::string>{"onlya.example", "onlya.example", "onlya.example"}));
  EXPECT_EQ(dns_.queries("onlya.example", kMx), 1);
  EXPECT_EQ(dns_.queries("onlya.example", kA), 1);
  EXPECT_EQ(dns_.queries("onlya.example", kAaaa), 1);

  auto v6 = resolver.resolve("onlyaaaa.test");
  ASSERT_TRUE(v6.is_ok()) << v6.status().message();
  EXPECT_EQ(*v6, (std::vector<Target>{{"2001:db8::41", 25, 0, "onlyaaaa.test"}}));

  // The implicit MX is cached for its address TTL (120 s).
  now_ += seconds(119);
  ASSERT_TRUE(resolver.resolve("onlya.example").is_ok());
  EXPECT_EQ(dns_.queries("onlya.example", kMx), 1);
  now_ += seconds(1);
  ASSERT_TRUE(resolver.resolve("onlya.example").is_ok());
  EXPECT_EQ(dns_.queries("onlya.example", kMx), 2);
}

TEST_F(ResolverDns, NoMxAndNoAddressIsPermanent) {
  Resolver resolver(options());
  expect_error(resolver.resolve("nothing.example"), StatusCode::kPermanent,
               "domain nothing.example has no MX and no A/AAAA record");
  EXPECT_EQ(dns_.total_queries(), 3);
}

TEST_F(ResolverDns, NxdomainIsPermanentAndCachedForTheSoaNegativeTtl) {
  Resolver resolver(options());
  expect_error(resolver.resolve("missing.example"), StatusCode::kPermanent,
               "domain missing.example does not exist (NXDOMAIN)");
  EXPECT_EQ(dns_.total_queries(), 1);

  // min(SOA TTL 120, SOA minimum 60) = 60 s.
  now_ += seconds(59);
  expect_error(resolver.resolve("missing.example"), StatusCode::kPermanent,
               "domain missing.example does not exist (NXDOMAIN)");
  EXPECT_EQ(dns_.total_queries(), 1);
  now_ += seconds(1);
  expect_error(resolver.resolve("missing.example"), StatusCode::kPermanent,
               "domain missing.example does not exist (NXDOMAIN)");
  EXPECT_EQ(dns_.total_queries(), 2);
}

TEST_F(ResolverDns, NegativeTtlIsCappedByTheOption) {
  ResolverOptions o = options();
  o.negative_ttl = seconds(10);
  Resolver resolver(o);
  ASSERT_FALSE(resolver.resolve("missing.example").is_ok());
  now_ += seconds(10);
  ASSERT_FALSE(resolver.resolve("missing.example").is_ok());
  EXPECT_EQ(dns_.queries("missing.example", kMx), 2);
}

TEST_F(ResolverDns, MxHostWithoutAddressIsPermanent) {
  Resolver resolver(options());
  expect_error(resolver.resolve("ghost.example"), StatusCode::kPermanent,
               "no MX host of ghost.example has an address (mx.ghost.example)");
}

TEST_F(ResolverDns, ServfailIsUnavailableAndCachedBriefly) {
  Resolver resolver(options());
  const std::string message =
      "MX lookup for servfail.example failed: no DNS server gave a usable answer (SERVFAIL, "
      "REFUSED or unreachable)";
  expect_error(resolver.resolve("servfail.example"), StatusCode::kUnavailable, message);
  EXPECT_EQ(dns_.queries("servfail.example", kMx), 1);

  now_ += seconds(29);
  expect_error(resolver.resolve("servfail.example"), StatusCode::kUnavailable, message);
  EXPECT_EQ(dns_.queries("servfail.example", kMx), 1);
  now_ += seconds(1);
  expect_error(resolver.resolve("servfail.example"), StatusCode::kUnavailable, message);
  EXPECT_EQ(dns_.queries("servfail.example", kMx), 2);
}

TEST_F(ResolverDns, MxHostThatFailsForNowIsLeftOutBriefly) {
  Resolver resolver(options());
  auto targets = resolver.resolve("partial.example");
  ASSERT_TRUE(targets.is_ok()) << targets.status().message();
  EXPECT_EQ(*targets, (std::vector<Target>{{"192.0.2.61", 25, 10, "good.partial.example"}}));

  // Kept for failure_ttl (30 s), not for the records' hour.
  now_ += seconds(29);
  ASSERT_TRUE(resolver.resolve("partial.example").is_ok());
  EXPECT_EQ(dns_.queries("partial.example", kMx), 1);
  now_ += seconds(1);
  ASSERT_TRUE(resolver.resolve("partial.example").is_ok());
  EXPECT_EQ(dns_.queries("partial.example", kMx), 2);
}

TEST_F(ResolverDns, NoAnswerTimesOutAsUnavailable) {
  ResolverOptions o = options();
  o.timeout = milliseconds(200);
  Resolver resolver(o);
  const auto start = Clock::now();
  expect_error(resolver.resolve("silent.invalid"), StatusCode::kUnavailable,
               "MX lookup for silent.invalid failed: no answer from the DNS servers in time");
  const auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, milliseconds(190));
  EXPECT_LT(elapsed, milliseconds(1500));
  EXPECT_EQ(dns_.queries("silent.invalid", kMx), 1);
}

TEST_F(ResolverDns, TriesAsksAgainAfterATimeout) {
  ResolverOptions o = options();
  o.timeout = milliseconds(100);
  o.tries = 2;
  Resolver resolver(o);
  ASSERT_FALSE(resolver.resolve("silent.invalid").is_ok());
  EXPECT_EQ(dns_.queries("silent.invalid", kMx), 2);
}

TEST_F(ResolverDns, ConcurrentCallsShareOneLookup) {
  Resolver resolver(options());  // the answer takes 150 ms: both calls overlap
  Result<std::vector<Target>> first = Status::internal("not run");
  Result<std::vector<Target>> second = Status::internal("not run");
  std::thread a([&] { first = resolver.resolve("slow.example"); });
  std::thread b([&] { second = resolver.resolve("slow.example"); });
  a.join();
  b.join();
  const std::vector<Target> expected{{"192.0.2.91", 25, 10, "mx.slow.example"}};
  ASSERT_TRUE(first.is_ok()) << first.status().message();
  ASSERT_TRUE(second.is_ok()) << second.status().message();
  EXPECT_EQ(*first, expected);
  EXPECT_EQ(*second, expected);
  EXPECT_EQ(dns_.queries("slow.example", kMx), 1);
}

TEST_F(ResolverDns, RouteIsUsedBeforeDns) {
  ResolverOptions o = options();
  o.routes["mx.example"] = Target{"127.0.0.1", 2525, 0, "127.0.0.1"};
  Resolver resolver(o);
  EXPECT_EQ(resolver.resolve("mx.example").value(),
            (std::vector<Target>{{"127.0.0.1", 2525, 0, "127.0.0.1"}}));
  ASSERT_TRUE(resolver.resolve("onlya.example").is_ok());  // no route: DNS
  EXPECT_EQ(dns_.queries("mx.example", kMx), 0);
  EXPECT_EQ(dns_.queries("onlya.example", kMx), 1);
}

TEST_F(ResolverDns, NamesAreAskedAsGivenWithoutSearchDomains) {
  // LOCALDOMAIN would add a search list to a resolver that used one.
  const char* saved = std::getenv("LOCALDOMAIN");
  std::string saved_value = saved ? saved : "";
  ::setenv("LOCALDOMAIN", "search.test", 1);
  {
    Resolver resolver(options());
    ASSERT_FALSE(resolver.resolve("missing").is_ok());
    ASSERT_FALSE(resolver.resolve("missing.example").is_ok());
  }
  if (saved) {
    ::setenv("LOCALDOMAIN", saved_value.c_str(), 1);
  } else {
    ::unsetenv("LOCALDOMAIN");
  }
  EXPECT_EQ(dns_.asked(), (std::vector<std::string>{"missing", "missing.example"}));
}

TEST_F(ResolverDns, AddressLiteralNeedsNoDns) {
  Resolver resolver(options());
  EXPECT_EQ(resolver.resolve("[192.0.2.7]").value(),
            (std::vector<Target>{{"192.0.2.7", 25, 0, "[192.0.2.7]"}}));
  EXPECT_EQ(resolver.resolve("[IPv6:2001:db8::7]").value(),
            (std::vector<Target>{{"2001:db8::7", 25, 0, "[ipv6:2001:db8::7]"}}));
  EXPECT_EQ(dns_.total_queries(), 0);
}

TEST_F(ResolverDns, MalformedDomainIsInvalidWithoutAQuery) {
  Resolver resolver(options());
  expect_error(resolver.resolve("a..example"), StatusCode::kInvalidArgument,
               "\"a..example\" is not a domain name (IDN must be an A-label)");
  expect_error(resolver.resolve(""), StatusCode::kInvalidArgument,
               "\"\" is not a domain name (IDN must be an A-label)");
  expect_error(resolver.resolve("[300.1.1.1]"), StatusCode::kInvalidArgument,
               "\"[300.1.1.1]\" is not a domain name (IDN must be an A-label)");
  EXPECT_EQ(dns_.total_queries(), 0);
}

TEST_F(ResolverDns, BadServerIsInvalid) {
  ResolverOptions o = options();
  o.servers = {"not-an-address"};
  Resolver resolver(o);
  auto targets = resolver.resolve("mx.example");
  ASSERT_FALSE(targets.is_ok());
  EXPECT_EQ(targets.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(targets.status().message().rfind("DNS servers \"not-an-address\": ", 0), 0u)
      << targets.status().message();
  EXPECT_EQ(dns_.total_queries(), 0);
}

}  // namespace
}  // namespace magnetic::dns
