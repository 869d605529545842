// HTTP and HTTPS URLs of webhooks: the one grammar that the API checks when a destination is
// created and that the dispatcher reads when it posts, so that what is accepted is deliverable.
//
//   scheme://host[:port][/path][?query]
//
// scheme http or https (either case, RFC 3986 section 3.1); host a DNS name (letters, digits,
// '-' and '.', labels of 1 to 63 that neither start nor end with '-', at most 253 in all, the
// last not numeric), an IPv4 address of four decimal numbers or a bracketed IPv6 address; port 1 to
// 65535; path and query of RFC 3986 unreserved and sub-delim characters, ':',
// '@', '/', '?' and percent escapes. No user name or password, no fragment. Written here because
// the Boost this project builds with (1.74) has no Boost.URL, and the rules are stricter than a
// general URL parser's on purpose.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace magnetic {

struct HttpUrl {
  bool tls = false;         // https
  std::string host;         // without IPv6 brackets
  std::string port;         // as given, or the scheme's default ("80" or "443")
  std::string target;       // path and query, "/" when the URL has no path
  std::string host_header;  // host[:port] as given, for the Host field
};

// The URL's parts, or Status::invalid whose message says what is wrong in a phrase that fits
// after "... is not a usable webhook URL: " (e.g. "its port is empty").
Result<HttpUrl> parse_http_url(std::string_view url);

}  // namespace magnetic
