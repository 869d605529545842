#include "smtp/sink_main.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdio>

namespace magnetic::smtp {

int run_sink_command(const SinkOptions& options) {
  boost::asio::io_context io;
  auto started = SinkServer::start(io, options);
  if (!started) {
    std::fprintf(stderr, "magnetic sink: %s\n", started.status().message().c_str());
    return 1;
  }
  SinkServer& sink = **started;

  // Signals are caught before the port is printed: a script may send one as soon as it reads it.
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&sink](const boost::system::error_code& ec, int) {
    if (!ec) sink.stop();
  });
  std::printf("listening on %s:%u\n", options.listen_host.c_str(),
              static_cast<unsigned>(sink.port()));
  std::fflush(stdout);

  io.run();

  const SinkStats& stats = sink.stats();
  std::printf("connections %llu messages %llu recipients %llu rejected %llu\n",
              static_cast<unsigned long long>(stats.connections.load()),
              static_cast<unsigned long long>(stats.messages.load()),
              static_cast<unsigned long long>(stats.recipients.load()),
              static_cast<unsigned long long>(stats.rejected.load()));
  std::fflush(stdout);
  return 0;
}

}  // namespace magnetic::smtp
