// run_sink_command as `magnetic sink` runs it: in a child process, port read from its stdout,
// stopped by SIGTERM, counts printed at the end.
#include <utility>  // before Asio (Boost 1.74)

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "smtp/client.h"
#include "smtp/sink_main.h"
#include "test_util.h"

namespace magnetic::smtp {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using magnetic::testing::TempDir;

// Reads from fd until `until` is seen or 5 s pass.
std::string read_until(int fd, std::string_view until) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (out.find(until) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[512];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

TEST(SinkMainTest, prints_port_then_counts_after_sigterm) {
  TempDir dir;
  SinkOptions options;
  options.maildir = dir.path().string();

  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    ::_exit(run_sink_command(options));
  }
  ::close(fds[1]);

  std::string first = read_until(fds[0], "\n");
  unsigned port = 0;
  ASSERT_EQ(std::sscanf(first.c_str(), "listening on 127.0.0.1:%u\n", &port), 1) << first;
  EXPECT_EQ(first, "listening on 127.0.0.1:" + std::to_string(port) + "\n");

  int delivered = 0;
  asio::io_context io;
  testing::run_until_done(io, [&]() -> awaitable<void> {
    ClientOptions o = testing::test_client_options();
    SmtpClient client(io.get_executor(), o, nullptr);
    co_await client.open("127.0.0.1", static_cast<uint16_t>(port));
    std::vector<std::string> to = {"r@example.com"};
    for (int i = 0; i < 2; ++i) {
      TransactionResult r = co_await client.send("s@example.com", to, "m\r\n");
      if (r.dot.code == 250) ++delivered;
    }
    co_await client.close();
  });
  EXPECT_EQ(delivered, 2);

  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  std::string last = read_until(fds[0], "rejected 0\n");
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ::close(fds[0]);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(last, "connections 1 messages 2 recipients 2 rejected 0\n");
  EXPECT_EQ(testing::count_files(dir.path() / "new"), 2u);
}

TEST(SinkMainTest, unusable_listen_address_exits_with_one) {
  SinkOptions options;
  options.listen_host = "not-an-address";
  EXPECT_EQ(run_sink_command(options), 1);
}

}  // namespace
}  // namespace magnetic::smtp
