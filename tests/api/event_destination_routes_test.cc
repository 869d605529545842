// Event destinations of configuration sets, and what resuming sending does to the reputation
// guard's state (the account's enforcement status, a set's LastFreshStart).
#include <gtest/gtest.h>

#include "test_server.h"

namespace magnetic::api::testing {
namespace {

using nlohmann::json;

const std::string kSets = "/v2/email/configuration-sets";
const std::string kHooks = kSets + "/cs/event-destinations";
const std::string kSupported =
    " This service supports two destinations: SnsDestination with an http:// or https:// URL as "
    "TopicArn (events are posted to it as a webhook), and KinesisFirehoseDestination with "
    "DeliveryStreamArn 'file:NAME' (events are appended as JSON lines to NAME.jsonl in the "
    "service's events folder).";

int64_t now_ms() { return duration_cast<milliseconds>(kNow.time_since_epoch()).count(); }

json webhook(const std::string& url, json types = {"BOUNCE"}) {
  return {
      {"Enabled", true}, {"MatchingEventTypes", types}, {"SnsDestination", {{"TopicArn", url}}}};
}

json create_body(const std::string& name, const json& definition) {
  return {{"EventDestinationName", name}, {"EventDestination", definition}};
}

class EventDestinationRoutes : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(server_.post(kSets, {{"ConfigurationSetName", "cs"}}).status, 200);
  }
  // The error of a create with this definition.
  Response create(const json& definition, const std::string& name = "d") {
    return server_.post(kHooks, create_body(name, definition));
  }
  void expect_bad(const Response& r, const std::string& message) {
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.error_type(), "BadRequestException");
    EXPECT_EQ(r.message(), message);
  }
  TestServer server_;
};

TEST_F(EventDestinationRoutes, CreateGetUpdateDeleteWebhookAndFile) {
  Response r =
      create(webhook("http://127.0.0.1:9/hook", {"BOUNCE", "COMPLAINT", "BOUNCE"}), "hook-1");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{}");
  r = create({{"MatchingEventTypes", {"SEND", "DELIVERY"}},
              {"KinesisFirehoseDestination",
               {{"IamRoleArn", "arn:aws:iam::123456789012:role/x"},
                {"DeliveryStreamArn", "file:all.v1"}}}},
             "archive");
  ASSERT_EQ(r.status, 200) << r.body;

  // Stored as the service needs it.
  auto stored = server_.store().list_event_destinations("cs");
  ASSERT_TRUE(stored.is_ok());
  ASSERT_EQ(stored->size(), 2u);
  EXPECT_EQ((*stored)[0].name, "archive");
  EXPECT_EQ((*stored)[0].kind, store::EventDestination::Kind::kFile);
  EXPECT_EQ((*stored)[0].target, "all.v1");
  EXPECT_FALSE((*stored)[0].enabled);
  EXPECT_EQ((*stored)[1].name, "hook-1");
  EXPECT_EQ((*stored)[1].kind, store::EventDestination::Kind::kWebhook);
  EXPECT_EQ((*stored)[1].target, "http://127.0.0.1:9/hook");
  EXPECT_EQ((*stored)[1].matching_event_types, (std::vector<std::string>{"BOUNCE", "COMPLAINT"}));

  // Answered in SES's shape, ordered by name.
  r = server_.get(kHooks);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json(), json::parse(R"({"EventDestinations": [
    {"Name": "archive", "Enabled": false, "MatchingEventTypes": ["SEND", "DELIVERY"],
     "KinesisFirehoseDestination": {"IamRoleArn": "arn:aws:iam::123456789012:role/x",
                                    "DeliveryStreamArn": "file:all.v1"}},
    {"Name": "hook-1", "Enabled": true, "MatchingEventTypes": ["BOUNCE", "COMPLAINT"],
     "SnsDestination": {"TopicArn": "http://127.0.0.1:9/hook"}}
  ]})"));

  // Update replaces the definition, even its kind.
  r = server_.put(kHooks + "/hook-1",
                  {{"EventDestination",
                    {{"Enabled", false},
                     {"MatchingEventTypes", {"OPEN", "CLICK"}},
                     {"KinesisFirehoseDestination",
                      {{"IamRoleArn", "r"}, {"DeliveryStreamArn", "file:clicks"}}}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{}");
  r = server_.get(kHooks);
  EXPECT_EQ(r.json()["EventDestinations"][1], json::parse(R"(
    {"Name": "hook-1", "Enabled": false, "MatchingEventTypes": ["OPEN", "CLICK"],
     "KinesisFirehoseDestination": {"IamRoleArn": "r", "DeliveryStreamArn": "file:clicks"}})"));
  EXPECT_EQ((*server_.store().list_event_destinations("cs"))[1].target, "clicks");

  r = server_.del(kHooks + "/archive");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{}");
  r = server_.get(kHooks);
  ASSERT_EQ(r.json()["EventDestinations"].size(), 1u);
  EXPECT_EQ(r.json()["EventDestinations"][0]["Name"], "hook-1");
}

// Regression (same_file_twice): two destinations of one set writing one file would write every
// event twice; the second is refused, by create and by update. Another set may use the file.
TEST_F(EventDestinationRoutes, TwoDestinationsOfASetDoNotShareAFile) {
  auto file = [](const std::string& name) {
    return json{{"MatchingEventTypes", {"SEND"}},
                {"KinesisFirehoseDestination", {{"IamRoleArn", "r"}, {"DeliveryStreamArn", name}}}};
  };
  ASSERT_EQ(create(file("file:all"), "one").status, 200);
  const std::string why =
      "EventDestination.KinesisFirehoseDestination.DeliveryStreamArn 'file:all' is already "
      "written by event destination one of configuration set cs; every event would be written "
      "twice.";
  expect_bad(create(file("file:all"), "two"), why);
  ASSERT_EQ(create(file("file:other"), "two").status, 200);
  expect_bad(server_.put(kHooks + "/two", {{"EventDestination", file("file:all")}}), why);
  // A destination may keep its own file.
  EXPECT_EQ(server_.put(kHooks + "/one", {{"EventDestination", file("file:all")}}).status, 200);
  ASSERT_EQ(server_.post(kSets, {{"ConfigurationSetName", "cs2"}}).status, 200);
  EXPECT_EQ(server_
                .post("/v2/email/configuration-sets/cs2/event-destinations",
                      create_body("one", file("file:all")))
                .status,
            200);
}

TEST_F(EventDestinationRoutes, EmptySetHasAnEmptyList) {
  Response r = server_.get(kHooks);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"EventDestinations":[]})");
}

TEST_F(EventDestinationRoutes, SecondDestinationOfTheSameNameAlreadyExists) {
  ASSERT_EQ(create(webhook("https://hooks.example.com/a")).status, 200);
  Response r = create(webhook("https://hooks.example.com/b"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error_type(), "AlreadyExistsException");
  EXPECT_EQ(r.message(), "Event destination d already exists in configuration set cs.");
  EXPECT_EQ(server_.get(kHooks).json()["EventDestinations"][0]["SnsDestination"]["TopicArn"],
            "https://hooks.example.com/a");
}

TEST_F(EventDestinationRoutes, UnknownSetOrDestinationIsNotFound) {
  const std::string missing = kSets + "/nope/event-destinations";
  for (Response r : {server_.post(missing, create_body("d", webhook("http://127.0.0.1:9/h"))),
                     server_.get(missing),
                     server_.put(missing + "/d", {{"EventDestination", webhook("http://a.test/")}}),
                     server_.del(missing + "/d")}) {
    EXPECT_EQ(r.status, 404) << r.body;
    EXPECT_EQ(r.error_type(), "NotFoundException");
    EXPECT_EQ(r.message(), "Configuration set nope does not exist.");
  }
  for (Response r : {server_.put(kHooks + "/d", {{"EventDestination", webhook("http://a.test/")}}),
                     server_.del(kHooks + "/d")}) {
    EXPECT_EQ(r.status, 404) << r.body;
    EXPECT_EQ(r.error_type(), "NotFoundException");
    EXPECT_EQ(r.message(), "Event destination d does not exist in configuration set cs.");
  }
}

TEST_F(EventDestinationRoutes, DeletingTheSetDeletesItsDestinations) {
  ASSERT_EQ(create(webhook("https://hooks.example.com/a")).status, 200);
  ASSERT_EQ(server_.del(kSets + "/cs").status, 200);
  ASSERT_EQ(server_.post(kSets, {{"ConfigurationSetName", "cs"}}).status, 200);
  EXPECT_EQ(server_.get(kHooks).body, R"({"EventDestinations":[]})");
  EXPECT_TRUE(server_.store().list_event_destinations_all()->empty());
}

TEST_F(EventDestinationRoutes, AtMostTenPerSet) {
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(create(webhook("https://hooks.example.com/"), "d" + std::to_string(i)).status, 200);
  }
  Response r = create(webhook("https://hooks.example.com/"), "d10");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error_type(), "LimitExceededException");
  EXPECT_EQ(r.message(), "Configuration set cs has 10 event destinations, the most it may have.");
}

TEST_F(EventDestinationRoutes, UnsupportedDestinationsAreRefusedSayingWhatIsSupported) {
  expect_bad(create({{"MatchingEventTypes", {"BOUNCE"}},
                     {"SnsDestination", {{"TopicArn", "arn:aws:sns:us-east-1:123456789012:t"}}}}),
             "EventDestination.SnsDestination.TopicArn must be an http:// or https:// URL; got "
             "'arn:aws:sns:us-east-1:123456789012:t'." +
                 kSupported);
  expect_bad(
      create({{"MatchingEventTypes", {"BOUNCE"}},
              {"CloudWatchDestination", {{"DimensionConfigurations", json::array()}}}}),
      "EventDestination.CloudWatchDestination is not supported by this service." + kSupported);
  expect_bad(
      create({{"MatchingEventTypes", {"BOUNCE"}},
              {"EventBridgeDestination", {{"EventBusArn", "arn:aws:events:x"}}}}),
      "EventDestination.EventBridgeDestination is not supported by this service." + kSupported);
  expect_bad(create({{"MatchingEventTypes", {"BOUNCE"}},
                     {"PinpointDestination", {{"ApplicationArn", "arn:aws:mobiletargeting:x"}}}}),
             "EventDestination.PinpointDestination is not supported by this service." + kSupported);
  expect_bad(create({{"MatchingEventTypes", {"BOUNCE"}},
                     {"KinesisFirehoseDestination",
                      {{"IamRoleArn", "r"},
                       {"DeliveryStreamArn", "arn:aws:firehose:us-east-1:1:deliverystream/s"}}}}),
             "EventDestination.KinesisFirehoseDestination.DeliveryStreamArn must be 'file:NAME', "
             "NAME 1 to 64 ASCII letters, digits, '.', '_' and '-', not starting with '.'; got "
             "'arn:aws:firehose:us-east-1:1:deliverystream/s'." +
                 kSupported);
  EXPECT_TRUE(server_.store().list_event_destinations("cs")->empty());
}

TEST_F(EventDestinationRoutes, ExactlyOneDestination) {
  const std::string all =
      "KinesisFirehoseDestination, CloudWatchDestination, SnsDestination, "
      "EventBridgeDestination, PinpointDestination";
  expect_bad(create({{"MatchingEventTypes", {"BOUNCE"}}}),
             "EventDestination must have exactly one of " + all + "; got none." + kSupported);
  expect_bad(create({{"MatchingEventTypes", {"BOUNCE"}},
                     {"SnsDestination", {{"TopicArn", "http://a.test/"}}},
                     {"KinesisFirehoseDestination",
                      {{"IamRoleArn", "r"}, {"DeliveryStreamArn", "file:x"}}}}),
             "EventDestination must have exactly one of " + all +
                 "; got KinesisFirehoseDestination and SnsDestination." + kSupported);
}

TEST_F(EventDestinationRoutes, MatchingEventTypesAreRequiredAndFromTheEnum) {
  expect_bad(create({{"SnsDestination", {{"TopicArn", "http://a.test/"}}}}),
             "Missing required field EventDestination.MatchingEventTypes.");
  expect_bad(create(webhook("http://a.test/", json::array())),
             "EventDestination.MatchingEventTypes must have at least 1 item.");
  expect_bad(create(webhook("http://a.test/", {"SEND", "BOUNCES"})),
             "EventDestination.MatchingEventTypes[1] must be one of SEND, REJECT, BOUNCE, "
             "COMPLAINT, DELIVERY, OPEN, CLICK, RENDERING_FAILURE, DELIVERY_DELAY, SUBSCRIPTION, "
             "SENDING_PAUSED; "
             "got 'BOUNCES'.");
  expect_bad(create(webhook("http://a.test/", {7})),
             "EventDestination.MatchingEventTypes[0] must be a string, not a number.");
  // Every one of them is accepted.
  json every = {"SEND",           "REJECT",       "BOUNCE",        "COMPLAINT",
                "DELIVERY",       "OPEN",         "CLICK",         "RENDERING_FAILURE",
                "DELIVERY_DELAY", "SUBSCRIPTION", "SENDING_PAUSED"};
  ASSERT_EQ(create(webhook("http://a.test/", every)).status, 200);
  EXPECT_EQ(server_.get(kHooks).json()["EventDestinations"][0]["MatchingEventTypes"], every);
}

TEST_F(EventDestinationRoutes, NamesAndShapesAreChecked) {
  expect_bad(create(webhook("http://a.test/"), "has space"),
             "EventDestinationName must be 1 to 64 ASCII letters, digits, '_' and '-'; got 'has "
             "space'.");
  expect_bad(create(webhook("http://a.test/"), std::string(65, 'a')),
             "EventDestinationName must be 1 to 64 ASCII letters, digits, '_' and '-'; got '" +
                 std::string(65, 'a') + "'.");
  ASSERT_EQ(create(webhook("http://a.test/"), std::string(64, 'a')).status, 200);
  expect_bad(server_.post(kHooks, {{"EventDestination", webhook("http://a.test/")}}),
             "Missing required field EventDestinationName.");
  expect_bad(server_.post(kHooks, {{"EventDestinationName", "x"}}),
             "Missing required field EventDestination.");
  expect_bad(server_.post(kHooks, {{"EventDestinationName", "x"},
                                   {"EventDestination", webhook("http://a.test/")},
                                   {"Extra", 1}}),
             "Unknown field Extra.");
  json extra = webhook("http://a.test/");
  extra["Colour"] = "red";
  expect_bad(create(extra, "x"), "Unknown field EventDestination.Colour.");
  extra = webhook("http://a.test/");
  extra["SnsDestination"]["Region"] = "here";
  expect_bad(create(extra, "x"), "Unknown field EventDestination.SnsDestination.Region.");
  expect_bad(create({{"MatchingEventTypes", {"BOUNCE"}},
                     {"KinesisFirehoseDestination", {{"DeliveryStreamArn", "file:x"}}}},
                    "x"),
             "Missing required field EventDestination.KinesisFirehoseDestination.IamRoleArn.");
  expect_bad(create({{"MatchingEventTypes", {"BOUNCE"}},
                     {"KinesisFirehoseDestination",
                      {{"IamRoleArn", ""}, {"DeliveryStreamArn", "file:x"}}}},
                    "x"),
             "EventDestination.KinesisFirehoseDestination.IamRoleArn must not be empty.");
  expect_bad(create({{"Enabled", "yes"}, {"MatchingEventTypes", {"BOUNCE"}}}, "x"),
             "EventDestination.Enabled must be a boolean, not a string.");
  expect_bad(server_.put(kHooks + "/bad%20name", {{"EventDestination", webhook("http://a.test/")}}),
             "EventDestinationName must be 1 to 64 ASCII letters, digits, '_' and '-'; got 'bad "
             "name'.");
  expect_bad(server_.put(kHooks + "/x", json::object()),
             "Missing required field EventDestination.");
}

TEST_F(EventDestinationRoutes, FileNames) {
  auto file = [](const std::string& stream) {
    return json{
        {"MatchingEventTypes", {"BOUNCE"}},
        {"KinesisFirehoseDestination", {{"IamRoleArn", "r"}, {"DeliveryStreamArn", stream}}}};
  };
  const std::string why =
      " must be 'file:NAME', NAME 1 to 64 ASCII letters, digits, '.', '_' and '-', not starting "
      "with '.'; got '";
  const std::string field = "EventDestination.KinesisFirehoseDestination.DeliveryStreamArn";
  for (const std::string& bad :
       std::vector<std::string>{"file:", "file:.hidden", "file:../up", "file:a/b", "file:a b",
                                "FILE:x", "file:" + std::string(65, 'n')}) {
    expect_bad(create(file(bad), "x"), field + why + bad + "'." + kSupported);
  }
  int i = 0;
  for (const std::string& good : std::vector<std::string>{"file:a", "file:A-b_c.d", "file:x.",
                                                          "file:" + std::string(64, 'n')}) {
    ASSERT_EQ(create(file(good), "f" + std::to_string(i++)).status, 200) << good;
  }
}

TEST_F(EventDestinationRoutes, WebhookUrls) {
  const std::string field = "EventDestination.SnsDestination.TopicArn";
  struct Bad {
    std::string url, why;
  };
  // The grammar is base/http_url's (tests/base/http_url_test.cc has every case); a few show
  // that its phrase reaches the caller.
  for (const Bad& b : std::vector<Bad>{
           {"ftp://a.test/", "it must start with http:// or https://"},
           {"http://user:pw@a.test/", "it must not hold a user name or password"},
           {"http://a.test:65536/", "its port must be a number from 1 to 65535"},
           {"http://a.test/p#frag", "it must not have a fragment ('#')"},
       }) {
    expect_bad(create(webhook(b.url), "x"),
               field + " is not a usable webhook URL: " + b.why + "; got '" + b.url + "'.");
  }
  expect_bad(create(webhook("http://a.test/" + std::string(2048, 'p')), "x"),
             field + " must be at most 2048 characters long.");
  expect_bad(create(webhook(""), "x"), field + " must not be empty.");

  int i = 0;
  for (const std::string good :
       {"http://127.0.0.1:9/hook", "HTTPS://Hooks.Example.com",
        "https://hooks.example.com/a/b?x=1&y=%2F", "http://[::1]:8080/events", "http://localhost",
        "https://a.test/p:q@r;s=t?u?v"}) {
    Response r = create(webhook(good), "w" + std::to_string(i++));
    ASSERT_EQ(r.status, 200) << good << ": " << r.body;
  }
}

// --- Resuming sending ----------------------------------------------------------------------

TEST(ReputationResume, GetAccountShowsTheEnforcementStatus) {
  TestServer server;
  store::Account a;
  a.sending_enabled = false;
  a.enforcement_status = "SHUTDOWN";
  a.sending_paused_reason = "bounce rate 11% over the last 2000 messages";
  ASSERT_TRUE(server.store().put_account(a).is_ok());
  json got = server.get("/v2/email/account").json();
  EXPECT_EQ(got["EnforcementStatus"], "SHUTDOWN");
  EXPECT_EQ(got["SendingEnabled"], false);
}

TEST(ReputationResume, EnablingAccountSendingEndsAPause) {
  TestServer server;
  store::Account a;
  a.sending_enabled = false;
  a.enforcement_status = "SHUTDOWN";
  a.sending_paused_reason = "complaint rate 0.6%";
  a.reputation_reset_ms = 5;
  ASSERT_TRUE(server.store().put_account(a).is_ok());

  // Pausing again by hand leaves the guard's verdict as it is.
  ASSERT_EQ(server.put("/v2/email/account/sending", {{"SendingEnabled", false}}).status, 200);
  EXPECT_EQ(server.store().account()->enforcement_status, "SHUTDOWN");
  EXPECT_EQ(server.store().account()->sending_paused_reason, "complaint rate 0.6%");
  EXPECT_EQ(server.store().account()->reputation_reset_ms, 5);

  ASSERT_EQ(server.put("/v2/email/account/sending", {{"SendingEnabled", true}}).status, 200);
  auto got = server.store().account();
  EXPECT_TRUE(got->sending_enabled);
  EXPECT_EQ(got->enforcement_status, "HEALTHY");
  EXPECT_EQ(got->sending_paused_reason, "");
  EXPECT_EQ(got->reputation_reset_ms, now_ms());
  EXPECT_EQ(server.get("/v2/email/account").json()["EnforcementStatus"], "HEALTHY");
}

TEST(ReputationResume, EnablingSetSendingIsAFreshStart) {
  TestServer server;
  ASSERT_EQ(server
                .post(kSets, {{"ConfigurationSetName", "cs"},
                              {"ReputationOptions", {{"ReputationMetricsEnabled", true}}},
                              {"SendingOptions", {{"SendingEnabled", false}}}})
                .status,
            200);
  // Disabling does not touch the reputation options.
  ASSERT_EQ(server.put(kSets + "/cs/sending", {{"SendingEnabled", false}}).status, 200);
  EXPECT_EQ(server.store().get_configuration_set("cs")->reputation_options,
            R"({"ReputationMetricsEnabled":true})");

  ASSERT_EQ(server.put(kSets + "/cs/sending", {{"SendingEnabled", true}}).status, 200);
  auto set = server.store().get_configuration_set("cs");
  EXPECT_EQ(set->sending_options, R"({"SendingEnabled":true})");
  EXPECT_EQ(set->reputation_options,
            R"({"LastFreshStart":1773500966.0,"ReputationMetricsEnabled":true})");
  EXPECT_EQ(server.get(kSets + "/cs").json()["ReputationOptions"],
            json::parse(R"({"LastFreshStart": 1773500966.0, "ReputationMetricsEnabled": true})"));

  // A set that never had reputation options gets just the fresh start.
  ASSERT_EQ(server.post(kSets, {{"ConfigurationSetName", "plain"}}).status, 200);
  ASSERT_EQ(server.put(kSets + "/plain/sending", {{"SendingEnabled", true}}).status, 200);
  EXPECT_EQ(server.store().get_configuration_set("plain")->reputation_options,
            R"({"LastFreshStart":1773500966.0})");
}

}  // namespace
}  // namespace magnetic::api::testing
