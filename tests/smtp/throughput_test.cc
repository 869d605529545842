// Throughput of the client into the sink over loopback, one connection and pipelining: the
// counts are checked exactly; the rate is printed for the record (the machine is shared, so it
// is not asserted).
#include <utility>  // before Asio (Boost 1.74)

#include <chrono>
#include <cstdio>

#include "smtp/client.h"
#include "smtp/sink.h"
#include "test_util.h"

namespace magnetic::smtp {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using testing::run_until_done;
using testing::test_message;

void run_throughput(const std::string& maildir, int messages) {
  asio::io_context io;
  SinkOptions options;
  options.maildir = maildir;
  auto sink = SinkServer::start(io, options);
  ASSERT_TRUE(sink.is_ok()) << sink.status().message();

  int delivered = 0;
  auto started = std::chrono::steady_clock::now();
  run_until_done(io, [&]() -> awaitable<void> {
    ClientOptions o = testing::test_client_options();
    SmtpClient client(io.get_executor(), o, nullptr);
    co_await client.open("127.0.0.1", (*sink)->port());
    std::string message = test_message(0);
    std::vector<std::string> to = {"rcpt@example.com"};
    for (int i = 0; i < messages; ++i) {
      TransactionResult r = co_await client.send("sender@example.com", to, message);
      if (r.dot.code == 250) ++delivered;
    }
    co_await client.close();
  });
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("%d messages of %zu bytes in %.3f s: %.0f messages/s (%s)\n", messages,
              test_message(0).size(), seconds, messages / seconds,
              maildir.empty() ? "counting only" : "maildir");

  EXPECT_EQ(delivered, messages);
  EXPECT_EQ((*sink)->stats().messages.load(), static_cast<uint64_t>(messages));
}

TEST(ThroughputTest, one_connection_counting_only) { run_throughput("", 5000); }

TEST(ThroughputTest, one_connection_into_maildir) {
  magnetic::testing::TempDir dir;
  run_throughput(dir.path().string(), 500);  // bound by the file system: a create per message
  EXPECT_EQ(testing::count_files(dir.path() / "new"), 500u);
}

}  // namespace
}  // namespace magnetic::smtp
