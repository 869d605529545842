#include "base/http_url.h"

#include <gtest/gtest.h>

namespace magnetic {
namespace {

std::string problem(std::string_view url) {
  auto u = parse_http_url(url);
  return u ? "" : u.status().message();
}

TEST(HttpUrlTest, PartsOfGoodUrls) {
  auto u = parse_http_url("http://127.0.0.1:8080/hook?x=1");
  ASSERT_TRUE(u.is_ok());
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, "8080");
  EXPECT_EQ(u->target, "/hook?x=1");
  EXPECT_EQ(u->host_header, "127.0.0.1:8080");

  u = parse_http_url("https://hooks.example.com");
  ASSERT_TRUE(u.is_ok());
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->port, "443");
  EXPECT_EQ(u->target, "/");
  EXPECT_EQ(u->host_header, "hooks.example.com");

  u = parse_http_url("http://[::1]:81?q=%41");
  ASSERT_TRUE(u.is_ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, "81");
  EXPECT_EQ(u->target, "/?q=%41");
  EXPECT_EQ(u->host_header, "[::1]:81");
}

// Regression (uppercase_scheme_drops_events): the scheme is case-insensitive, and what the API
// accepts the dispatcher must read the same way, or every event of the destination is dropped.
TEST(HttpUrlTest, SchemeInAnyCase) {
  EXPECT_EQ(problem("HTTP://127.0.0.1:8080/hook"), "");
  auto u = parse_http_url("HttpS://hooks.example.com/");
  ASSERT_TRUE(u.is_ok());
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(problem("HTTPX://example.com/"), "it must start with http:// or https://");
}

TEST(HttpUrlTest, EachProblemIsNamed) {
  struct Bad {
    std::string url, why;
  };
  for (const Bad& b : std::vector<Bad>{
           {"ftp://a.test/", "it must start with http:// or https://"},
           {"a.test/", "it must start with http:// or https://"},
           {"http://user:pw@a.test/", "it must not hold a user name or password"},
           {"http://@a.test/", "it must not hold a user name or password"},
           {"http:///path", "it has no host"},
           {"http://", "it has no host"},
           {"http://a..test/", "its host has an empty label"},
           {"http://a.test./", "its host has an empty label"},
           {"http://" + std::string(64, 'a') + ".test/",
            "its host has a label longer than 63 characters"},
           {"http://" + std::string(254, 'a') + "/", "its host is longer than 253 characters"},
           {"http://a_b.test/", "its host may hold only letters, digits, '-' and '.'"},
           {"http://-.test/", "its host has a label that starts or ends with '-'"},
           {"http://a-.test/", "its host has a label that starts or ends with '-'"},
           {"http://a.-b/", "its host has a label that starts or ends with '-'"},
           // Regression (numeric_host_goes_elsewhere): each is 127.0.0.1 to a resolver.
           {"http://0177.0.0.1/",
            "its host is numeric but not an IPv4 address of four decimal numbers"},
           {"http://0x7f.0.0.1/",
            "its host is numeric but not an IPv4 address of four decimal numbers"},
           {"http://2130706433/",
            "its host is numeric but not an IPv4 address of four decimal numbers"},
           {"http://127.1/", "its host is numeric but not an IPv4 address of four decimal numbers"},
           {"http://1.2.3.4.5/",
            "its host is numeric but not an IPv4 address of four decimal numbers"},
           {"http://a b.test/", "its host may hold only letters, digits, '-' and '.'"},
           {"http://a.test:0/", "its port must be a number from 1 to 65535"},
           {"http://a.test:65536/", "its port must be a number from 1 to 65535"},
           {"http://a.test:99999999/", "its port must be a number from 1 to 65535"},
           {"http://a.test:8x/", "its port must be a number from 1 to 65535"},
           {"http://a.test:/", "its port is empty"},
           {"http://[::1]:/", "its port is empty"},
           {"http://[::1/", "its IPv6 address has no closing ']'"},
           {"http://[zz::1]/", "its host is not an IPv6 address"},
           {"http://[::1]x/", "its host is followed by something other than a port"},
           {"http://a.test/p#frag", "it must not have a fragment ('#')"},
           {"http://a.test/a b",
            "its path or query holds a character that must be percent-encoded"},
           {"http://a.test/a\r\nX: y",
            "its path or query holds a character that must be percent-encoded"},
           {"http://a.test/%zz", "it has a '%' that is not followed by two hex digits"},
           {"http://a.test/%4", "it has a '%' that is not followed by two hex digits"},
       }) {
    EXPECT_EQ(problem(b.url), b.why) << b.url;
  }
}

}  // namespace
}  // namespace magnetic
