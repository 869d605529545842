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
