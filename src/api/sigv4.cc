#include "api/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace magnetic::api {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr char kHexUpper[] = "0123456789ABCDEF";
constexpr char kHexLower[] = "0123456789abcdef";

ApiError auth_error(std::string type, std::string message) {
  return {403, std::move(type), std::move(message)};
}

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string to_hex(const unsigned char* data, size_t n) {
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kHexLower[data[i] >> 4]);
    out.push_back(kHexLower[data[i] & 15]);
  }
  return out;
}

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Trimmed, with every run of whitespace made one space (as botocore and the JS SDK do).
void append_collapsed(std::string_view value, std::string& out) {
  bool space = false;
  bool any = false;
  for (char c : value) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      space = any;
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    any = true;
    out.push_back(c);
  }
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t end = s.find(sep, start);
    out.emplace_back(s.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "20150830T123600Z" as a time point; false when malformed.
bool parse_amz_date(std::string_view s, std::chrono::system_clock::time_point& out) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z' || !all_digits(s.substr(0, 8)) ||
      !all_digits(s.substr(9, 6))) {
    return false;
  }
  auto num = [&](size_t at, size_t n) { return std::stoi(std::string(s.substr(at, n))); };
  using namespace std::chrono;
  year_month_day ymd{year(num(0, 4)), month(static_cast<unsigned>(num(4, 2))),
                     day(static_cast<unsigned>(num(6, 2)))};
  int h = num(9, 2), m = num(11, 2), sec = num(13, 2);
  if (!ymd.ok() || h > 23 || m > 59 || sec > 60) return false;
  out = sys_days(ymd) + hours(h) + minutes(m) + seconds(sec);
  return true;
}

std::string format_amz_date(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  auto secs = floor<seconds>(t);
  auto d = floor<days>(secs);
  year_month_day ymd{d};
  hh_mm_ss hms{secs - d};
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d%02u%02uT%02d%02d%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

struct AuthorizationHeader {
  std::string access_key_id, date, region, service, terminator;
  std::string scope;
  std::vector<std::string> signed_headers;
  std::string signed_headers_text;
  std::string signature;
};

// Parses "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..."; returns an empty
// string or what is wrong.
std::string parse_authorization(std::string_view text, AuthorizationHeader& out) {
  text = trim(text);
  size_t space = text.find(' ');
  std::string_view algorithm = text.substr(0, space);
  if (algorithm != kAlgorithm) {
    return "the Authorization header must use the " + std::string(kAlgorithm) +
           " algorithm (AWS Signature Version 4); got '" + std::string(algorithm) + "'";
  }
  if (space == std::string_view::npos) return "the Authorization header has no parameters";
  bool have_credential = false, have_signed = false, have_signature = false;
  for (const std::string& part : split(text.substr(space + 1), ',')) {
    std::string_view p = trim(part);
    if (p.empty()) continue;
    size_t eq = p.find('=');
    if (eq == std::string_view::npos) {
      return "the Authorization header parameter '" + std::string(p) + "' has no '='";
    }
    std::string_view key = p.substr(0, eq);
    std::string_view value = p.substr(eq + 1);
    if (key == "Credential") {
      std::vector<std::string> c = split(value, '/');
      if (c.size() != 5 || c[0].empty() || c[2].empty() || c[3].empty()) {
        return "the Credential of the Authorization header must be "
               "<access key id>/<yyyymmdd>/<region>/<service>/aws4_request; got '" +
               std::string(value) + "'";
      }
      out.access_key_id = c[0];
      out.date = c[1];
      out.region = c[2];
      out.service = c[3];
      out.terminator = c[4];
      out.scope = c[1] + "/" + c[2] + "/" + c[3] + "/" + c[4];
      have_credential = true;
    } else if (key == "SignedHeaders") {
      out.signed_headers_text = std::string(value);
      out.signed_headers = split(value, ';');
      have_signed = !value.empty();
    } else if (key == "Signature") {
      out.signature = std::string(value);
      have_signature = !value.empty();
    }
  }
  if (!have_credential) return "the Authorization header has no Credential";
  if (!have_signed) return "the Authorization header has no SignedHeaders";
  if (!have_signature) return "the Authorization header has no Signature";
  return {};
}

}  // namespace

std::string sigv4_uri_encode(std::string_view text, bool keep_slash) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHexUpper[c >> 4]);
      out.push_back(kHexUpper[c & 15]);
    }
  }
  return out;
}

std::string percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
        hex_value(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::string sigv4_canonical_uri(std::string_view raw_path) {
  // Dot segments and empty segments go, as both SDKs normalize before signing.
  std::vector<std::string> segments;
  for (std::string& segment : split(raw_path, '/')) {
    if (segment.empty() || segment == ".") continue;
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
      continue;
    }
    segments.push_back(std::move(segment));
  }
  std::string path = "/";
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) path.push_back('/');
    path.append(segments[i]);
  }
  if (!segments.empty() && raw_path.size() > 1 && raw_path.back() == '/') path.push_back('/');
  return sigv4_uri_encode(path, true);
}

std::string sigv4_canonical_query(std::string_view raw_query) {
  if (raw_query.empty()) return {};
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const std::string& part : split(raw_query, '&')) {
    size_t eq = part.find('=');
    std::string key = part.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : part.substr(eq + 1);
    pairs.emplace_back(sigv4_uri_encode(percent_decode(key), false),
                       sigv4_uri_encode(percent_decode(value), false));
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (i > 0) out.push_back('&');
    out.append(pairs[i].first);
    out.push_back('=');
    out.append(pairs[i].second);
  }
  return out;
}

std::string sigv4_canonical_headers(const std::vector<std::pair<std::string, std::string>>& headers,
                                    const std::vector<std::string>& signed_names) {
  std::string out;
  for (const std::string& name : signed_names) {
    out.append(name);
    out.push_back(':');
    bool first = true;
    for (const auto& [n, v] : headers) {
      if (n != name) continue;
      if (!first) out.push_back(',');
      first = false;
      append_collapsed(v, out);
    }
    out.push_back('\n');
  }
  return out;
}

std::string sigv4_canonical_request(std::string_view method, std::string_view raw_path,
                                    std::string_view raw_query,
                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                    const std::vector<std::string>& signed_names,
                                    std::string_view payload_hash) {
  std::string out(method);
  out.push_back('\n');
  out.append(sigv4_canonical_uri(raw_path));
  out.push_back('\n');
  out.append(sigv4_canonical_query(raw_query));
  out.push_back('\n');
  out.append(sigv4_canonical_headers(headers, signed_names));
  out.push_back('\n');
  for (size_t i = 0; i < signed_names.size(); ++i) {
    if (i > 0) out.push_back(';');
    out.append(signed_names[i]);
  }
  out.push_back('\n');
  out.append(payload_hash);
  return out;
}

std::string sigv4_string_to_sign(std::string_view amz_date, std::string_view scope,
                                 std::string_view canonical_request) {
  std::string out(kAlgorithm);
  out.push_back('\n');
  out.append(amz_date);
  out.push_back('\n');
  out.append(scope);
  out.push_back('\n');
  out.append(sha256_hex(canonical_request));
  return out;
}

std::string sigv4_signature(std::string_view secret, std::string_view date, std::string_view region,
                            std::string_view service, std::string_view string_to_sign) {
  std::string key = hmac("AWS4" + std::string(secret), date);
  key = hmac(key, region);
  key = hmac(key, service);
  key = hmac(key, "aws4_request");
  std::string sig = hmac(key, string_to_sign);
  return to_hex(reinterpret_cast<const unsigned char*>(sig.data()), sig.size());
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return to_hex(md, len);
}

std::variant<SigV4Identity, ApiError> verify_sigv4(const HttpRequest& request,
                                                   const SecretLookup& lookup,
                                                   std::chrono::system_clock::time_point now,
                                                   std::chrono::seconds max_skew) {
  // The header and its parts.
  const std::string* authorization = request.header("authorization");
  if (!authorization) {
    if (request.query.find("X-Amz-Signature=") != std::string::npos) {
      return auth_error("IncompleteSignatureException",
                        "Query-string (presigned) authentication is not supported; sign the "
                        "request with an Authorization header.");
    }
    return auth_error("MissingAuthenticationTokenException",
                      "The request has no Authorization header; sign it with AWS Signature "
                      "Version 4 and an access key of this service.");
  }
  AuthorizationHeader auth;
  if (std::string why = parse_authorization(*authorization, auth); !why.empty()) {
    return auth_error("IncompleteSignatureException", "Malformed Authorization header: " + why);
  }
  if (std::find(auth.signed_headers.begin(), auth.signed_headers.end(), "host") ==
      auth.signed_headers.end()) {
    return auth_error("IncompleteSignatureException",
                      "SignedHeaders must include 'host'; got '" + auth.signed_headers_text + "'");
  }
  for (const std::string& name : auth.signed_headers) {
    if (!request.header(name)) {
      return auth_error("IncompleteSignatureException",
                        "The signed header '" + name + "' is not in the request.");
    }
  }

  // The time, checked against the clock and the scope.
  const std::string* amz_date = request.header("x-amz-date");
  if (!amz_date) {
    return auth_error("IncompleteSignatureException",
                      "The request has no X-Amz-Date header (yyyymmddThhmmssZ, UTC).");
  }
  std::chrono::system_clock::time_point when;
  if (!parse_amz_date(*amz_date, when)) {
    return auth_error("IncompleteSignatureException",
                      "X-Amz-Date must be yyyymmddThhmmssZ (ISO 8601 basic format, UTC); got '" +
                          *amz_date + "'");
  }
  if (when < now - max_skew || when > now + max_skew) {
    std::string limit = std::to_string(max_skew.count() / 60) + " min";
    return auth_error("InvalidSignatureException",
                      (when < now ? "Signature expired: " : "Signature not yet current: ") +
                          *amz_date + " is more than " + limit + " from the server's time " +
                          format_amz_date(now) + ".");
  }
  if (auth.date != amz_date->substr(0, 8)) {
    return auth_error("SignatureDoesNotMatch", "The credential scope date " + auth.date +
                                                   " is not the date of X-Amz-Date " + *amz_date +
                                                   ".");
  }
  if (auth.service != "ses" && auth.service != "email") {
    return auth_error("SignatureDoesNotMatch",
                      "The credential should be scoped to service 'ses'; "
                      "got '" +
                          auth.service + "'.");
  }
  if (auth.terminator != "aws4_request") {
    return auth_error(
        "SignatureDoesNotMatch",
        "The credential scope must end with 'aws4_request'; got '" + auth.terminator + "'.");
  }

  // The payload, hashed here whatever the client claims.
  std::string payload_hash = sha256_hex(request.body);
  if (const std::string* claimed = request.header("x-amz-content-sha256")) {
    if (*claimed != payload_hash) {
      return auth_error("SignatureDoesNotMatch",
                        "x-amz-content-sha256 is not the SHA-256 of the request body (unsigned "
                        "payloads are not accepted).");
    }
  }

  // The key, then the signature.
  Result<std::string> secret = lookup(auth.access_key_id);
  if (!secret) {
    if (secret.status().code() == StatusCode::kNotFound) {
      return auth_error("UnrecognizedClientException",
                        "The access key ID '" + auth.access_key_id +
                            "' is not known to this service or has been revoked.");
    }
    return ApiError{500, "InternalServiceErrorException",
                    "The access key could not be looked up; try again later."};
  }
  std::string canonical =
      sigv4_canonical_request(request.method, request.path, request.query, request.headers,
                              auth.signed_headers, payload_hash);
  std::string to_sign = sigv4_string_to_sign(*amz_date, auth.scope, canonical);
  std::string expected = sigv4_signature(*secret, auth.date, auth.region, auth.service, to_sign);
  if (auth.signature.size() != expected.size() ||
      CRYPTO_memcmp(auth.signature.data(), expected.data(), expected.size()) != 0) {
    return auth_error("SignatureDoesNotMatch",
                      "The request signature does not match the one computed with the secret "
                      "of access key '" +
                          auth.access_key_id +
                          "'. Check the secret and the signing method. The canonical request "
                          "was:\n" +
                          canonical + "\nand the string to sign:\n" + to_sign);
  }
  return SigV4Identity{auth.access_key_id, auth.region};
}

}  // namespace magnetic::api
