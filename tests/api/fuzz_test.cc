// Mutated requests straight into SesApi (no sockets): whatever a client sends, the answer is a
// 200 or an SES-shaped client error, never a crash, a 500 or a response that is not JSON.
// Deterministic: a fixed seed and a fixed number of rounds.
#include <gtest/gtest.h>

#include <random>

#include "api/json_reader.h"
#include "api/ses_api.h"
#include "test_server.h"

namespace magnetic::api::testing {
namespace {

using nlohmann::json;

struct Seed {
  std::string method, path;
  json body;
};

std::vector<Seed> seeds() {
  json simple = {
      {"FromEmailAddress", "Sender <s@example.com>"},
      {"Destination", {{"ToAddresses", {"a@example.net"}}, {"CcAddresses", {"c@example.net"}}}},
      {"ReplyToAddresses", {"r@example.com"}},
      {"EmailTags", {{{"Name", "n"}, {"Value", "v"}}}},
      {"Content",
       {{"Simple",
         {{"Subject", {{"Data", "Hi"}}},
          {"Body", {{"Text", {{"Data", "t"}}}, {"Html", {{"Data", "<b>h</b>"}}}}},
          {"Headers", {{{"Name", "X-A"}, {"Value", "b"}}}},
          {"Attachments",
           {{{"FileName", "f.txt"},
             {"RawContent", "aGVsbG8="},
             {"ContentType", "text/plain"}}}}}}}}};
  json templated = {
      {"FromEmailAddress", "s@example.com"},
      {"Destination", {{"ToAddresses", {"a@example.net"}}}},
      {"Content",
       {{"Template",
         {{"TemplateName", "seed"}, {"TemplateData", R"({"name":"x","items":[1,2]})"}}}}}};
  json raw = {{"Content",
               {{"Raw",
                 {{"Data", base64_encode("From: s@example.com\r\nTo: a@example.net\r\n"
                                         "Subject: x\r\n\r\nbody\r\n")}}}}}};
  json bulk = {{"FromEmailAddress", "s@example.com"},
               {"DefaultContent",
                {{"Template", {{"TemplateName", "seed"}, {"TemplateData", R"({"name":"d"})"}}}}},
               {"BulkEmailEntries",
                {{{"Destination", {{"ToAddresses", {"a@example.net"}}}},
                  {"ReplacementEmailContent",
                   {{"ReplacementTemplate", {{"ReplacementTemplateData", R"({"name":"e"})"}}}}}}}}};
  json set = {{"ConfigurationSetName", "cs"},
              {"DeliveryOptions", {{"TlsPolicy", "REQUIRE"}, {"MaxDeliverySeconds", 300}}},
              {"TrackingOptions", {{"CustomRedirectDomain", "t.example.com"}}},
              {"SuppressionOptions", {{"SuppressedReasons", {"BOUNCE"}}}},
              {"Tags", {{{"Key", "k"}, {"Value", "v"}}}}};
  return {
      {"POST", "/v2/email/outbound-emails", simple},
      {"POST", "/v2/email/outbound-emails", templated},
      {"POST", "/v2/email/outbound-emails", raw},
      {"POST", "/v2/email/outbound-bulk-emails", bulk},
      {"POST",
       "/v2/email/templates",
       {{"TemplateName", "t1"}, {"TemplateContent", {{"Subject", "{{a}}"}, {"Text", "x"}}}}},
      {"PUT",
       "/v2/email/templates/seed",
       {{"TemplateContent", {{"Html", "{{#each items}}{{this}}{{/each}}"}}}}},
      {"POST", "/v2/email/templates/seed/render", {{"TemplateData", R"({"name":"r"})"}}},
      {"POST", "/v2/email/configuration-sets", set},
      {"PUT",
       "/v2/email/configuration-sets/seed-set/delivery-options",
       {{"TlsPolicy", "OPTIONAL"}}},
      {"PUT",
       "/v2/email/configuration-sets/seed-set/tracking-options",
       {{"CustomRedirectDomain", "x.example.com"}, {"HttpsPolicy", "OPTIONAL"}}},
      {"PUT",
       "/v2/email/suppression/addresses",
       {{"EmailAddress", "x@example.net"}, {"Reason", "BOUNCE"}}},
      {"PUT", "/v2/email/account/suppression", {{"SuppressedReasons", {"BOUNCE"}}}},
      {"PUT", "/v2/email/account/sending", {{"SendingEnabled", true}}},
      {"POST",
       "/v2/email/list-identities",
       {{"Filter", {{"IDENTITY_TYPE", "DOMAIN"}}}, {"PageSize", 5}}},
      {"POST", "/v2/email/list-configuration-sets", {{"PageSize", 5}}},
      {"POST",
       "/v2/email/configuration-sets/seed-set/event-destinations",
       {{"EventDestinationName", "hook"},
        {"EventDestination",
         {{"Enabled", true},
          {"MatchingEventTypes", {"BOUNCE", "COMPLAINT"}},
          {"SnsDestination", {{"TopicArn", "https://[::1]:8443/a%20b?x=1"}}}}}}},
      {"PUT",
       "/v2/email/configuration-sets/seed-set/event-destinations/seed-hook",
       {{"EventDestination",
         {{"MatchingEventTypes", {"SEND"}},
          {"KinesisFirehoseDestination",
           {{"IamRoleArn", "r"}, {"DeliveryStreamArn", "file:events"}}}}}}},
  };
}

json random_value(std::mt19937& rng) {
  switch (rng() % 9) {
    case 0:
      return nullptr;
    case 1:
      return static_cast<int64_t>(rng()) - (1ll << 31);
    case 2:
      return -1.5e300;
    case 3:
      return "";
    case 4:
      return std::string(rng() % 3000, "a\r\n\xc3\xa9{<@\x00"[rng() % 8]);
    case 5:
      return true;
    case 6:
      return json::array({1, "x", nullptr});
    case 7:
      return json::object({{"Data", 1}});
    default:
      return "not-an-address";
  }
}

// Changes one value somewhere in j (recursively chosen), or removes or adds a member.
void mutate(json& j, std::mt19937& rng, int depth = 0) {
  if (j.is_object() && !j.empty() && depth < 8 && rng() % 3 != 0) {
    auto it = j.begin();
    std::advance(it, rng() % j.size());
    switch (rng() % 5) {
      case 0:
        j.erase(it);
        return;
      case 1:
        j["Extra" + std::to_string(rng() % 3)] = random_value(rng);
        return;
      case 2:
        *it = random_value(rng);
        return;
      default:
        mutate(*it, rng, depth + 1);
        return;
    }
  }
  if (j.is_array() && !j.empty() && depth < 8 && rng() % 3 != 0) {
    if (rng() % 4 == 0) {
      for (int i = 0; i < 60; ++i) j.push_back(j[0]);
      return;
    }
    mutate(j[rng() % j.size()], rng, depth + 1);
    return;
  }
  j = random_value(rng);
}

TEST(Fuzz, MutatedRequestsGetCleanAnswers) {
  FakeStore store;
  ASSERT_TRUE(store.add_key(kKeyId, kSecret).is_ok());
  ASSERT_TRUE(
      store.create_template({"seed", "Hi {{name}}", "T {{name}}", "<p>{{name}}</p>", "", ""})
          .is_ok());
  store::ConfigurationSet set;
  set.name = "seed-set";
  ASSERT_TRUE(store.create_configuration_set(set).is_ok());
  store::EventDestination hook;
  hook.configuration_set = "seed-set";
  hook.name = "seed-hook";
  hook.matching_event_types = {"SEND"};
  hook.target = "http://127.0.0.1:9/";
  ASSERT_TRUE(store.create_event_destination(hook).is_ok());
  FakeSubmitter submitter;
  ApiOptions options;
  options.clock = [] { return kNow; };
  SesApi api(store, submitter, options);

  std::mt19937 rng(20260314);
  std::vector<Seed> all = seeds();
  int ok = 0, refused = 0;
  for (int round = 0; round < 3000; ++round) {
    const Seed& seed = all[rng() % all.size()];
    HttpRequest r;
    r.method = seed.method;
    r.path = r.target = seed.path;
    json body = seed.body;
    int changes = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < changes; ++i) mutate(body, rng);
    r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
    if (rng() % 10 == 0) {  // bytes, not JSON values
      size_t at = rng() % (r.body.size() + 1);
      r.body.insert(at, 1, static_cast<char>(rng() % 256));
      if (rng() % 2) r.body.resize(rng() % (r.body.size() + 1));
    }
    r.headers = {{"host", "127.0.0.1:1"}, {"content-type", "application/json"}};
    RequestOptions o;
    o.key_id = kKeyId;
    o.secret = kSecret;
    TestServer::sign(r.method, r.target, r.body, o, r.headers);

    HttpResponse out = api.handle(r);
    json answer = json::parse(out.body, nullptr, false);
    ASSERT_TRUE(answer.is_object()) << r.body << "\n" << out.body;
    if (out.status == 200) {
      ++ok;
      continue;
    }
    ++refused;
    ASSERT_TRUE(out.status == 400 || out.status == 404) << out.status << " " << out.body << "\n"
                                                        << r.body;
    ASSERT_TRUE(answer["__type"].is_string()) << out.body;
    ASSERT_TRUE(answer["message"].is_string()) << out.body;
    ASSERT_FALSE(answer["message"].get<std::string>().empty()) << out.body;
  }
  // Both kinds of answer happen (the mutations are not all fatal).
  EXPECT_GT(ok, 100);
  EXPECT_GT(refused, 1000);
}

}  // namespace
}  // namespace magnetic::api::testing
