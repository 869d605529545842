// The client against our own sink on loopback: pipelining, the maildir contents, and every
// fault the sink can play.
#include <utility>  // before Asio (Boost 1.74)

#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>

#include "smtp/client.h"
#include "smtp/sink.h"
#include "test_util.h"

namespace magnetic::smtp {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using magnetic::testing::TempDir;
using testing::count_files;
using testing::maildir_contents;
using testing::run_until_done;
using testing::test_message;

class ClientSinkTest : public ::testing::Test {
 protected:
  void start_sink(SinkOptions options) {
    auto started = SinkServer::start(io_, std::move(options));
    ASSERT_TRUE(started.is_ok()) << started.status().message();
    sink_ = std::move(started).value();
  }
  void start_sink_with_maildir(SinkFaults faults = {}) {
    SinkOptions options;
    options.maildir = dir_.path().string();
    options.faults = faults;
    start_sink(options);
  }
  ClientOptions client_options() { return testing::test_client_options(); }
  const SinkStats& stats() { return sink_->stats(); }

  asio::io_context io_;
  TempDir dir_;
  std::unique_ptr<SinkServer> sink_;
};

TEST_F(ClientSinkTest, many_messages_on_one_connection_pipelined) {
  start_sink_with_maildir();
  constexpr int kMessages = 50;
  Reply opened;
  Capabilities caps;
  std::vector<TransactionResult> results;
  int transactions = 0;
  run_until_done(io_, [&]() -> awaitable<void> {
    SmtpClient client(io_.get_executor(), client_options(), nullptr);
    opened = co_await client.open("127.0.0.1", sink_->port());
    caps = client.capabilities();
    for (int i = 0; i < kMessages; ++i) {
      std::vector<std::string> to1 = {"a" + std::to_string(i) + "@example.com", "b@example.com"};
      results.push_back(co_await client.send("sender@example.com", to1, test_message(i)));
    }
    transactions = client.transactions();
    co_await client.close();
  });

  EXPECT_EQ(opened.code, 250);
  EXPECT_EQ(opened.stage, "ehlo");
  EXPECT_TRUE(caps.esmtp);
  EXPECT_TRUE(caps.pipelining);
  EXPECT_TRUE(caps.eightbitmime);
  EXPECT_FALSE(caps.starttls);
  EXPECT_FALSE(caps.tls_active);
  EXPECT_EQ(caps.size_limit, 50u * 1024 * 1024);
  ASSERT_EQ(results.size(), size_t{kMessages});
  for (const auto& r : results) {
    EXPECT_EQ(r.mail.code, 250);
    EXPECT_EQ(r.mail.enhanced, "2.1.0");
    ASSERT_EQ(r.rcpts.size(), 2u);
    EXPECT_EQ(r.rcpts[0].code, 250);
    EXPECT_EQ(r.rcpts[1].enhanced, "2.1.5");
    EXPECT_EQ(r.data.code, 354);
    EXPECT_EQ(r.dot.code, 250);
    EXPECT_EQ(r.dot.stage, "dot");
    EXPECT_TRUE(r.final_dot_sent);
  }
  EXPECT_EQ(transactions, kMessages);
  EXPECT_EQ(stats().connections.load(), 1u);
  EXPECT_EQ(stats().messages.load(), uint64_t{kMessages});
  EXPECT_EQ(stats().recipients.load(), uint64_t{2 * kMessages});

  // Exact files: the envelope, then the message as it was before dot-stuffing.
  std::vector<std::string> expected;
  for (int i = 0; i < kMessages; ++i) {
    expected.push_back("X-Envelope-From: <sender@example.com>\r\nX-Envelope-To: <a" +
                       std::to_string(i) + "@example.com>\r\nX-Envelope-To: <b@example.com>\r\n" +
                       test_message(i));
  }
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(maildir_contents(dir_.path()), expected);
  EXPECT_EQ(count_files(dir_.path() / "tmp"), 0u);
}

TEST_F(ClientSinkTest, message_without_final_crlf_is_stored_with_one) {
  start_sink_with_maildir();
  TransactionResult r;
  run_until_done(io_, [&]() -> awaitable<void> {
    SmtpClient client(io_.get_executor(), client_options(), nullptr);
    co_await client.open("127.0.0.1", sink_->port());
    std::vector<std::string> to2 = {"x@example.com"};
    r = co_await client.send("", to2, "Subject: s\r\n\r\n.\r\nlast");
    co_await client.close();
  });
  EXPECT_EQ(r.dot.code, 250);
  EXPECT_EQ(maildir_contents(dir_.path()),
            std::vector<std::string>{"X-Envelope-From: <>\r\nX-Envelope-To: <x@example.com>\r\n"
                                     "Subject: s\r\n\r\n.\r\nlast\r\n"});
}

TEST_F(ClientSinkTest, transient_rcpt_failure_twice_then_accepted_across_connections) {
  SinkFaults faults;
  faults.rcpt_code = 451;
  faults.rcpt_fail_times = 2;
  start_sink_with_maildir(faults);
  std::vector<TransactionResult> results;
  run_until_done(io_, [&]() -> awaitable<void> {
    // First attempt on one connection, the next two on another: the count is per address.
    {
      SmtpClient client(io_.get_executor(), client_options(), nullptr);
      co_await client.open("127.0.0.1", sink_->port());
      std::vector<std::string> to3 = {"r@example.com"};
      results.push_back(co_await client.send("s@example.com", to3, "a\r\n"));
      co_await client.close();
    }
    SmtpClient client(io_.get_executor(), client_options(), nullptr);
    co_await client.open("127.0.0.1", sink_->port());
    for (int i = 0; i < 2; ++i) {
      std::vector<std::string> to4 = {"r@example.com"};
      results.push_back(co_await client.send("s@example.com", to4, "a\r\n"));
    }
    co_await client.close();
  });

  ASSERT_EQ(results.size(), 3u);
  for (int i = 0; i < 2; ++i) {
    const TransactionResult& r = results[i];
    EXPECT_EQ(r.mail.code, 250) << i;  // the second one proves the RSET before it
    EXPECT_EQ(r.rcpts[0].code, 451);
    EXPECT_EQ(r.rcpts[0].enhanced, "4.7.1");
    EXPECT_EQ(r.rcpts[0].text, "try again later");
    EXPECT_EQ(r.rcpts[0].stage, "rcpt");
    EXPECT_EQ(r.data.code, 554);  // DATA was pipelined; no recipient, so no body
    EXPECT_EQ(r.data.enhanced, "5.5.1");
    EXPECT_EQ(r.dot.code, 0);
    EXPECT_FALSE(r.final_dot_sent);
  }
  EXPECT_EQ(results[2].mail.code, 250);
  EXPECT_EQ(results[2].rcpts[0].code, 250);
  EXPECT_EQ(results[2].dot.code, 250);
  EXPECT_EQ(stats().rejected.load(), 2u);
  EXPECT_EQ(stats().messages.load(), 1u);
  EXPECT_EQ(stats().connections.load(), 2u);
  EXPECT_EQ(maildir_contents(dir_.path()),
            std::vector<std::string>{
                "X-Envelope-From: <s@example.com>\r\nX-Envelope-To: <r@example.com>\r\na\r\n"});
}

TEST_F(ClientSinkTest, rset_after_failure_then_partial_recipients) {
  SinkFaults faults;
  faults.rcpt_code = 550;
  faults.rcpt_fail_times = 1;  // the first attempt of each address fails
  start_sink_with_maildir(faults);
  TransactionResult first, second;
  run_until_done(io_, [&]() -> awaitable<void> {
    SmtpClient client(io_.get_executor(), client_options(), nullptr);
    co_await client.open("127.0.0.1", sink_->port());
    std::vector<std::string> to5 = {"x@example.com"};
    first = co_await client.send("s@example.com", to5, "m1\r\n");
    std::vector<std::string> to6 = {"x@example.com", "y@example.com"};
    second = co_await client.send("s@example.com", to6, "m2\r\n");
    co_await client.close();
  });
  EXPECT_EQ(first.rcpts[0].code, 550);
  EXPECT_EQ(first.rcpts[0].enhanced, "5.1.1");
  EXPECT_EQ(first.rcpts[0].text, "user unknown");
  EXPECT_EQ(second.mail.code, 250);
  EXPECT_EQ(second.rcpts[0].code, 250);
  EXPECT_EQ(second.rcpts[1].code, 550);
  EXPECT_EQ(second.dot.code, 250);
  EXPECT_EQ(stats().recipients.load(), 1u);
  EXPECT_EQ(maildir_contents(dir_.path()),
            std::vector<std::string>{
                "X-Envelope-From: <s@example.com>\r\nX-Envelope-To: <x@example.com>\r\nm2\r\n"});
}

TEST_F(ClientSinkTest, permanent_rcpt_failure_always) {
  SinkFaults faults;
  faults.rcpt_code = 550;
  faults.rcpt_text = "5.1.1 no such user here";
  start_sink_with_maildir(faults);
  std::vector<TransactionResult> results;
  bool usable = false;
  run_until_done(io_, [&]() -> awaitable<void> {
    SmtpClient client(io_.get_executor(), client_options(), nullptr);
    co_await client.open("127.0.0.1", sink_->port());
    for (int i = 0; i < 3; ++i) {
      std::vector<std::string> to7 = {"gone@example.com"};
      results.push_back(co_await client.send("s@example.com", to7, "m\r\n"));
    }
    usable = client.usable();
    co_await client.close();
  });
  for (const auto& r : results) {
    EXPECT_EQ(r.mail.code, 250);
    EXPECT_EQ(r.rcpts[0].code, 550);
    EXPECT_EQ(r.rcpts[0].enhanced, "5.1.1");
    EXPECT_EQ(r.rcpts[0].text, "no such user here");
    EXPECT_EQ(r.rcpts[0].to_string(), "550 5.1.1 no such user here");
    EXPECT_EQ(r.data.code, 554);
    EXPECT_FALSE(r.final_dot_sent);
  }
  EXPECT_TRUE(usable);
  EXPECT_EQ(stats().rejected.load(), 3u);
  EXPECT_EQ(stats().messages.load(), 0u);
  EXPECT_EQ(count_files(dir_.path() / "new"), 0u);
}

TEST_F(ClientSinkTest, disconnect_after_n_messages_makes_client_unusable) {
  SinkFaults faults;
  faults.disconnect_after = 3;
  start_sink_with_maildir(faults);
  std::vector<TransactionResult> results;
  bool usable = true;
  int transactions = 0;
  run_until_done(io_, [&]() -> awaitable<void> {
    SmtpClient client(io_.get_executor(), client_options(), nullptr);
    co_await client.open("127.0.0.1", sink_->port());
    for (int i = 0; i < 5; ++i) {
      std::vector<std::string> to8 = {"r@example.com"};
      results.push_back(co_await client.send("s@example.com", to8, "m\r\n"));
    }
    usable = client.usable();
    transactions = client.transactions();
    co_await client.close();
  });
  for (int i = 0; i < 3; ++i) EXPECT_EQ(results[i].dot.code, 250) << i;
  EXPECT_EQ(results[3].mail.code, 421);
  EXPECT_EQ(results[3].mail.enhanced, "4.7.0");
  EXPECT_EQ(results[3].mail.text, "sink.test too many messages on this connection");
  EXPECT_EQ(results[3].rcpts[0].code, 0);
  EXPECT_EQ(results[3].rcpts[0].text, "not sent");
  EXPECT_FALSE(results[3].final_dot_sent);
  EXPECT_EQ(results[4].mail.code, 0);
  EXPECT_EQ(results[4].mail.text, "connection not usable");
  EXPECT_FALSE(usable);
  EXPECT_EQ(transactions, 4);
  EXPECT_EQ(stats().messages.load(), 3u);
}

TEST_F(ClientSinkTest, drop_mid_data_reports_no_reply_before_the_dot) {
  SinkFaults faults;
  faults.drop_mid_data_every = 2;
  start_sink_with_maildir(faults);
  TransactionResult first, second;
  bool usable = true;
  run_until_done(io_, [&]() -> awaitable<void> {
    SmtpClient client(io_.get_executor(), client_options(), nullptr);
    co_await client.open("127.0.0.1", sink_->port());
    std::vector<std::string> to9 = {"r@example.com"};
    first = co_await client.send("s@example.com", to9, "m\r\n");
    std::vector<std::string> to10 = {"r@example.com"};
    second = co_await client.send("s@example.com", to10, "m\r\n");
    usable = client.usable();
    co_await client.close();
  });
  EXPECT_EQ(first.dot.code, 250);
  EXPECT_EQ(second.mail.code, 250);
  EXPECT_EQ(second.rcpts[0].code, 250);
  EXPECT_EQ(second.data.code, 0);
  EXPECT_EQ(second.data.stage, "data");
  EXPECT_EQ(second.data.text, "connection closed by the server");
  EXPECT_EQ(second.dot.code, 0);
  EXPECT_FALSE(second.final_dot_sent);
  EXPECT_FALSE(usable);
  EXPECT_EQ(stats().messages.load(), 1u);
}

TEST_F(ClientSinkTest, drop_after_dot_reports_final_dot_sent) {
  SinkFaults faults;
  faults.drop_after_dot_every = 1;
  start_sink_with_maildir(faults);
  TransactionResult r;
  run_until_done(io_, [&]() -> awaitable<void> {
    SmtpClient client(io_.get_executor(), client_options(), nullptr);
    co_await client.open("127.0.0.1", sink_->port());
    std::vector<std::string> to11 = {"r@example.com"};
    r = co_await client.send("s@example.com", to11, "m\r\n");
    co_await client.close();
  });
  EXPECT_EQ(r.data.code, 354);
  EXPECT_TRUE(r.final_dot_sent);
  EXPECT_EQ(r.dot.code, 0);
  EXPECT_EQ(r.dot.stage, "dot");
  EXPECT_EQ(r.dot.text, "connection closed by the server");
  EXPECT_EQ(stats().messages.load(), 0u);
}

TEST_F(ClientSinkTest, reply_delay_longer_than_greeting_timeout) {
  SinkFaults faults;
  faults.reply_delay = std::chrono::milliseconds(1500);
  start_sink_with_maildir(faults);
  ClientOptions options = client_options();
  options.timeouts.greeting = std::chrono::seconds(1);
  Reply opened;
  bool usable = true;
  auto started = std::chrono::steady_clock::now();
  run_until_done(io_, [&]() -> awaitable<void> {
    SmtpClient client(io_.get_executor(), options, nullptr);
    opened = co_await client.open("127.0.0.1", sink_->port());
    usable = client.usable();
  });
  auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(opened.code, 0);
  EXPECT_EQ(opened.stage, "greeting");
  EXPECT_EQ(opened.text, "timeout");
  EXPECT_FALSE(usable);
  EXPECT_GE(elapsed, std::chrono::milliseconds(1000));
  EXPECT_LT(elapsed, std::chrono::milliseconds(3000));  // loose: the machine is shared
}

TEST_F(ClientSinkTest, reply_delay_longer_than_command_timeout) {
  SinkFaults faults;
  faults.reply_delay = std::chrono::milliseconds(1200);
  start_sink_with_maildir(faults);
  ClientOptions options = client_options();
  options.timeouts.greeting = std::chrono::seconds(3);
  options.timeouts.command = std::chrono::seconds(1);
  Reply opened;
  TransactionResult r;
  run_until_done(io_, [&]() -> awaitable<void> {
    SmtpClient client(io_.get_executor(), options, nullptr);
    opened = co_await client.open("127.0.0.1", sink_->port());
    std::vector<std::string> to12 = {"r@example.com"};
    r = co_await client.send("s@example.com", to12, "m\r\n");
  });
  EXPECT_EQ(opened.code, 0);
  EXPECT_EQ(opened.stage, "ehlo");
  EXPECT_EQ(opened.text, "timeout");
  EXPECT_EQ(r.mail.text, "connection not usable");
}

TEST_F(ClientSinkTest, message_over_size_limit_is_not_sent) {
  SinkOptions options;
  options.maildir = dir_.path().string();
  options.size_limit = 1000;
  start_sink(options);
  TransactionResult big, small;
  bool usable = false;
  run_until_done(io_, [&]() -> awaitable<void> {
    SmtpClient client(io_.get_executor(), client_options(), nullptr);
    co_await client.open("127.0.0.1", sink_->port());
    std::vector<std::string> to13 = {"r@example.com"};
    big = co_await client.send("s@example.com", to13, std::string(1001, 'x'));
    usable = client.usable();
    std::vector<std::string> to14 = {"r@example.com"};
    small = co_await client.send("s@example.com", to14, "small\r\n");
    co_await client.close();
  });
  EXPECT_EQ(big.mail.code, 552);
  EXPECT_EQ(big.mail.enhanced, "5.3.4");
  EXPECT_EQ(big.mail.stage, "mail");
  EXPECT_EQ(big.mail.text, "message size exceeds the server's limit of 1000 bytes");
  EXPECT_TRUE(usable);
  EXPECT_EQ(small.dot.code, 250);
  EXPECT_EQ(stats().messages.load(), 1u);
}

TEST_F(ClientSinkTest, starttls_opportunistic_upgrades_and_says_ehlo_again) {
  SinkOptions options;
  options.maildir = dir_.path().string();
  options.starttls = true;
  start_sink(options);
  Reply opened;
  Capabilities caps;
  std::vector<TransactionResult> results;
  run_until_done(io_, [&]() -> awaitable<void> {
    ClientOptions o = client_options();
    o.tls = TlsMode::kOpportunistic;
    SmtpClient client(io_.get_executor(), o, nullptr);
    opened = co_await client.open("127.0.0.1", sink_->port());
    caps = client.capabilities();
    for (int i = 0; i < 3; ++i) {
      std::vector<std::string> to15 = {"r@example.com"};
      results.push_back(co_await client.send("s@example.com", to15, test_message(i)));
    }
    co_await client.close();
  });
  EXPECT_EQ(opened.code, 250);
  EXPECT_EQ(opened.stage, "ehlo");
  EXPECT_TRUE(caps.tls_active);
  EXPECT_FALSE(caps.starttls);  // not offered again under TLS: the second EHLO was read
  EXPECT_TRUE(caps.pipelining);
  for (const auto& r : results) EXPECT_EQ(r.dot.code, 250);
  EXPECT_EQ(count_files(dir_.path() / "new"), 3u);
}

TEST_F(ClientSinkTest, starttls_off_ignores_the_offer) {
  SinkOptions options;
  options.starttls = true;
  start_sink(options);
  Capabilities caps;
  TransactionResult r;
  run_until_done(io_, [&]() -> awaitable<void> {
    SmtpClient client(io_.get_executor(), client_options(), nullptr);
    co_await client.open("127.0.0.1", sink_->port());
    caps = client.capabilities();
    std::vector<std::string> to16 = {"r@example.com"};
    r = co_await client.send("s@example.com", to16, "m\r\n");
    co_await client.close();
  });
  EXPECT_TRUE(caps.starttls);
  EXPECT_FALSE(caps.tls_active);
  EXPECT_EQ(r.dot.code, 250);
}

TEST_F(ClientSinkTest, starttls_required_but_not_offered) {
  start_sink(SinkOptions{});
  Reply opened;
  bool usable = true;
  run_until_done(io_, [&]() -> awaitable<void> {
    ClientOptions o = client_options();
    o.tls = TlsMode::kRequire;
    SmtpClient client(io_.get_executor(), o, nullptr);
    opened = co_await client.open("127.0.0.1", sink_->port());
    usable = client.usable();
  });
  EXPECT_EQ(opened.code, 454);
  EXPECT_EQ(opened.enhanced, "4.7.4");
  EXPECT_EQ(opened.stage, "starttls");
  EXPECT_EQ(opened.text, "TLS is required, but the server did not offer STARTTLS");
  EXPECT_FALSE(usable);
}

TEST_F(ClientSinkTest, starttls_handshake_failure_with_verification) {
  SinkOptions options;
  options.starttls = true;
  start_sink(options);
  Reply opened;
  bool usable = true;
  run_until_done(io_, [&]() -> awaitable<void> {
    ClientOptions o = client_options();
    o.tls = TlsMode::kRequire;
    o.verify_certificate = true;  // the sink's certificate is self-signed
    SmtpClient client(io_.get_executor(), o, nullptr);
    opened = co_await client.open("127.0.0.1", sink_->port());
    usable = client.usable();
  });
  EXPECT_EQ(opened.code, 0);
  EXPECT_EQ(opened.stage, "starttls");
  EXPECT_EQ(opened.text.rfind("TLS handshake failed: ", 0), 0u) << opened.text;
  EXPECT_FALSE(usable);
}

TEST_F(ClientSinkTest, auth_without_offered_mechanism) {
  start_sink(SinkOptions{});
  Reply opened;
  run_until_done(io_, [&]() -> awaitable<void> {
    ClientOptions o = client_options();
    o.auth = Credentials{"user", "secret"};
    SmtpClient client(io_.get_executor(), o, nullptr);
    opened = co_await client.open("127.0.0.1", sink_->port());
  });
  EXPECT_EQ(opened.code, 454);
  EXPECT_EQ(opened.stage, "auth");
  EXPECT_EQ(opened.text, "no supported AUTH mechanism offered (PLAIN, LOGIN); server offers: none");
}

TEST_F(ClientSinkTest, connection_refused) {
  // A port that was free a moment ago: bind, read the port, close.
  uint16_t port;
  {
    asio::ip::tcp::acceptor probe(io_, {asio::ip::make_address("127.0.0.1"), 0});
    port = probe.local_endpoint().port();
  }
  Reply opened;
  run_until_done(io_, [&]() -> awaitable<void> {
    SmtpClient client(io_.get_executor(), client_options(), nullptr);
    opened = co_await client.open("127.0.0.1", port);
  });
  EXPECT_EQ(opened.code, 0);
  EXPECT_EQ(opened.stage, "connect");
  EXPECT_EQ(opened.text, "Connection refused");
}

TEST_F(ClientSinkTest, malformed_greeting) {
  asio::ip::tcp::acceptor server(io_, {asio::ip::make_address("127.0.0.1"), 0});
  uint16_t port = server.local_endpoint().port();
  Reply opened;
  run_until_done(io_, [&]() -> awaitable<void> {
    asio::co_spawn(
        io_,
        [&]() -> awaitable<void> {
          auto socket = co_await server.async_accept(asio::use_awaitable);
          co_await asio::async_write(socket, asio::buffer(std::string_view("hello there\r\n")),
                                     asio::use_awaitable);
        },
        asio::detached);
    SmtpClient client(io_.get_executor(), client_options(), nullptr);
    opened = co_await client.open("127.0.0.1", port);
  });
  EXPECT_EQ(opened.code, 0);
  EXPECT_EQ(opened.stage, "greeting");
  EXPECT_EQ(opened.text, "malformed reply: hello there");
}

}  // namespace
}  // namespace magnetic::smtp
