// SendBulkEmail through the HTTP server.
#include <gtest/gtest.h>

#include "test_server.h"

namespace magnetic::api::testing {
namespace {

using nlohmann::json;
using service::Refusal;
using TagList = std::vector<std::pair<std::string, std::string>>;

json entry(const std::string& to, const std::string& data = "") {
  json e = {{"Destination", {{"ToAddresses", {to}}}}};
  if (!data.empty()) {
    e["ReplacementEmailContent"] = {{"ReplacementTemplate", {{"ReplacementTemplateData", data}}}};
  }
  return e;
}

json bulk(json entries) {
  return {{"FromEmailAddress", "news@example.com"},
          {"DefaultContent",
           {{"Template",
             {{"TemplateName", "news"},
              {"TemplateData", R"({"name":"friend","city":"Paris"})"},
              {"Headers",
               {{{"Name", "X-List"}, {"Value", "default"}},
                {{"Name", "X-Keep"}, {"Value", "kept"}}}}}}}},
          {"DefaultEmailTags",
           {{{"Name", "campaign"}, {"Value", "march"}}, {{"Name", "kind"}, {"Value", "news"}}}},
          {"BulkEmailEntries", std::move(entries)}};
}

void add_template(TestServer& server) {
  store::EmailTemplate t{"news", "Hello {{name}}", "{{name}} in {{city}}", "", "", ""};
  ASSERT_TRUE(server.store().create_template(t).is_ok());
}

TEST(SendBulkEmail, MergesDataHeadersAndTagsPerEntry) {
  TestServer server;
  add_template(server);
  json entries = {entry("a@example.net"), entry("b@example.net", R"({"name":"Bob"})")};
  entries[1]["ReplacementHeaders"] = {{{"Name", "x-list"}, {"Value", "vip"}}};
  entries[1]["ReplacementTags"] = {{{"Name", "kind"}, {"Value", "vip"}}};
  Response r = server.post("/v2/email/outbound-bulk-emails", bulk(entries));
  ASSERT_EQ(r.status, 200) << r.body;

  ASSERT_EQ(server.submitter.calls, 1);  // one submission for the whole request
  ASSERT_EQ(server.submitter.received.size(), 2u);
  const auto& a = server.submitter.received[0];
  const auto& b = server.submitter.received[1];
  EXPECT_EQ(r.json(), json({{"BulkEmailEntryResults",
                             {{{"Status", "SUCCESS"}, {"MessageId", a.message_id}},
                              {{"Status", "SUCCESS"}, {"MessageId", b.message_id}}}}}));
  EXPECT_NE(a.message_id, b.message_id);

  EXPECT_EQ(a.recipients, std::vector<std::string>{"a@example.net"});
  EXPECT_EQ(a.tags, (TagList{{"campaign", "march"}, {"kind", "news"}}));
  EXPECT_EQ(a.data,
            "Date: Sat, 14 Mar 2026 15:09:26 +0000\r\n"
            "From: news@example.com\r\n"
            "To: a@example.net\r\n"
            "Subject: Hello friend\r\n"
            "Message-ID: <" +
                a.message_id +
                "@example.com>\r\n"
                "MIME-Version: 1.0\r\n"
                "X-List: default\r\n"
                "X-Keep: kept\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 7bit\r\n"
                "\r\n"
                "friend in Paris\r\n");

  // Replacement data over the default (city kept), replacement headers and tags by name.
  EXPECT_EQ(b.tags, (TagList{{"campaign", "march"}, {"kind", "vip"}}));
  EXPECT_EQ(b.data,
            "Date: Sat, 14 Mar 2026 15:09:26 +0000\r\n"
            "From: news@example.com\r\n"
            "To: b@example.net\r\n"
            "Subject: Hello Bob\r\n"
            "Message-ID: <" +
                b.message_id +
                "@example.com>\r\n"
                "MIME-Version: 1.0\r\n"
                "X-Keep: kept\r\n"
                "x-list: vip\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 7bit\r\n"
                "\r\n"
                "Bob in Paris\r\n");
}

TEST(SendBulkEmail, FiftyOneEntriesAreABadRequest) {
  TestServer server;
  add_template(server);
  json entries = json::array();
  for (int i = 0; i < 51; ++i) entries.push_back(entry("r" + std::to_string(i) + "@example.net"));
  Response r = server.post("/v2/email/outbound-bulk-emails", bulk(entries));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error_type(), "BadRequestException");
  EXPECT_EQ(r.message(), "BulkEmailEntries must have at most 50 items; got 51.");
  entries.erase(entries.begin());
  r = server.post("/v2/email/outbound-bulk-emails", bulk(entries));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(server.submitter.received.size(), 50u);
}

TEST(SendBulkEmail, StructuralErrorsRefuseTheWholeRequest) {
  TestServer server;
  add_template(server);
  Response r = server.post("/v2/email/outbound-bulk-emails", bulk(json::array()));
  EXPECT_EQ(r.message(), "BulkEmailEntries must have at least 1 item.");
  r = server.post("/v2/email/outbound-bulk-emails",
                  bulk({entry("a@example.net"), entry("not-an-address")}));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.message(),
            "BulkEmailEntries[1].Destination.ToAddresses[0] is not a valid email address "
            "('not-an-address'): address has no @ and domain");
  r = server.post("/v2/email/outbound-bulk-emails",
                  bulk({entry("a@example.net"), entry("b@example.net", "not json")}));
  EXPECT_EQ(r.message(),
            "BulkEmailEntries[1].ReplacementEmailContent.ReplacementTemplate."
            "ReplacementTemplateData must be a JSON object in a string, e.g. "
            "\"{\\\"name\\\":\\\"Alice\\\"}\".");
  json no_from = bulk({entry("a@example.net")});
  no_from.erase("FromEmailAddress");
  r = server.post("/v2/email/outbound-bulk-emails", no_from);
  EXPECT_EQ(r.message(), "Missing required field FromEmailAddress.");
  json raw = bulk({entry("a@example.net")});
  raw["DefaultContent"] = {{"Raw", {{"Data", "eA=="}}}};
  r = server.post("/v2/email/outbound-bulk-emails", raw);
  EXPECT_EQ(r.message(), "Missing required field DefaultContent.Template.");
  EXPECT_TRUE(server.submitter.received.empty());
}

TEST(SendBulkEmail, MissingTemplateMarksEveryEntry) {
  TestServer server;
  Response r = server.post("/v2/email/outbound-bulk-emails",
                           bulk({entry("a@example.net"), entry("b@example.net")}));
  ASSERT_EQ(r.status, 200) << r.body;
  json expected = {{"Status", "TEMPLATE_NOT_FOUND"}, {"Error", "Template news does not exist."}};
  EXPECT_EQ(r.json(), json({{"BulkEmailEntryResults", {expected, expected}}}));
  EXPECT_TRUE(server.submitter.received.empty());
}

TEST(SendBulkEmail, RenderFailureIsPerEntry) {
  TestServer server;
  store::EmailTemplate t{"news", "Hello {{name}}", "{{extra}}", "", "", ""};
  ASSERT_TRUE(server.store().create_template(t).is_ok());
  Response r =
      server.post("/v2/email/outbound-bulk-emails",
                  bulk({entry("a@example.net"), entry("b@example.net", R"({"extra":"here"})")}));
  ASSERT_EQ(r.status, 200) << r.body;
  json results = r.json()["BulkEmailEntryResults"];
  EXPECT_EQ(results[0], json({{"Status", "INVALID_PARAMETER"},
                              {"Error",
                               "BulkEmailEntries[0]: the data does not render the template: "
                               "news.Text: line 1, column 3: \"extra\" is not defined (strict "
                               "mode)"}}));
  EXPECT_EQ(results[1]["Status"], "SUCCESS");
  EXPECT_EQ(server.submitter.received.size(), 1u);
}

TEST(SendBulkEmail, RefusalsBecomeEntryStatuses) {
  struct Case {
    Refusal refusal;
    std::string status;
  };
  std::vector<Case> cases = {
      {Refusal::kMessageRejected, "MESSAGE_REJECTED"},
      {Refusal::kFromDomainNotVerified, "MAIL_FROM_DOMAIN_NOT_VERIFIED"},
      {Refusal::kConfigurationSetNotFound, "CONFIGURATION_SET_NOT_FOUND"},
      {Refusal::kConfigurationSetPaused, "CONFIGURATION_SET_SENDING_PAUSED"},
      {Refusal::kAccountPaused, "ACCOUNT_SENDING_PAUSED"},
      {Refusal::kDailyQuotaExceeded, "ACCOUNT_DAILY_QUOTA_EXCEEDED"},
      {Refusal::kThrottled, "ACCOUNT_THROTTLED"},
      {Refusal::kInvalidParameter, "INVALID_PARAMETER"},
      {Refusal::kTemporary, "TRANSIENT_FAILURE"},
  };
  TestServer server;
  add_template(server);
  // The first entry is refused with each reason in turn, the second always accepted.
  for (const Case& c : cases) {
    server.submitter.judge = [&](const service::OutboundMessage& m) {
      if (m.recipients[0] == "a@example.net") return service::SubmitResult{c.refusal, "no", "", {}};
      return service::SubmitResult{};
    };
    Response r = server.post("/v2/email/outbound-bulk-emails",
                             bulk({entry("a@example.net"), entry("b@example.net")}));
    ASSERT_EQ(r.status, 200) << r.body;
    json results = r.json()["BulkEmailEntryResults"];
    EXPECT_EQ(results[0], json({{"Status", c.status}, {"Error", "no"}}));
    EXPECT_EQ(results[1]["Status"], "SUCCESS");
  }
}

}  // namespace
}  // namespace magnetic::api::testing
