// Email identities: Easy DKIM and BYODKIM domains, addresses, listing and deletion.
#include <gtest/gtest.h>
#include <openssl/x509.h>

#include "api/json_reader.h"
#include "dkim/signer.h"
#include "test_server.h"

namespace magnetic::api::testing {
namespace {

using nlohmann::json;

double now_seconds() {
  return static_cast<double>(duration_cast<seconds>(kNow.time_since_epoch()).count());
}

// The base64 body of a PEM (what SES's DomainSigningPrivateKey holds).
std::string pem_body(const std::string& pem) {
  std::string out;
  std::istringstream in(pem);
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with("-----")) out += line;
  }
  return out;
}

std::string pkcs1_base64(const dkim::DkimKey& key) {
  unsigned char* der = nullptr;
  int n = i2d_PrivateKey(key.pkey(), &der);
  std::string bytes(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return base64_encode(bytes);
}

TEST(IdentityRoutes, DomainWithGeneratedKey) {
  TestServer server;
  Response r = server.post("/v2/email/identities", {{"EmailIdentity", "Example.COM"}});
  ASSERT_EQ(r.status, 200) << r.body;
  json j = r.json();
  Result<store::Identity> stored = server.store().get_identity("example.com");
  ASSERT_TRUE(stored.is_ok());
  EXPECT_EQ(stored->name, "example.com");
  EXPECT_TRUE(stored->is_domain);
  EXPECT_EQ(stored->dkim_origin, "AWS_SES");
  EXPECT_EQ(stored->dkim_key_length, "RSA_2048_BIT");
  EXPECT_EQ(stored->dkim_selector.substr(0, 4), "test");
  EXPECT_EQ(stored->dkim_selector.size(), 12u);
  auto key = dkim::DkimKey::from_pem(stored->dkim_private_key_pem);
  ASSERT_TRUE(key.is_ok());
  EXPECT_EQ(key->bits(), 2048);

  EXPECT_EQ(j, json({{"IdentityType", "DOMAIN"},
                     {"VerifiedForSendingStatus", true},
                     {"DkimAttributes",
                      {{"SigningEnabled", true},
                       {"Status", "SUCCESS"},
                       {"Tokens", {stored->dkim_selector}},
                       {"SigningAttributesOrigin", "AWS_SES"},
                       {"CurrentSigningKeyLength", "RSA_2048_BIT"},
                       {"NextSigningKeyLength", "RSA_2048_BIT"},
                       {"LastKeyGenerationTimestamp", now_seconds()}}},
                     {"DkimDnsRecords",
                      {{{"Name", stored->dkim_selector + "._domainkey.example.com"},
                        {"Type", "TXT"},
                        {"Value", key->dns_txt_value()}}}}}));

  r = server.get("/v2/email/identities/example.com");
  ASSERT_EQ(r.status, 200) << r.body;
  json g = r.json();
  EXPECT_EQ(g["IdentityType"], "DOMAIN");
  EXPECT_EQ(g["VerificationStatus"], "SUCCESS");
  EXPECT_EQ(g["VerifiedForSendingStatus"], true);
  EXPECT_EQ(g["FeedbackForwardingStatus"], true);
  EXPECT_EQ(g["DkimAttributes"], j["DkimAttributes"]);
  EXPECT_EQ(g["DkimDnsRecords"], j["DkimDnsRecords"]);
  EXPECT_EQ(g["Policies"], json::object());
  EXPECT_EQ(g["Tags"], json::array());

  r = server.post("/v2/email/identities", {{"EmailIdentity", "example.com"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error_type(), "AlreadyExistsException");
  EXPECT_EQ(r.message(), "Email identity example.com already exists.");
}

TEST(IdentityRoutes, Rsa1024OnRequest) {
  TestServer server;
  Response r = server.post("/v2/email/identities",
                           {{"EmailIdentity", "small.example"},
                            {"DkimSigningAttributes", {{"NextSigningKeyLength", "RSA_1024_BIT"}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["DkimAttributes"]["CurrentSigningKeyLength"], "RSA_1024_BIT");
}

TEST(IdentityRoutes, BringYourOwnKey) {
  TestServer server;
  auto rsa = dkim::DkimKey::generate(dkim::Algorithm::kRsaSha256, 1024);
  auto ed = dkim::DkimKey::generate(dkim::Algorithm::kEd25519Sha256);
  ASSERT_TRUE(rsa.is_ok() && ed.is_ok());
  struct Case {
    std::string domain, key, length;
  };
  std::vector<Case> cases = {
      {"pkcs8.example", pem_body(rsa->private_pem()), "RSA_1024_BIT"},
      {"pkcs1.example", pkcs1_base64(*rsa), "RSA_1024_BIT"},
      {"pem.example", rsa->private_pem(), "RSA_1024_BIT"},
      {"ed.example", pem_body(ed->private_pem()), "ED25519"},
  };
  for (const Case& c : cases) {
    Response r =
        server.post("/v2/email/identities",
                    {{"EmailIdentity", c.domain},
                     {"DkimSigningAttributes",
                      {{"DomainSigningSelector", "sel1"}, {"DomainSigningPrivateKey", c.key}}}});
    ASSERT_EQ(r.status, 200) << c.domain << ": " << r.body;
    EXPECT_EQ(r.json()["DkimAttributes"]["SigningAttributesOrigin"], "EXTERNAL");
    EXPECT_EQ(r.json()["DkimAttributes"]["Tokens"], json({"sel1"}));
    EXPECT_FALSE(r.json()["DkimAttributes"].contains("NextSigningKeyLength"));
    const dkim::DkimKey& key = c.length == "ED25519" ? *ed : *rsa;
    EXPECT_EQ(r.json()["DkimDnsRecords"][0]["Value"], key.dns_txt_value());
    EXPECT_EQ(r.json()["DkimDnsRecords"][0]["Name"], "sel1._domainkey." + c.domain);
    Result<store::Identity> stored = server.store().get_identity(c.domain);
    EXPECT_EQ(stored->dkim_key_length, c.length);
    EXPECT_EQ(stored->dkim_private_key_pem, key.private_pem());
  }
}

TEST(IdentityRoutes, EmailAddressIdentity) {
  TestServer server;
  Response r = server.post("/v2/email/identities", {{"EmailIdentity", "Someone@Example.NET"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(
      r.json(),
      json({{"IdentityType", "EMAIL_ADDRESS"},
            {"VerifiedForSendingStatus", true},
            {"DkimAttributes",
             {{"SigningEnabled", false}, {"Status", "NOT_STARTED"}, {"Tokens", json::array()}}},
            {"DkimDnsRecords", json::array()}}));
  EXPECT_EQ(server.store().get_identity("someone@example.net")->name, "Someone@example.net");
  r = server.get("/v2/email/identities/Someone%40example.net");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["IdentityType"], "EMAIL_ADDRESS");
}

TEST(IdentityRoutes, ListAndDelete) {
  TestServer server;
  for (const char* name : {"a.example", "b@a.example", "c.example"}) {
    ASSERT_EQ(server
                  .post("/v2/email/identities",
                        {{"EmailIdentity", name},
                         {"DkimSigningAttributes", {{"NextSigningKeyLength", "RSA_1024_BIT"}}}})
                  .status,
              std::string(name).find('@') == std::string::npos ? 200 : 400);
  }
  ASSERT_EQ(server.post("/v2/email/identities", {{"EmailIdentity", "b@a.example"}}).status, 200);
  Response r = server.get("/v2/email/identities?PageSize=2");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.json()["NextToken"].is_string());
  EXPECT_EQ(r.json()["EmailIdentities"], json({{{"IdentityType", "DOMAIN"},
                                                {"IdentityName", "a.example"},
                                                {"SendingEnabled", true},
                                                {"VerificationStatus", "SUCCESS"}},
                                               {{"IdentityType", "EMAIL_ADDRESS"},
                                                {"IdentityName", "b@a.example"},
                                                {"SendingEnabled", true},
                                                {"VerificationStatus", "SUCCESS"}}}));
  ASSERT_EQ(server.del("/v2/email/identities/a.example").status, 200);
  r = server.del("/v2/email/identities/a.example");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.message(), "Email identity a.example does not exist.");
  EXPECT_EQ(server.get("/v2/email/identities/a.example").status, 404);
}

// Newer SES v2 models (the JS SDK since 2026) list with POST and a Filter.
TEST(IdentityRoutes, ListWithPostAndFilter) {
  TestServer server;
  for (const char* name : {"a@one.example", "one.example", "two.example", "b@two.example"}) {
    json request = {{"EmailIdentity", name}};
    if (std::string(name).find('@') == std::string::npos) {
      request["DkimSigningAttributes"] = {{"NextSigningKeyLength", "RSA_1024_BIT"}};
    }
    ASSERT_EQ(server.post("/v2/email/identities", request).status, 200);
  }
  auto names = [](const Response& r) {
    std::vector<std::string> out;
    json j = r.json();
    for (const auto& i : j["EmailIdentities"]) out.push_back(i["IdentityName"]);
    return out;
  };
  Response r = server.post("/v2/email/list-identities", json::object());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(names(r).size(), 4u);
  r = server.post("/v2/email/list-identities", {{"Filter", {{"IDENTITY_TYPE", "DOMAIN"}}}});
  EXPECT_EQ(names(r), (std::vector<std::string>{"one.example", "two.example"}));
  r = server.post("/v2/email/list-identities",
                  {{"Filter", {{"IDENTITY_NAME_CONTAINS", "two"}}}, {"PageSize", 1}});
  std::vector<std::string> seen = names(r);
  while (r.json().contains("NextToken")) {
    r = server.post("/v2/email/list-identities", {{"Filter", {{"IDENTITY_NAME_CONTAINS", "two"}}},
                                                  {"PageSize", 1},
                                                  {"NextToken", r.json()["NextToken"]}});
    ASSERT_EQ(r.status, 200) << r.body;
    for (const auto& n : names(r)) seen.push_back(n);
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"b@two.example", "two.example"}));
  r = server.post("/v2/email/list-identities", {{"Filter", {{"VERIFICATION_STATUS", "PENDING"}}}});
  EXPECT_EQ(r.json(), json({{"EmailIdentities", json::array()}}));
  r = server.post("/v2/email/list-identities", {{"Filter", {{"NAME", "x"}}}});
  EXPECT_EQ(r.message(), "Unknown field Filter.NAME.");
}

TEST(IdentityRoutes, Errors) {
  TestServer server;
  struct Case {
    json request;
    int status;
    std::string type, message;
  };
  auto rsa = dkim::DkimKey::generate(dkim::Algorithm::kRsaSha256, 3072);
  std::vector<Case> cases = {
      {json::object(), 400, "BadRequestException", "Missing required field EmailIdentity."},
      {{{"EmailIdentity", "localhost"}},
       400,
       "BadRequestException",
       "EmailIdentity 'localhost' is not a domain or an email address: a sending domain needs at "
       "least two labels."},
      {{{"EmailIdentity", "bad domain.example"}}, 400, "BadRequestException", ""},
      {{{"EmailIdentity", "a@example.com"},
        {"DkimSigningAttributes", {{"NextSigningKeyLength", "RSA_2048_BIT"}}}},
       400,
       "BadRequestException",
       "DkimSigningAttributes applies to domain identities only; a@example.com is an email "
       "address."},
      {{{"EmailIdentity", "x.example"},
        {"DkimSigningAttributes", {{"DomainSigningSelector", "s"}}}},
       400,
       "BadRequestException",
       "Missing required field DkimSigningAttributes.DomainSigningPrivateKey (bring-your-own DKIM "
       "needs both)."},
      {{{"EmailIdentity", "x.example"},
        {"DkimSigningAttributes",
         {{"DomainSigningSelector", "s"}, {"DomainSigningPrivateKey", "bm90IGEga2V5"}}}},
       400,
       "BadRequestException",
       "DkimSigningAttributes.DomainSigningPrivateKey is not a usable key: not an RSA or Ed25519 "
       "private key in PKCS#8 or PKCS#1 DER."},
      {{{"EmailIdentity", "x.example"},
        {"DkimSigningAttributes",
         {{"DomainSigningSelector", "bad_selector"}, {"DomainSigningPrivateKey", "eA=="}}}},
       400,
       "BadRequestException",
       "DkimSigningAttributes.DomainSigningSelector must be letters, digits and inner hyphens (a "
       "DNS label); got 'bad_selector'."},
      {{{"EmailIdentity", "x.example"},
        {"DkimSigningAttributes",
         {{"DomainSigningSelector", "s"}, {"DomainSigningPrivateKey", rsa->private_pem()}}}},
       400,
       "BadRequestException",
       "DkimSigningAttributes.DomainSigningPrivateKey is an RSA key of 3072 bits; use 1024 or 2048 "
       "(or Ed25519)."},
      {{{"EmailIdentity", "x.example"},
        {"DkimSigningAttributes", {{"DomainSigningAttributesOrigin", "AWS_SES_EU_WEST_1"}}}},
       400,
       "BadRequestException",
       "DkimSigningAttributes.DomainSigningAttributesOrigin must be AWS_SES or EXTERNAL here; got "
       "'AWS_SES_EU_WEST_1'."},
      {{{"EmailIdentity", "x.example"}, {"Tags", {{{"Key", "a"}, {"Value", "b"}}}}},
       400,
       "BadRequestException",
       "Tags: tags on identities are not supported by this service."},
      {{{"EmailIdentity", "x.example"}, {"ConfigurationSetName", "nope"}},
       404,
       "NotFoundException",
       "Configuration set nope does not exist."},
  };
  for (const Case& c : cases) {
    Response r = server.post("/v2/email/identities", c.request);
    EXPECT_EQ(r.status, c.status) << c.request.dump();
    EXPECT_EQ(r.error_type(), c.type);
    if (!c.message.empty()) {
      EXPECT_EQ(r.message(), c.message);
    }
  }
  EXPECT_EQ(server.get("/v2/email/identities/missing.example").message(),
            "Email identity missing.example does not exist.");
}

}  // namespace
}  // namespace magnetic::api::testing
