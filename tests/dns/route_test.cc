// parse_route: the --route and --relay syntax, exact results and exact errors.
#include <gtest/gtest.h>

#include <string>

#include "dns/resolver.h"

namespace magnetic::dns {
namespace {

struct Good {
  const char* text;
  bool relay;
  const char* domain;
  const char* host;
  uint16_t port;
};

TEST(ParseRoute, AcceptsEveryForm) {
  const Good cases[] = {
      {"example.test=mx.example.test:2525", false, "example.test", "mx.example.test", 2525},
      {"example.test=mx.example.test", false, "example.test", "mx.example.test", 25},
      {"Example.TEST=MX.Example.Test:25", false, "example.test", "mx.example.test", 25},
      {"example.test.=127.0.0.1:2525", false, "example.test", "127.0.0.1", 2525},
      {"example.test=[::1]:2525", false, "example.test", "::1", 2525},
      {"example.test=[2001:DB8::1]", false, "example.test", "2001:db8::1", 25},
      {"*=127.0.0.1:1", false, "*", "127.0.0.1", 1},
      {"xn--bcher-kva.example=127.0.0.1:65535", false, "xn--bcher-kva.example", "127.0.0.1", 65535},
      {"127.0.0.1:2525", true, "*", "127.0.0.1", 2525},
      {"relay.example.test", true, "*", "relay.example.test", 25},
      {"[::1]:587", true, "*", "::1", 587},
      {"[::1]", true, "*", "::1", 25},
  };
  for (const Good& c : cases) {
    SCOPED_TRACE(c.text);
    auto route = parse_route(c.text, c.relay);
    ASSERT_TRUE(route.is_ok()) << route.status().message();
    EXPECT_EQ(route->first, c.domain);
    EXPECT_EQ(route->second, (Target{c.host, c.port, 0, c.host}));
  }
}

struct Bad {
  const char* text;
  bool relay;
  const char* message;
};

TEST(ParseRoute, RejectsWithAReason) {
  const Bad cases[] = {
      {"mx.example.test:25", false,
       "route \"mx.example.test:25\": expected DOMAIN=HOST:PORT (no '=')"},
      {"=mx.example.test", false, "route \"=mx.example.test\": the domain is empty"},
      {"example.test=", false, "route \"example.test=\": the host is empty"},
      {"example.test=:25", false, "route \"example.test=:25\": the host is empty"},
      {"exa mple.test=h:25", false,
       "route \"exa mple.test=h:25\": \"exa mple.test\" is not a domain name (IDN must be given "
       "as A-labels)"},
      {"b\xc3\xbc"
       "cher.example=h",
       false,
       "route \"b\xc3\xbc"
       "cher.example=h\": \"b\xc3\xbc"
       "cher.example\" is not a domain name "
       "(IDN must be given as A-labels)"},
      {"a..example=h", false,
       "route \"a..example=h\": \"a..example\" is not a domain name (IDN must be given as "
       "A-labels)"},
      {"example.test=h:", false,
       "route \"example.test=h:\": port \"\" is not a number from 1 to "
       "65535"},
      {"example.test=h:smtp", false,
       "route \"example.test=h:smtp\": port \"smtp\" is not a number from 1 to 65535"},
      {"example.test=h:0", false,
       "route \"example.test=h:0\": port 0 is out of range (1 to 65535)"},
      {"example.test=h:65536", false,
       "route \"example.test=h:65536\": port 65536 is out of range (1 to 65535)"},
      {"example.test=h:123456", false,
       "route \"example.test=h:123456\": port \"123456\" is not a number from 1 to 65535"},
      {"example.test=::1:25", false,
       "route \"example.test=::1:25\": an IPv6 address must be written in brackets, as in "
       "[::1]:2525"},
      {"example.test=[::1:25", false,
       "route \"example.test=[::1:25\": missing ']' after the IPv6 address"},
      {"example.test=[::1]2525", false,
       "route \"example.test=[::1]2525\": expected ':PORT' after ']', got \"2525\""},
      {"example.test=[mx.example]:25", false,
       "route \"example.test=[mx.example]:25\": \"mx.example\" in brackets is not an IPv6 "
       "address"},
      {"example.test=mx_host!:25", false,
       "route \"example.test=mx_host!:25\": \"mx_host!\" is not a host name or IPv4 address"},
      {"example.test=127.0.0.1:2525", true,
       "relay \"example.test=127.0.0.1:2525\": expected HOST:PORT, not DOMAIN=HOST:PORT"},
      {"", true, "relay \"\": the host is empty"},
      {"127.0.0.1:99999", true,
       "relay \"127.0.0.1:99999\": port 99999 is out of range (1 to "
       "65535)"},
  };
  for (const Bad& c : cases) {
    SCOPED_TRACE(c.text);
    auto route = parse_route(c.text, c.relay);
    ASSERT_FALSE(route.is_ok());
    EXPECT_EQ(route.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(route.status().message(), c.message);
  }
}

}  // namespace
}  // namespace magnetic::dns
