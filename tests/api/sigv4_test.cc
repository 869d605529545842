// SigV4 verification against signatures made by botocore (make_sigv4_vectors.py) and by the JS
// SDK's signer (make_sigv4_vectors.js): two independent implementations, the two clients that
// must work. Then one test per way a request can fail.
#include "api/sigv4.h"

#include <gtest/gtest.h>

#include <chrono>

namespace magnetic::api {
namespace {

using namespace std::chrono;

constexpr const char* kKeyId = "AKIAEXAMPLE000000001";
constexpr const char* kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const system_clock::time_point kSigned = sys_days(year(2026) / 3 / 14) + 15h + 9min + 26s;

SecretLookup lookup() {
  return [](const std::string& id) -> Result<std::string> {
    if (id == kKeyId) return std::string(kSecret);
    return Status::not_found("no such key");
  };
}

HttpRequest make(std::string method, std::string target,
                 std::vector<std::pair<std::string, std::string>> headers, std::string body = "") {
  HttpRequest r;
  r.method = std::move(method);
  r.target = std::move(target);
  size_t q = r.target.find('?');
  r.path = r.target.substr(0, q);
  if (q != std::string::npos) r.query = r.target.substr(q + 1);
  r.headers = std::move(headers);
  r.body = std::move(body);
  return r;
}

std::string auth(const std::string& signed_headers, const std::string& signature,
                 const std::string& scope = "20260314/eu-west-1/ses/aws4_request") {
  return std::string("AWS4-HMAC-SHA256 Credential=") + kKeyId + "/" + scope +
         ", SignedHeaders=" + signed_headers + ", Signature=" + signature;
}

HttpRequest botocore_get_identity() {
  return make("GET", "/v2/email/identities/user%40example.com",
              {{"host", "127.0.0.1:8443"},
               {"x-amz-date", "20260314T150926Z"},
               {"authorization",
                auth("host;x-amz-date",
                     "9e37f25629b75708eb617cafac24ee4530da3bea02e0fb7ba9388669d1ef2273")}});
}

constexpr const char* kSendBody =
    R"({"Content":{"Simple":{"Subject":{"Data":"Hi"},"Body":{"Text":{"Data":"Hello"}}}},)"
    R"("Destination":{"ToAddresses":["to@example.com"]},"FromEmailAddress":"from@example.com"})";

HttpRequest botocore_send_email() {
  return make(
      "POST", "/v2/email/outbound-emails",
      {{"content-type", "application/json"},
       {"x-custom", "two   spaces"},
       {"host", "localhost:8443"},
       {"x-amz-date", "20260314T150926Z"},
       {"authorization", auth("content-type;host;x-amz-date;x-custom",
                              "c59adb0418759170f081038a3163bb06dd3a08e0ce02f98f7fc28cef0ba48eda")}},
      kSendBody);
}

const ApiError* error_of(const std::variant<SigV4Identity, ApiError>& v) {
  return std::get_if<ApiError>(&v);
}

void expect_ok(const HttpRequest& r, system_clock::time_point now = kSigned + 1min) {
  auto v = verify_sigv4(r, lookup(), now, 15min);
  if (const ApiError* e = error_of(v)) FAIL() << e->type << ": " << e->message;
  EXPECT_EQ(std::get<SigV4Identity>(v).access_key_id, kKeyId);
  EXPECT_EQ(std::get<SigV4Identity>(v).region, "eu-west-1");
}

void expect_error(const HttpRequest& r, const std::string& type, const std::string& start,
                  system_clock::time_point now = kSigned) {
  auto v = verify_sigv4(r, lookup(), now, 15min);
  const ApiError* e = error_of(v);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->status, 403);
  EXPECT_EQ(e->type, type);
  EXPECT_EQ(e->message.substr(0, start.size()), start) << e->message;
}

std::string& header(HttpRequest& r, const std::string& name) {
  for (auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  r.headers.emplace_back(name, "");
  return r.headers.back().second;
}

void remove_header(HttpRequest& r, const std::string& name) {
  std::erase_if(r.headers, [&](const auto& h) { return h.first == name; });
}

TEST(SigV4Canonical, BotocoreCanonicalRequests) {
  HttpRequest r = botocore_get_identity();
  EXPECT_EQ(sigv4_canonical_request(r.method, r.path, r.query, r.headers, {"host", "x-amz-date"},
                                    sha256_hex("")),
            "GET\n/v2/email/identities/user%2540example.com\n\nhost:127.0.0.1:8443\n"
            "x-amz-date:20260314T150926Z\n\nhost;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

  HttpRequest s = botocore_send_email();
  EXPECT_EQ(sigv4_canonical_request(s.method, s.path, s.query, s.headers,
                                    {"content-type", "host", "x-amz-date", "x-custom"},
                                    sha256_hex(s.body)),
            "POST\n/v2/email/outbound-emails\n\ncontent-type:application/json\n"
            "host:localhost:8443\nx-amz-date:20260314T150926Z\nx-custom:two spaces\n\n"
            "content-type;host;x-amz-date;x-custom\n"
            "fc1a96e45a9554eef2f1c92bb6bb8cfdf66e8e08a17fe0087aefa2ee4922b0db");
}

TEST(SigV4Canonical, QuerySortedAndReencoded) {
  EXPECT_EQ(sigv4_canonical_query("Reason=COMPLAINT&Reason=BOUNCE&PageSize=10&NextToken=a%2Bb%3D%3D"
                                  "&StartDate=2026-01-01T00%3A00%3A00Z"),
            "NextToken=a%2Bb%3D%3D&PageSize=10&Reason=BOUNCE&Reason=COMPLAINT&"
            "StartDate=2026-01-01T00%3A00%3A00Z");
  // Lower-case hex and unneeded escapes come out in the one canonical form.
  EXPECT_EQ(sigv4_canonical_query("b=%7e%41&a"), "a=&b=~A");
  EXPECT_EQ(sigv4_canonical_query("a=x y"), "a=x%20y");
  EXPECT_EQ(sigv4_canonical_query(""), "");
}

TEST(SigV4Canonical, PathNormalizedThenEncodedAgain) {
  EXPECT_EQ(sigv4_canonical_uri("/v2/email/templates/my%20template%21"),
            "/v2/email/templates/my%2520template%2521");
  EXPECT_EQ(sigv4_canonical_uri("/a/./b/../c//d/"), "/a/c/d/");
  EXPECT_EQ(sigv4_canonical_uri("/"), "/");
  EXPECT_EQ(sigv4_canonical_uri(""), "/");
  EXPECT_EQ(sigv4_canonical_uri("/a b"), "/a%20b");
}

TEST(SigV4Canonical, HeaderValuesTrimmedCollapsedAndJoined) {
  std::vector<std::pair<std::string, std::string>> h = {
      {"x-a", "  one \t two  "}, {"host", "h"}, {"x-a", "three"}};
  EXPECT_EQ(sigv4_canonical_headers(h, {"host", "x-a"}), "host:h\nx-a:one two,three\n");
}

TEST(SigV4, AcceptsBotocoreSignatures) {
  expect_ok(botocore_get_identity());
  expect_ok(botocore_send_email());

  expect_ok(make("GET",
                 "/v2/email/suppression/addresses?Reason=COMPLAINT&Reason=BOUNCE&PageSize=10"
                 "&NextToken=a%2Bb%3D%3D&StartDate=2026-01-01T00%3A00%3A00Z",
                 {{"host", "127.0.0.1:8443"},
                  {"x-amz-date", "20260314T150926Z"},
                  {"authorization",
                   auth("host;x-amz-date",
                        "4bbc8de6aede6fba8f80f1bf7b24d275e0bae344d1f3b46e90968b55f9c69bc4")}}));

  expect_ok(make(
      "PUT", "/v2/email/templates/my%20template%21",
      {{"content-type", "application/json"},
       {"host", "127.0.0.1:8443"},
       {"x-amz-date", "20260314T150926Z"},
       {"authorization", auth("content-type;host;x-amz-date",
                              "7490b2b166ee772b427b09275e40d608927915fca3e89ddfcba14b78346f6df2")}},
      R"({"TemplateContent":{"Subject":"x"}})"));
}

std::vector<std::pair<std::string, std::string>> js_headers(const std::string& body_hash,
                                                            const std::string& signature) {
  return {{"host", "127.0.0.1:8443"},
          {"content-type", "application/json"},
          {"x-amz-date", "20260314T150926Z"},
          {"x-amz-content-sha256", body_hash},
          {"authorization", auth("content-type;host;x-amz-content-sha256;x-amz-date", signature)}};
}

constexpr const char* kEmptyHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(SigV4, AcceptsJsSdkSignatures) {
  expect_ok(make(
      "GET", "/v2/email/identities/J%C3%B6rg%40example.com",
      js_headers(kEmptyHash, "b8ed71f3b99eb08af2d079637295b2c52c4ba0c1b1523ff2b3cff0cff42e7aee")));
  expect_ok(make(
      "GET",
      "/v2/email/suppression/addresses?Reason=COMPLAINT&Reason=BOUNCE&PageSize=10"
      "&NextToken=a%2Bb%3D%3D",
      js_headers(kEmptyHash, "17ced1e30a5ada38d2ad8d5eb80647e0c2857bf00cfdd4833f42f765033c2bfb")));
  expect_ok(make("POST", "/v2/email/outbound-bulk-emails",
                 js_headers("5041bf1f713df204784353e82f6a4a535931cb64f1f4b4a5aeaffcb720918b22",
                            "4ce614a4700dd3af1841cc823c92e80b93a6f25c966ae0de3386344c7abba490"),
                 R"({"x":1})"));
}

TEST(SigV4, AcceptsAnyTimeWithinTheSkew) {
  expect_ok(botocore_get_identity(), kSigned + 15min);
  expect_ok(botocore_get_identity(), kSigned - 15min);
}

TEST(SigV4, MissingAuthorization) {
  HttpRequest r = botocore_get_identity();
  remove_header(r, "authorization");
  expect_error(r, "MissingAuthenticationTokenException", "The request has no Authorization");
}

TEST(SigV4, PresignedQueryIsRefused) {
  HttpRequest r = botocore_get_identity();
  remove_header(r, "authorization");
  r.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00";
  expect_error(r, "IncompleteSignatureException", "Query-string (presigned) authentication");
}

TEST(SigV4, OtherAlgorithm) {
  HttpRequest r = botocore_get_identity();
  header(r, "authorization") = "AWS4-ECDSA-P256-SHA256 Credential=x";
  expect_error(r, "IncompleteSignatureException",
               "Malformed Authorization header: the Authorization header must use the "
               "AWS4-HMAC-SHA256 algorithm");
}

TEST(SigV4, MalformedCredential) {
  HttpRequest r = botocore_get_identity();
  header(r, "authorization") =
      "AWS4-HMAC-SHA256 Credential=AKIA/20260314/ses, SignedHeaders=host, Signature=00";
  expect_error(
      r, "IncompleteSignatureException",
      "Malformed Authorization header: the Credential of the Authorization header must be");
}

TEST(SigV4, MissingSignature) {
  HttpRequest r = botocore_get_identity();
  header(r, "authorization") = std::string("AWS4-HMAC-SHA256 Credential=") + kKeyId +
                               "/20260314/eu-west-1/ses/aws4_request, SignedHeaders=host";
  expect_error(r, "IncompleteSignatureException",
               "Malformed Authorization header: the Authorization header has no Signature");
}

TEST(SigV4, HostMustBeSigned) {
  HttpRequest r = botocore_get_identity();
  header(r, "authorization") = auth("x-amz-date", std::string(64, '0'));
  expect_error(r, "IncompleteSignatureException", "SignedHeaders must include 'host'");
}

TEST(SigV4, SignedHeaderAbsentFromRequest) {
  HttpRequest r = botocore_get_identity();
  header(r, "authorization") = auth("host;x-amz-date;x-extra", std::string(64, '0'));
  expect_error(r, "IncompleteSignatureException",
               "The signed header 'x-extra' is not in the request.");
}

TEST(SigV4, MissingDate) {
  HttpRequest r = botocore_get_identity();
  remove_header(r, "x-amz-date");
  header(r, "authorization") = auth("host", std::string(64, '0'));
  expect_error(r, "IncompleteSignatureException", "The request has no X-Amz-Date header");
}

TEST(SigV4, MalformedDate) {
  HttpRequest r = botocore_get_identity();
  header(r, "x-amz-date") = "2026-03-14T15:09:26Z";
  expect_error(r, "IncompleteSignatureException",
               "X-Amz-Date must be yyyymmddThhmmssZ (ISO 8601 basic format, UTC); got "
               "'2026-03-14T15:09:26Z'");
}

TEST(SigV4, Expired) {
  expect_error(botocore_get_identity(), "InvalidSignatureException",
               "Signature expired: 20260314T150926Z is more than 15 min from the server's time "
               "20260314T152427Z.",
               kSigned + 15min + 1s);
}

TEST(SigV4, NotYetCurrent) {
  expect_error(botocore_get_identity(), "InvalidSignatureException",
               "Signature not yet current: 20260314T150926Z is more than 15 min from the "
               "server's time 20260314T145425Z.",
               kSigned - 15min - 1s);
}

TEST(SigV4, UnknownKey) {
  HttpRequest r = botocore_get_identity();
  std::string& a = header(r, "authorization");
  a.replace(a.find(kKeyId), std::string(kKeyId).size(), "AKIAUNKNOWN000000000");
  expect_error(r, "UnrecognizedClientException",
               "The access key ID 'AKIAUNKNOWN000000000' is not known to this service or has "
               "been revoked.");
}

TEST(SigV4, WrongSecret) {
  HttpRequest r = botocore_get_identity();
  auto v = verify_sigv4(
      r, [](const std::string&) -> Result<std::string> { return std::string("other secret"); },
      kSigned, 15min);
  ASSERT_NE(error_of(v), nullptr);
  EXPECT_EQ(error_of(v)->type, "SignatureDoesNotMatch");
  EXPECT_EQ(error_of(v)->status, 403);
}

TEST(SigV4, TamperedBody) {
  HttpRequest r = botocore_send_email();
  r.body.back() = ' ';
  expect_error(r, "SignatureDoesNotMatch", "The request signature does not match the one computed");
}

TEST(SigV4, TamperedPath) {
  HttpRequest r = botocore_get_identity();
  r.path = "/v2/email/identities/other%40example.com";
  expect_error(r, "SignatureDoesNotMatch", "The request signature does not match");
}

TEST(SigV4, TamperedSignedHeader) {
  HttpRequest r = botocore_send_email();
  header(r, "x-custom") = "two spaces!";
  expect_error(r, "SignatureDoesNotMatch", "The request signature does not match");
}

TEST(SigV4, BodyHashHeaderMismatch) {
  HttpRequest r =
      make("POST", "/v2/email/outbound-bulk-emails",
           js_headers("5041bf1f713df204784353e82f6a4a535931cb64f1f4b4a5aeaffcb720918b22",
                      "4ce614a4700dd3af1841cc823c92e80b93a6f25c966ae0de3386344c7abba490"),
           R"({"x":2})");
  expect_error(r, "SignatureDoesNotMatch",
               "x-amz-content-sha256 is not the SHA-256 of the request body");
  header(r, "x-amz-content-sha256") = "UNSIGNED-PAYLOAD";
  expect_error(r, "SignatureDoesNotMatch",
               "x-amz-content-sha256 is not the SHA-256 of the request body");
}

TEST(SigV4, WrongService) {
  HttpRequest r = botocore_get_identity();
  header(r, "authorization") =
      auth("host;x-amz-date", std::string(64, '0'), "20260314/eu-west-1/s3/aws4_request");
  expect_error(r, "SignatureDoesNotMatch",
               "The credential should be scoped to service 'ses'; got 's3'.");
}

TEST(SigV4, ScopeDateNotTheRequestDate) {
  HttpRequest r = botocore_get_identity();
  header(r, "authorization") =
      auth("host;x-amz-date", std::string(64, '0'), "20260313/eu-west-1/ses/aws4_request");
  expect_error(r, "SignatureDoesNotMatch",
               "The credential scope date 20260313 is not the date of X-Amz-Date "
               "20260314T150926Z.");
}

TEST(SigV4, WrongTerminator) {
  HttpRequest r = botocore_get_identity();
  header(r, "authorization") =
      auth("host;x-amz-date", std::string(64, '0'), "20260314/eu-west-1/ses/aws4_req");
  expect_error(r, "SignatureDoesNotMatch", "The credential scope must end with 'aws4_request'");
}

TEST(SigV4, EmailServiceNameAccepted) {
  // The endpoint prefix as service name: signed here with our own functions, since neither SDK
  // uses it for SES v2.
  HttpRequest r = botocore_get_identity();
  std::string canonical = sigv4_canonical_request(r.method, r.path, r.query, r.headers,
                                                  {"host", "x-amz-date"}, sha256_hex(""));
  std::string sts =
      sigv4_string_to_sign("20260314T150926Z", "20260314/us-east-1/email/aws4_request", canonical);
  header(r, "authorization") =
      auth("host;x-amz-date", sigv4_signature(kSecret, "20260314", "us-east-1", "email", sts),
           "20260314/us-east-1/email/aws4_request");
  auto v = verify_sigv4(r, lookup(), kSigned, 15min);
  ASSERT_EQ(error_of(v), nullptr) << error_of(v)->message;
  EXPECT_EQ(std::get<SigV4Identity>(v).region, "us-east-1");
}

TEST(SigV4, PercentDecode) {
  EXPECT_EQ(percent_decode("a%40b%2fc"), "a@b/c");
  EXPECT_EQ(percent_decode("100%"), "100%");
  EXPECT_EQ(percent_decode("%zz%4"), "%zz%4");
  EXPECT_EQ(percent_decode("a+b"), "a+b");
}

}  // namespace
}  // namespace magnetic::api
