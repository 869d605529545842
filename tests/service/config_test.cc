#include "service/config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "test_support.h"

namespace magnetic::service {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  std::string write(const std::string& text) {
    std::string path = (dir_.path() / "serve.toml").string();
    std::ofstream(path) << text;
    return path;
  }
  testing::TempDir dir_;
};

TEST_F(ConfigTest, EveryKeyIsRead) {
  std::string path = write(R"(
data = "d"
region = "eu-west-1"
[api]
listen = "127.0.0.1:1"
[smtp]
listen = ""
hostname = "mx.example"
max_message_size = 2000
[delivery]
relay = "127.0.0.1:25"
routes = ["a.example=127.0.0.1:2"]
dns_servers = ["127.0.0.1:53"]
smtp_port = 2525
ehlo_name = "out.example"
tls = "require"
domain_connections = 3
total_connections = 4
retry_initial = "5s"
max_age = "1h"
[quota]
max_24_hour_send = 10
max_send_rate = 2.5
[account]
ses_compatible_escaping = true
)");
  ServeConfig c;
  Status s = load_config(path, c);
  ASSERT_TRUE(s.is_ok()) << s.message();
  EXPECT_EQ(c.data_dir, "d");
  EXPECT_EQ(c.region, "eu-west-1");
  EXPECT_EQ(c.api_listen, "127.0.0.1:1");
  EXPECT_EQ(c.smtp_listen, "");
  EXPECT_EQ(c.smtp_hostname, "mx.example");
  EXPECT_EQ(c.max_message_size, 2000u);
  EXPECT_EQ(c.relay, "127.0.0.1:25");
  EXPECT_EQ(c.routes, (std::vector<std::string>{"a.example=127.0.0.1:2"}));
  EXPECT_EQ(c.smtp_port, 2525);
  EXPECT_EQ(c.tls, smtp::TlsMode::kRequire);
  EXPECT_EQ(c.domain_connections, 3);
  EXPECT_EQ(c.retry_initial, "5s");
  EXPECT_EQ(*c.max_24_hour_send, 10);
  EXPECT_EQ(*c.max_send_rate, 2.5);
  EXPECT_EQ(*c.ses_compatible_escaping, true);
}

// Regression (config_max_message_size_never_set): the range check of unsigned 64-bit keys
// compared against -1 and refused every value.
TEST_F(ConfigTest, MaxMessageSizeTakesTheDocumentedDefault) {
  ServeConfig c;
  Status s = load_config(write("[smtp]\nmax_message_size = 10485760\n"), c);
  ASSERT_TRUE(s.is_ok()) << s.message();
  EXPECT_EQ(c.max_message_size, 10485760u);
}

TEST_F(ConfigTest, ErrorsNameTheKeyAndWhy) {
  struct Case {
    std::string text, error;
  };
  for (const Case& k : std::vector<Case>{
           {"[delivery]\nrelays = \"x\"\n", ": unknown key 'delivery.relays'"},
           {"[delivery]\ndomain_connections = -1\n",
            ": 'delivery.domain_connections' must be a whole number from 0 to 2147483647"},
           {"[smtp]\nmax_message_size = \"big\"\n",
            ": 'smtp.max_message_size' must be a whole number from 0 to 18446744073709551615"},
           {"[delivery]\ntls = \"maybe\"\n",
            ": 'delivery.tls' must be off, opportunistic or require"},
           {"api = 1\n", ": 'api' must be a [table]"},
           {"[smtp]\ntls_cert = \"c.pem\"\n", ": 'smtp.tls_cert' and 'smtp.tls_key' go together"},
           {"[smtp]\ntls_cert = \"nope.pem\"\ntls_key = \"nope.key\"\n",
            ": 'nope.pem': no such file (smtp.tls_cert / smtp.tls_key)"},
       }) {
    ServeConfig c;
    std::string path = write(k.text);
    Status s = load_config(path, c);
    ASSERT_FALSE(s.is_ok()) << k.text;
    EXPECT_EQ(s.message(), path + k.error);
  }
}

// Regression (feedback_config_errors_without_key): every feedback, reputation and events value
// that is wrong names its key, and values that cannot work are refused at start.
TEST_F(ConfigTest, FeedbackReputationAndEventErrorsNameTheKey) {
  struct Case {
    const char* text;
    const char* error;
  };
  for (const Case& k : std::vector<Case>{
           {"[reputation]\nwindow = \"abc\"\n", ": 'reputation.window': "},
           {"[events]\nretry_initial = \"soon\"\n", ": 'events.retry_initial': "},
           {"[reputation]\nwindow = \"0s\"\n", ": 'reputation.window' must be more than 0"},
           {"[reputation]\npause_bounce_rate = 1.5\n",
            ": 'reputation.pause_bounce_rate' must be a fraction from 0 to 1 (0.05 is 5%)"},
           {"[reputation]\nreview_bounce_rate = 0.2\n",
            ": 'reputation.review_bounce_rate' is above 'reputation.pause_bounce_rate': the review "
            "comes before the pause"},
           {"[events]\nretry_initial = \"10m\"\n",
            ": 'events.retry_max' is shorter than 'events.retry_initial'"},
           {"[feedback]\nbounce_domain = \"bad domain\"\n",
            ": 'feedback.bounce_domain': 'bad domain' is not a domain name (letters, digits, '-' "
            "and dots)"},
           {"[feedback]\nbounce_domain = \"x@y.test\"\n",
            ": 'feedback.bounce_domain': 'x@y.test' is not a domain name (letters, digits, '-' "
            "and dots)"},
           {"[feedback]\nbounce_domain = \"localhost\"\n",
            ": 'feedback.bounce_domain': 'localhost' is not a domain name (letters, digits, '-' "
            "and dots)"},
           {"[feedback]\nlisten = \"nowhere\"\n",
            ": 'feedback.listen': 'nowhere': give HOST:PORT, e.g. 127.0.0.1:8585"},
           {"[feedback]\ncomplaint_addresses = [\"fbl\"]\n",
            ": 'feedback.complaint_addresses': 'fbl' is not an address"},
           {"[feedback]\nsurprise = 1\n", ": unknown key 'feedback.surprise'"},
           {"[delivery]\nsuspend_for = \"500ms\"\n",
            ": 'delivery.suspend_for' must be at least 1s"},
           {"[delivery]\nsuspend_for = \"0s\"\n", ": 'delivery.suspend_for' must be more than 0"},
           {"[feedback]\nhttp_token = \"short\"\n",
            ": 'feedback.http_token' must be at least 16 characters (it lets its holder suppress "
            "addresses)"},
       }) {
    ServeConfig c;
    std::string path = write(k.text);
    Status s = load_config(path, c);
    ASSERT_FALSE(s.is_ok()) << k.text;
    EXPECT_TRUE(s.message().starts_with(path + k.error)) << s.message();
  }
  ServeConfig c;
  std::string path = write(
      "[feedback]\nlisten = \"127.0.0.1:0\"\nbounce_domain = \"bounces.example.com\"\n"
      "complaint_addresses = [\"fbl@bounces.example.com\"]\nsoft_bounce_limit = 5\n"
      "[reputation]\nmin_sent = 50\npause_complaint_rate = 0.01\n[events]\nretention = \"1d\"\n");
  ASSERT_TRUE(load_config(path, c).is_ok());
  EXPECT_EQ(c.bounce_domain, "bounces.example.com");
  EXPECT_EQ(c.soft_bounce_limit, 5);
  EXPECT_EQ(c.reputation_min_sent, 50u);
  EXPECT_EQ(c.pause_complaint_rate, 0.01);
  EXPECT_EQ(c.events_retention, "1d");
}

// Regression (config_directory_ignored): a directory given as the file was read as empty.
TEST_F(ConfigTest, ADirectoryOrAMissingFileIsAnError) {
  ServeConfig c;
  Status s = load_config(dir_.path().string(), c);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.message(), dir_.path().string() + ": not a regular file");
  s = load_config((dir_.path() / "none.toml").string(), c);
  EXPECT_EQ(s.message(), (dir_.path() / "none.toml").string() + ": no such file");
}

}  // namespace
}  // namespace magnetic::service
