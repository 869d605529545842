// A capture SMTP server for tests and demos: accepts every message and stores it in a Maildir,
// with the envelope in X-Envelope-From / X-Envelope-To fields added at the top of each file.
// On request it plays a faulty receiver, for retry and deferral tests.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"

namespace magnetic::smtp {

struct SinkFaults {
  // Reply to RCPT with `rcpt_code` (e.g. 451 or 550) for the first `rcpt_fail_times` attempts of
  // each recipient address; 0 times with a code set means always.
  int rcpt_code = 0;
  int rcpt_fail_times = 0;
  std::string rcpt_text;  // default text chosen from the code, e.g. "4.7.1 try again later"
  // Answer 421 and close after this many messages on one connection (0: never).
  int disconnect_after = 0;
  // Delay before every reply. Replies to a pipelined group go out together after one delay.
  std::chrono::milliseconds reply_delay{0};
  // Drop the connection in the middle of DATA for every n-th message (0: never), counted over
  // all connections: the sink closes when the DATA command arrives, after answering the
  // commands before it, so the client never gets to send the final dot.
  int drop_mid_data_every = 0;
  // Read the whole message of every n-th message (0: never), then close without answering the
  // final dot: the case where a retry may duplicate a message the server took.
  int drop_after_dot_every = 0;
};

struct SinkOptions {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 0;  // 0: an ephemeral port
  std::string maildir;       // empty: count messages, store nothing
  std::string hostname = "sink.test";
  SinkFaults faults;
  uint64_t size_limit = 50 * 1024 * 1024;  // advertised in EHLO SIZE, enforced
  // Offer STARTTLS with a self-signed certificate for `hostname`, made in memory at start.
  bool starttls = false;
};

struct SinkStats {
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> messages{0};    // messages accepted (250 after the dot)
  std::atomic<uint64_t> recipients{0};  // recipients accepted in those messages
  std::atomic<uint64_t> rejected{0};    // RCPT replies with a fault code
};

// Each stored message is one file in maildir/new (written to maildir/tmp, then renamed), named
// "<seconds>.M<microseconds>P<pid>Q<sequence>.<hostname>": the X-Envelope-From line, one
// X-Envelope-To line per accepted recipient, then the message as received after removing the
// dot-stuffing, with its CRLF line endings kept.
//
// Thread-safety: start, port, stats and stop may be called from any thread; the io_context may
// run on several threads. Messages are written to disk on the io thread (no fsync): this is a
// test sink, not a durable MTA.
class SinkServer {
 public:
  static Result<std::unique_ptr<SinkServer>> start(boost::asio::io_context& io,
                                                   SinkOptions options);
  ~SinkServer();

  uint16_t port() const;
  const SinkStats& stats() const;
  // Stops accepting and closes every connection (asynchronously, on the io_context); the
  // io_context's run() returns once the sessions have wound down. Called by the destructor.
  void stop();

  struct Impl;
  explicit SinkServer(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace magnetic::smtp
