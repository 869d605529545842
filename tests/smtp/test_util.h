// Helpers for the smtp tests: run a coroutine to its end, read a Maildir.
#pragma once

#include <utility>  // before Asio (Boost 1.74)

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "smtp/client.h"
#include "test_support.h"

namespace magnetic::smtp::testing {

// Runs f() (which returns awaitable<void>) on io until it finishes; whatever else is running on
// io (a sink) is left where it is.
template <typename F>
void run_until_done(boost::asio::io_context& io, F&& f) {
  std::exception_ptr error;
  bool done = false;
  boost::asio::co_spawn(io, std::forward<F>(f), [&](std::exception_ptr e) {
    error = e;
    done = true;
    io.stop();
  });
  io.restart();
  io.run();
  io.restart();
  ASSERT_TRUE(done);
  if (error) std::rethrow_exception(error);
}

// Client options for tests: timeouts of a few seconds, so that a regression fails instead of
// waiting for the RFC 5321 minutes.
inline ClientOptions test_client_options() {
  ClientOptions o;
  o.ehlo_name = "client.example.com";
  o.tls = TlsMode::kOff;
  const std::chrono::seconds t(5);
  o.timeouts = Timeouts{t, t, t, t, t, t};
  return o;
}

// The files of maildir/<sub>, contents sorted.
inline std::vector<std::string> maildir_contents(const std::filesystem::path& maildir,
                                                 const char* sub = "new") {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(maildir / sub)) {
    out.push_back(magnetic::testing::read_file(entry.path()));
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline size_t count_files(const std::filesystem::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

// A 1 KB-ish message whose lines test the dot-stuffing on the way.
inline std::string test_message(int i) {
  std::string m = "From: sender@example.com\r\nTo: rcpt@example.com\r\nSubject: message " +
                  std::to_string(i) + "\r\nMessage-ID: <" + std::to_string(i) +
                  "@example.com>\r\n\r\n";
  m += ".leading dot\r\n.\r\n..\r\nnormal line. with a dot\r\n";
  for (int line = 0; line < 12; ++line) {
    m += "Line " + std::to_string(line) + " of the body of a test message of about 1 KB, ok\r\n";
  }
  return m;
}

}  // namespace magnetic::smtp::testing
