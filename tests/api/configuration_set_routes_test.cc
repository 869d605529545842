// Configuration sets and their option groups.
#include <gtest/gtest.h>

#include "test_server.h"

namespace magnetic::api::testing {
namespace {

using nlohmann::json;

TEST(ConfigurationSetRoutes, CreateWithEveryGroupAndGet) {
  TestServer server;
  json request = {
      {"ConfigurationSetName", "marketing"},
      {"DeliveryOptions",
       {{"TlsPolicy", "REQUIRE"}, {"SendingPoolName", "pool-a"}, {"MaxDeliverySeconds", 600}}},
      {"ReputationOptions", {{"ReputationMetricsEnabled", true}, {"LastFreshStart", 1700000000}}},
      {"SendingOptions", {{"SendingEnabled", false}}},
      {"SuppressionOptions", {{"SuppressedReasons", {"BOUNCE"}}}},
      {"TrackingOptions",
       {{"CustomRedirectDomain", "Click.Example.com"}, {"HttpsPolicy", "REQUIRE"}}},
      {"Tags", {{{"Key", "team"}, {"Value", "growth"}}}}};
  Response r = server.post("/v2/email/configuration-sets", request);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{}");

  Result<store::ConfigurationSet> stored = server.store().get_configuration_set("marketing");
  ASSERT_TRUE(stored.is_ok());
  EXPECT_EQ(stored->delivery_options,
            R"({"MaxDeliverySeconds":600,"SendingPoolName":"pool-a","TlsPolicy":"REQUIRE"})");
  EXPECT_EQ(stored->sending_options, R"({"SendingEnabled":false})");
  EXPECT_EQ(stored->tracking_options,
            R"({"CustomRedirectDomain":"click.example.com","HttpsPolicy":"REQUIRE"})");
  EXPECT_EQ(stored->tags, R"([{"Key":"team","Value":"growth"}])");

  r = server.get("/v2/email/configuration-sets/marketing");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json(), json::parse(R"({
    "ConfigurationSetName": "marketing",
    "DeliveryOptions": {"MaxDeliverySeconds": 600, "SendingPoolName": "pool-a",
                        "TlsPolicy": "REQUIRE"},
    "ReputationOptions": {"LastFreshStart": 1700000000.0, "ReputationMetricsEnabled": true},
    "SendingOptions": {"SendingEnabled": false},
    "SuppressionOptions": {"SuppressedReasons": ["BOUNCE"]},
    "TrackingOptions": {"CustomRedirectDomain": "click.example.com", "HttpsPolicy": "REQUIRE"},
    "Tags": [{"Key": "team", "Value": "growth"}]
  })"));
}

TEST(ConfigurationSetRoutes, DefaultsForAMinimalSet) {
  TestServer server;
  ASSERT_EQ(server.post("/v2/email/configuration-sets", {{"ConfigurationSetName", "plain"}}).status,
            200);
  Response r = server.get("/v2/email/configuration-sets/plain");
  EXPECT_EQ(r.json(), json::parse(R"({
    "ConfigurationSetName": "plain",
    "DeliveryOptions": {"TlsPolicy": "OPTIONAL"},
    "ReputationOptions": {"ReputationMetricsEnabled": false},
    "SendingOptions": {"SendingEnabled": true},
    "Tags": []
  })"));
}

TEST(ConfigurationSetRoutes, PutOptionGroups) {
  TestServer server;
  ASSERT_EQ(server.post("/v2/email/configuration-sets", {{"ConfigurationSetName", "cs"}}).status,
            200);
  const std::string base = "/v2/email/configuration-sets/cs";
  ASSERT_EQ(server.put(base + "/delivery-options", {{"TlsPolicy", "REQUIRE"}}).status, 200);
  ASSERT_EQ(server.put(base + "/sending", json::object()).status, 200);  // absent: false
  ASSERT_EQ(server.put(base + "/reputation-options", {{"ReputationMetricsEnabled", true}}).status,
            200);
  ASSERT_EQ(
      server.put(base + "/suppression-options", {{"SuppressedReasons", {"COMPLAINT"}}}).status,
      200);
  ASSERT_EQ(
      server.put(base + "/tracking-options", {{"CustomRedirectDomain", "t.example.com"}}).status,
      200);
  json got = server.get(base).json();
  EXPECT_EQ(got["DeliveryOptions"], json({{"TlsPolicy", "REQUIRE"}}));
  EXPECT_EQ(got["SendingOptions"], json({{"SendingEnabled", false}}));
  EXPECT_EQ(got["ReputationOptions"], json({{"ReputationMetricsEnabled", true}}));
  EXPECT_EQ(got["SuppressionOptions"], json({{"SuppressedReasons", {"COMPLAINT"}}}));
  EXPECT_EQ(got["TrackingOptions"], json({{"CustomRedirectDomain", "t.example.com"}}));

  // Tracking options without a domain are removed.
  ASSERT_EQ(server.put(base + "/tracking-options", json::object()).status, 200);
  EXPECT_FALSE(server.get(base).json().contains("TrackingOptions"));

  Response r =
      server.put("/v2/email/configuration-sets/missing/sending", {{"SendingEnabled", true}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.error_type(), "NotFoundException");
  EXPECT_EQ(r.message(), "Configuration set missing does not exist.");
  r = server.put(base + "/delivery-options", {{"TlsPolicy", "MAYBE"}});
  EXPECT_EQ(r.message(), "TlsPolicy must be one of REQUIRE, OPTIONAL; got 'MAYBE'.");
  r = server.put(base + "/delivery-options", {{"MaxDeliverySeconds", 10}});
  EXPECT_EQ(r.message(), "MaxDeliverySeconds must be between 300 and 50400; got 10.");
  r = server.put(base + "/suppression-options", {{"SuppressionScope", "TENANT"}});
  EXPECT_EQ(r.message(),
            "SuppressionScope TENANT is not supported by this service (it has no tenants).");
}

TEST(ConfigurationSetRoutes, ListAndDelete) {
  TestServer server;
  for (const char* n : {"a", "b", "c"}) {
    ASSERT_EQ(server.post("/v2/email/configuration-sets", {{"ConfigurationSetName", n}}).status,
              200);
  }
  Response r = server.get("/v2/email/configuration-sets?PageSize=2");
  EXPECT_EQ(r.json()["ConfigurationSets"], json({"a", "b"}));
  ASSERT_TRUE(r.json()["NextToken"].is_string());
  r = server.get("/v2/email/configuration-sets?NextToken=" +
                 TestServer::encode(r.json()["NextToken"]));
  EXPECT_EQ(r.json(), json({{"ConfigurationSets", {"c"}}}));
  ASSERT_EQ(server.del("/v2/email/configuration-sets/b").status, 200);
  EXPECT_EQ(server.del("/v2/email/configuration-sets/b").status, 404);
  EXPECT_EQ(server.get("/v2/email/configuration-sets").json(),
            json({{"ConfigurationSets", {"a", "c"}}}));
}

TEST(ConfigurationSetRoutes, ListWithPostAndFilter) {
  TestServer server;
  for (const char* n : {"news-eu", "news-us", "receipts"}) {
    ASSERT_EQ(server.post("/v2/email/configuration-sets", {{"ConfigurationSetName", n}}).status,
              200);
  }
  Response r = server.post("/v2/email/list-configuration-sets",
                           {{"Filter", {{"CONFIGURATION_SET_NAME_CONTAINS", "news"}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json(), json({{"ConfigurationSets", {"news-eu", "news-us"}}}));
  r = server.post("/v2/email/list-configuration-sets", {{"PageSize", 2}});
  EXPECT_EQ(r.json()["ConfigurationSets"], json({"news-eu", "news-us"}));
  r = server.post("/v2/email/list-configuration-sets", {{"NextToken", r.json()["NextToken"]}});
  EXPECT_EQ(r.json(), json({{"ConfigurationSets", {"receipts"}}}));
  r = server.post("/v2/email/list-configuration-sets", {{"PageSize", 1001}});
  EXPECT_EQ(r.message(), "PageSize must be between 0 and 1000; got 1001.");
}

TEST(ConfigurationSetRoutes, CreateErrors) {
  TestServer server;
  ASSERT_EQ(server.post("/v2/email/configuration-sets", {{"ConfigurationSetName", "x"}}).status,
            200);
  struct Case {
    json request;
    std::string type, message;
  };
  std::vector<Case> cases = {
      {{{"ConfigurationSetName", "x"}},
       "AlreadyExistsException",
       "Configuration set x already exists."},
      {json::object(), "BadRequestException", "Missing required field ConfigurationSetName."},
      {{{"ConfigurationSetName", "has space"}},
       "BadRequestException",
       "ConfigurationSetName must be 1 to 64 ASCII letters, digits, '_' and '-'; got 'has "
       "space'."},
      {{{"ConfigurationSetName", "y"}, {"TrackingOptions", {{"HttpsPolicy", "REQUIRE"}}}},
       "BadRequestException",
       "Missing required field TrackingOptions.CustomRedirectDomain."},
      {{{"ConfigurationSetName", "y"}, {"TrackingOptions", {{"CustomRedirectDomain", "a b"}}}},
       "BadRequestException",
       "TrackingOptions.CustomRedirectDomain is not a domain name; got 'a b'."},
      {{{"ConfigurationSetName", "y"}, {"VdmOptions", json::object()}},
       "BadRequestException",
       "VdmOptions is not supported by this service."},
      {{{"ConfigurationSetName", "y"}, {"SendingOptions", {{"Enabled", true}}}},
       "BadRequestException",
       "Unknown field SendingOptions.Enabled."},
      {{{"ConfigurationSetName", "y"}, {"Tags", {{{"Key", ""}, {"Value", "v"}}}}},
       "BadRequestException",
       "Tags[0].Key must not be empty."},
      {{{"ConfigurationSetName", "y"},
        {"SuppressionOptions", {{"ValidationOptions", json::object()}}}},
       "BadRequestException",
       "SuppressionOptions.ValidationOptions is not supported by this "
       "service."},
  };
  for (const Case& c : cases) {
    Response r = server.post("/v2/email/configuration-sets", c.request);
    EXPECT_EQ(r.status, 400) << c.request.dump();
    EXPECT_EQ(r.error_type(), c.type);
    EXPECT_EQ(r.message(), c.message);
  }
}

}  // namespace
}  // namespace magnetic::api::testing
