// The client against Postfix's smtp-sink, a real SMTP server, run as a child process on a
// loopback port. smtp-sink -c prints its counters ("sess=1 quit=1 mesg=200") as it goes; with
// -n 1 it exits after one session, which flushes them.
#include <utility>  // before Asio (Boost 1.74)

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdio>
#include <thread>

#include "smtp/client.h"
#include "test_util.h"

namespace magnetic::smtp {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using magnetic::testing::TempDir;
using testing::count_files;
using testing::run_until_done;
using testing::test_message;

constexpr const char* kSmtpSink = "/usr/sbin/smtp-sink";

// One smtp-sink child process listening on 127.0.0.1 on a port that was free.
class PostfixSink {
 public:
  // Starts smtp-sink with extra options; false when it could not be started.
  bool start(std::vector<std::string> extra) {
    {
      asio::io_context io;
      asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
      port_ = probe.local_endpoint().port();
    }
    std::vector<std::string> args = {kSmtpSink, "-c", "-n", "1"};
    if (::geteuid() == 0) {  // smtp-sink refuses to run as root without -u
      args.push_back("-u");
      args.push_back(::getpwuid(0)->pw_name);
    }
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back("127.0.0.1:" + std::to_string(port_));
    args.push_back("16");

    int fds[2];
    if (::pipe(fds) != 0) return false;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      ::close(fds[1]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(kSmtpSink, argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    out_fd_ = fds[0];
    return wait_listening();
  }

  // Waits for smtp-sink to exit (bounded: 5 s) and returns what it printed.
  std::string finish() {
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{out_fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) > 0) {
        char buf[4096];
        ssize_t n = ::read(out_fd_, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
      }
    }
    reap();
    return out;
  }

  ~PostfixSink() {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
    reap();
    if (out_fd_ >= 0) ::close(out_fd_);
  }

  uint16_t port() const { return port_; }

 private:
  // Waits (at most 3 s) until the port is in LISTEN state. A test connection would not do:
  // with -n 1 it would be smtp-sink's one session.
  bool wait_listening() {
    char wanted[32];
    std::snprintf(wanted, sizeof wanted, "0100007F:%04X", port_);
    for (int i = 0; i < 300; ++i) {
      std::string table = magnetic::testing::read_file("/proc/net/tcp");
      size_t at = 0;
      while ((at = table.find(wanted, at)) != std::string::npos) {
        // "local rem_address st": the state is the second field after the local address.
        size_t line_end = table.find('\n', at);
        std::string line = table.substr(at, line_end - at);
        if (line.find(" 0A ") != std::string::npos) return true;
        at = line_end;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  void reap() {
    if (pid_ > 0) {
      int status;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }

  uint16_t port_ = 0;
  pid_t pid_ = -1;
  int out_fd_ = -1;
};

// The last counters line smtp-sink printed ("sess=1 quit=1 mesg=200").
std::string last_counters(const std::string& out) {
  std::string s = out;
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n')) s.pop_back();
  size_t cut = s.find_last_of("\r\n");
  return cut == std::string::npos ? s : s.substr(cut + 1);
}

TEST(PostfixSinkTest, two_hundred_messages_on_one_connection) {
  if (::access(kSmtpSink, X_OK) != 0) GTEST_SKIP() << "smtp-sink is not installed";
  TempDir dumps;
  PostfixSink sink;
  ASSERT_TRUE(sink.start({"-d", (dumps.path() / "%M.").string()}));

  constexpr int kMessages = 200;
  Capabilities caps;
  int positive = 0;
  int transactions = 0;
  asio::io_context io;
  run_until_done(io, [&]() -> awaitable<void> {
    ClientOptions o = testing::test_client_options();
    o.tls = TlsMode::kOpportunistic;  // smtp-sink offers no STARTTLS: plain it is
    SmtpClient client(io.get_executor(), o, nullptr);
    Reply opened = co_await client.open("127.0.0.1", sink.port());
    EXPECT_EQ(opened.code, 250);
    caps = client.capabilities();
    for (int i = 0; i < kMessages; ++i) {
      std::string message = test_message(i);
      if (i == 0) message += "caf\xc3\xa9\r\n";  // 8-bit: BODY=8BITMIME
      std::vector<std::string> to1 = {"rcpt@example.com"};
      TransactionResult r = co_await client.send("sender@example.com", to1, message);
      if (r.dot.code == 250 && r.final_dot_sent) ++positive;
    }
    transactions = client.transactions();
    co_await client.close();
  });

  EXPECT_EQ(positive, kMessages);
  EXPECT_EQ(transactions, kMessages);
  EXPECT_TRUE(caps.pipelining);
  EXPECT_TRUE(caps.eightbitmime);
  EXPECT_EQ(caps.auth_mechanisms, (std::vector<std::string>{"PLAIN", "LOGIN"}));
  EXPECT_EQ(last_counters(sink.finish()), "sess=1 quit=1 mesg=200");
  ASSERT_EQ(count_files(dumps.path()), size_t{kMessages});

  // The dumps (LF line endings) show the envelope and the body after un-stuffing.
  int with_8bit = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dumps.path())) {
    std::string dump = magnetic::testing::read_file(entry.path());
    EXPECT_NE(dump.find("\nX-Rcpt-Args: <rcpt@example.com>\n"), std::string::npos);
    EXPECT_NE(dump.find("\n\n.leading dot\n.\n..\nnormal line. with a dot\n"), std::string::npos);
    if (dump.find("X-Mail-Args: <sender@example.com> BODY=8BITMIME\n") != std::string::npos) {
      ++with_8bit;
      EXPECT_NE(dump.find("Subject: message 0\n"), std::string::npos);
    } else {
      EXPECT_NE(dump.find("X-Mail-Args: <sender@example.com>\n"), std::string::npos);
    }
  }
  EXPECT_EQ(with_8bit, 1);
}

TEST(PostfixSinkTest, without_pipelining_each_command_waits) {
  if (::access(kSmtpSink, X_OK) != 0) GTEST_SKIP() << "smtp-sink is not installed";
  PostfixSink sink;
  ASSERT_TRUE(sink.start({"-p"}));
  constexpr int kMessages = 20;
  Capabilities caps;
  int positive = 0;
  asio::io_context io;
  run_until_done(io, [&]() -> awaitable<void> {
    SmtpClient client(io.get_executor(), testing::test_client_options(), nullptr);
    co_await client.open("127.0.0.1", sink.port());
    caps = client.capabilities();
    for (int i = 0; i < kMessages; ++i) {
      std::vector<std::string> to2 = {"a@example.com", "b@example.com"};
      TransactionResult r = co_await client.send("s@example.com", to2, test_message(i));
      if (r.rcpts.size() == 2 && r.rcpts[1].code == 250 && r.dot.code == 250) ++positive;
    }
    co_await client.close();
  });
  EXPECT_TRUE(caps.esmtp);
  EXPECT_FALSE(caps.pipelining);
  EXPECT_EQ(positive, kMessages);
  EXPECT_EQ(last_counters(sink.finish()), "sess=1 quit=1 mesg=20");
}

TEST(PostfixSinkTest, ehlo_refused_falls_back_to_helo) {
  if (::access(kSmtpSink, X_OK) != 0) GTEST_SKIP() << "smtp-sink is not installed";
  PostfixSink sink;
  ASSERT_TRUE(sink.start({"-f", "EHLO"}));
  Reply opened;
  Capabilities caps;
  TransactionResult r;
  asio::io_context io;
  run_until_done(io, [&]() -> awaitable<void> {
    SmtpClient client(io.get_executor(), testing::test_client_options(), nullptr);
    opened = co_await client.open("127.0.0.1", sink.port());
    caps = client.capabilities();
    std::vector<std::string> to3 = {"a@example.com"};
    r = co_await client.send("s@example.com", to3, test_message(1));
    co_await client.close();
  });
  EXPECT_EQ(opened.code, 250);
  EXPECT_EQ(opened.stage, "ehlo");
  EXPECT_EQ(opened.text, "smtp-sink");
  EXPECT_FALSE(caps.esmtp);
  EXPECT_FALSE(caps.pipelining);
  EXPECT_EQ(r.dot.code, 250);
  EXPECT_EQ(last_counters(sink.finish()), "sess=1 quit=1 mesg=1");
}

TEST(PostfixSinkTest, rcpt_refused_sends_no_data_and_resets) {
  if (::access(kSmtpSink, X_OK) != 0) GTEST_SKIP() << "smtp-sink is not installed";
  PostfixSink sink;
  ASSERT_TRUE(sink.start({"-f", "RCPT"}));
  TransactionResult first, second;
  asio::io_context io;
  run_until_done(io, [&]() -> awaitable<void> {
    SmtpClient client(io.get_executor(), testing::test_client_options(), nullptr);
    co_await client.open("127.0.0.1", sink.port());
    std::vector<std::string> to4 = {"a@example.com"};
    first = co_await client.send("s@example.com", to4, "m\r\n");
    std::vector<std::string> to5 = {"a@example.com"};
    second = co_await client.send("s@example.com", to5, "m\r\n");
    co_await client.close();
  });
  EXPECT_EQ(first.mail.code, 250);
  EXPECT_EQ(first.rcpts[0].code, 500);
  EXPECT_EQ(first.rcpts[0].enhanced, "5.3.0");
  EXPECT_EQ(first.rcpts[0].text, "Error: command failed");
  EXPECT_EQ(first.data.code, 0);
  EXPECT_EQ(first.data.text, "not sent: no recipient accepted");
  EXPECT_FALSE(first.final_dot_sent);
  EXPECT_EQ(second.mail.code, 250);
  EXPECT_EQ(second.mail.stage, "mail");
  EXPECT_EQ(last_counters(sink.finish()), "sess=1 quit=1 mesg=0");
}

TEST(PostfixSinkTest, auth_plain_is_preferred) {
  if (::access(kSmtpSink, X_OK) != 0) GTEST_SKIP() << "smtp-sink is not installed";
  PostfixSink sink;
  ASSERT_TRUE(sink.start({}));
  Reply opened;
  TransactionResult r;
  asio::io_context io;
  run_until_done(io, [&]() -> awaitable<void> {
    ClientOptions o = testing::test_client_options();
    o.auth = Credentials{"user", "secret"};
    SmtpClient client(io.get_executor(), o, nullptr);
    opened = co_await client.open("127.0.0.1", sink.port());
    std::vector<std::string> to6 = {"a@example.com"};
    r = co_await client.send("s@example.com", to6, "m\r\n");
    co_await client.close();
  });
  // smtp-sink answers AUTH with 250 rather than 235; any 2xx is success.
  EXPECT_EQ(opened.code, 250);
  EXPECT_EQ(opened.stage, "auth");
  EXPECT_EQ(r.dot.code, 250);
  EXPECT_EQ(last_counters(sink.finish()), "sess=1 quit=1 mesg=1");
}

}  // namespace
}  // namespace magnetic::smtp
