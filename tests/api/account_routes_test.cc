// GetAccount, the account's sending and suppression attributes, and the suppression list.
#include <gtest/gtest.h>

#include "test_server.h"

namespace magnetic::api::testing {
namespace {

using nlohmann::json;

double now_seconds() {
  return static_cast<double>(duration_cast<seconds>(kNow.time_since_epoch()).count());
}

TEST(AccountRoutes, GetAccountShape) {
  TestServer server;
  int64_t hour_ago = duration_cast<milliseconds>((kNow - 1h).time_since_epoch()).count();
  ASSERT_TRUE(server.store().record_sent(hour_ago, 42).is_ok());
  Response r = server.get("/v2/email/account");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json(), json::parse(R"({
    "DedicatedIpAutoWarmupEnabled": false,
    "EnforcementStatus": "HEALTHY",
    "ProductionAccessEnabled": true,
    "SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 1000.0, "SentLast24Hours": 42.0},
    "SendingEnabled": true,
    "SuppressionAttributes": {"SuppressedReasons": ["BOUNCE", "COMPLAINT"]}
  })"));
}

TEST(AccountRoutes, PutSendingAndSuppressionAttributes) {
  TestServer server;
  ASSERT_EQ(server.put("/v2/email/account/sending", {{"SendingEnabled", false}}).status, 200);
  EXPECT_FALSE(server.store().account()->sending_enabled);
  ASSERT_EQ(server.put("/v2/email/account/sending", {{"SendingEnabled", true}}).status, 200);
  EXPECT_TRUE(server.store().account()->sending_enabled);
  // As SES: no SendingEnabled means false.
  ASSERT_EQ(server.put("/v2/email/account/sending", json::object()).status, 200);
  EXPECT_FALSE(server.store().account()->sending_enabled);

  ASSERT_EQ(
      server
          .put("/v2/email/account/suppression", {{"SuppressedReasons", {"COMPLAINT", "COMPLAINT"}}})
          .status,
      200);
  EXPECT_EQ(server.store().account()->suppressed_reasons, std::vector<std::string>{"COMPLAINT"});
  EXPECT_EQ(server.get("/v2/email/account").json()["SuppressionAttributes"],
            json({{"SuppressedReasons", {"COMPLAINT"}}}));

  Response r = server.put("/v2/email/account/suppression", {{"SuppressedReasons", {"SPAM"}}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.message(), "SuppressedReasons[0] must be one of BOUNCE, COMPLAINT; got 'SPAM'.");
  r = server.put("/v2/email/account/suppression",
                 {{"ValidationAttributes", {{"ConditionThreshold", json::object()}}}});
  EXPECT_EQ(r.message(), "ValidationAttributes is not supported by this service.");
  r = server.put("/v2/email/account/sending", {{"SendingEnabled", "yes"}});
  EXPECT_EQ(r.message(), "SendingEnabled must be a boolean, not a string.");
}

TEST(SuppressionRoutes, PutGetListDelete) {
  TestServer server;
  Response r = server.put("/v2/email/suppression/addresses",
                          {{"EmailAddress", "Bounced@Example.net"}, {"Reason", "BOUNCE"}});
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(server
                .put("/v2/email/suppression/addresses",
                     {{"EmailAddress", "c@example.net"}, {"Reason", "COMPLAINT"}})
                .status,
            200);

  // Found without case; the path label is percent-decoded.
  r = server.get("/v2/email/suppression/addresses/bounced%40example.net");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json(), json({{"SuppressedDestination",
                             {{"EmailAddress", "Bounced@Example.net"},
                              {"Reason", "BOUNCE"},
                              {"LastUpdateTime", now_seconds()}}}}));

  r = server.get("/v2/email/suppression/addresses");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["SuppressedDestinationSummaries"].size(), 2u);
  r = server.get("/v2/email/suppression/addresses?Reason=COMPLAINT");
  EXPECT_EQ(r.json(), json({{"SuppressedDestinationSummaries",
                             {{{"EmailAddress", "c@example.net"},
                               {"Reason", "COMPLAINT"},
                               {"LastUpdateTime", now_seconds()}}}}}));
  r = server.get("/v2/email/suppression/addresses?Reason=COMPLAINT&Reason=BOUNCE&PageSize=1");
  EXPECT_EQ(r.json()["SuppressedDestinationSummaries"].size(), 1u);
  EXPECT_TRUE(r.json()["NextToken"].is_string());
  // Dates as botocore sends them (ISO 8601) and as epoch seconds.
  r = server.get("/v2/email/suppression/addresses?StartDate=2026-03-14T15%3A09%3A27Z");
  EXPECT_EQ(r.json()["SuppressedDestinationSummaries"].size(), 0u) << r.body;
  r = server.get("/v2/email/suppression/addresses?EndDate=2026-03-14T15%3A09%3A27.000Z");
  EXPECT_EQ(r.json()["SuppressedDestinationSummaries"].size(), 2u) << r.body;
  r = server.get("/v2/email/suppression/addresses?StartDate=1773500966");
  EXPECT_EQ(r.json()["SuppressedDestinationSummaries"].size(), 2u) << r.body;

  ASSERT_EQ(server.del("/v2/email/suppression/addresses/bounced%40example.net").status, 200);
  r = server.get("/v2/email/suppression/addresses/bounced%40example.net");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.error_type(), "NotFoundException");
  EXPECT_EQ(r.message(), "bounced@example.net is not on the suppression list.");
  EXPECT_EQ(server.del("/v2/email/suppression/addresses/bounced%40example.net").status, 404);
}

TEST(SuppressionRoutes, Errors) {
  TestServer server;
  Response r = server.put("/v2/email/suppression/addresses",
                          {{"EmailAddress", "nobody"}, {"Reason", "BOUNCE"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.message(),
            "EmailAddress is not a valid email address ('nobody'): address has no @ and domain");
  r = server.put("/v2/email/suppression/addresses",
                 {{"EmailAddress", "a@example.net"}, {"Reason", "bounce"}});
  EXPECT_EQ(r.message(), "Reason must be one of BOUNCE, COMPLAINT; got 'bounce'.");
  r = server.put("/v2/email/suppression/addresses", {{"Reason", "BOUNCE"}});
  EXPECT_EQ(r.message(), "Missing required field EmailAddress.");
  r = server.get("/v2/email/suppression/addresses?Reason=SPAM");
  EXPECT_EQ(r.message(), "The query parameter Reason must be BOUNCE or COMPLAINT; got 'SPAM'.");
  r = server.get("/v2/email/suppression/addresses?StartDate=yesterday");
  EXPECT_EQ(r.message(),
            "The query parameter StartDate must be an ISO 8601 date-time "
            "(2026-01-31T12:00:00Z) or epoch seconds; got 'yesterday'.");
  r = server.get(
      "/v2/email/suppression/"
      "addresses?StartDate=2026-03-02T00:00:00Z&EndDate=2026-03-01T00:00:00Z");
  EXPECT_EQ(r.message(), "StartDate must not be after EndDate.");
  r = server.get("/v2/email/suppression/addresses?NextToken=bogus");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error_type(), "InvalidNextTokenException");
  r = server.get("/v2/email/suppression/addresses?PageSize=-1");
  EXPECT_EQ(r.message(),
            "The query parameter PageSize must be an integer between 0 and 1000; got '-1'.");
  EXPECT_EQ(server.get("/v2/email/suppression/addresses?PageSize=0").status, 200);
  r = server.get("/v2/email/suppression/addresses?TenantName=t");
  EXPECT_EQ(r.message(), "The query parameter TenantName is not supported by this service.");
  r = server.get("/v2/email/suppression/addresses?PageSize=1&PageSize=2");
  EXPECT_EQ(r.message(), "The query parameter PageSize is given more than once.");
}

}  // namespace
}  // namespace magnetic::api::testing
