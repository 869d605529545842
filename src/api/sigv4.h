// AWS Signature Version 4 verification for the API (the "Authorization: AWS4-HMAC-SHA256"
// header form that the AWS CLI and the AWS SDKs send).
//
// The canonical request follows AWS's rules for services other than S3, which both botocore and
// the JS SDK apply: the path as sent on the wire (already percent-encoded once by the client) has
// its "." and ".." segments and empty segments removed and is then percent-encoded once more,
// '/' kept; query parameters are decoded, re-encoded with the RFC 3986 unreserved set kept and
// sorted by name, then value; each signed header's values are trimmed, inner whitespace runs
// collapsed, and repeated fields joined with ','. The payload hash is the SHA-256 of the body
// (x-amz-content-sha256, when sent, must be that same value). The credential scope is
// <yyyymmdd>/<region>/<service>/aws4_request with any region and service "ses" (the SES v2
// model's signingName) or "email" (its endpoint prefix).
//
// Failures are the errors AWS's REST-JSON services answer with, all HTTP 403:
//   MissingAuthenticationTokenException  no Authorization header
//   IncompleteSignatureException         Authorization or X-Amz-Date malformed or incomplete
//   InvalidSignatureException            X-Amz-Date further than the allowed skew from now
//   UnrecognizedClientException          unknown or revoked access key id
//   SignatureDoesNotMatch                wrong signature, wrong scope, or body hash mismatch
// None of these is a modelled SES exception: the JS SDK raises SESv2ServiceException with that
// name, botocore a ClientError with that code. Both read the Date header of the error response
// to correct their clock, so a skewed client recovers by itself.
//
// Thread-safe: all functions are pure apart from the lookup callback.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "api/errors.h"
#include "api/http_server.h"
#include "base/status.h"

namespace magnetic::api {

// The secret of an access key id; kNotFound when the key is unknown or revoked.
using SecretLookup = std::function<Result<std::string>(const std::string& access_key_id)>;

struct SigV4Identity {
  std::string access_key_id;
  std::string region;  // from the credential scope
};

// Checks the request's signature. now is the server's clock; max_skew is how far X-Amz-Date
// may be from it in either direction.
std::variant<SigV4Identity, ApiError> verify_sigv4(const HttpRequest& request,
                                                   const SecretLookup& lookup,
                                                   std::chrono::system_clock::time_point now,
                                                   std::chrono::seconds max_skew);

// The steps, exposed for tests and for clients that sign (test helpers).

// RFC 3986 percent-encoding: unreserved characters (A-Z a-z 0-9 - _ . ~) kept, '/' kept when
// keep_slash, everything else as %XX with upper-case hex.
std::string sigv4_uri_encode(std::string_view text, bool keep_slash);
// %XX decoded (a '%' not followed by two hex digits is kept as is); '+' stays '+'.
std::string percent_decode(std::string_view text);
std::string sigv4_canonical_uri(std::string_view raw_path);
std::string sigv4_canonical_query(std::string_view raw_query);
// The canonical headers block for these signed header names (lower case, in the order given):
// "name:value\n" per name. A signed name missing from headers gets an empty value.
std::string sigv4_canonical_headers(const std::vector<std::pair<std::string, std::string>>& headers,
                                    const std::vector<std::string>& signed_names);
std::string sigv4_canonical_request(std::string_view method, std::string_view raw_path,
                                    std::string_view raw_query,
                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                    const std::vector<std::string>& signed_names,
                                    std::string_view payload_hash);
// "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256 of canonical_request>".
std::string sigv4_string_to_sign(std::string_view amz_date, std::string_view scope,
                                 std::string_view canonical_request);
// Lower-case hex HMAC-SHA256 of string_to_sign under the key derived from secret, date
// (yyyymmdd), region and service.
std::string sigv4_signature(std::string_view secret, std::string_view date, std::string_view region,
                            std::string_view service, std::string_view string_to_sign);
std::string sha256_hex(std::string_view data);

}  // namespace magnetic::api
