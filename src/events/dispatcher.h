// The event dispatcher: delivers what the outbox holds to each event destination.
//
//   webhook  HTTP/1.1 POST of the record (Content-Type: application/json) to an http:// or
//            https:// URL; https verifies the peer against the system's CA store or
//            DispatcherOptions::ca_file, host name included. Each request carries
//              X-Magnetic-Event-Id: <sequence number>   stable across retries: drop duplicates
//              X-Magnetic-Timestamp: <Unix seconds of this attempt>
//              X-Magnetic-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//            (the signature only when a signing secret is set). Any 2xx is delivered; another
//            status, a timeout or a connection failure is retried. One keep-alive connection per
//            destination.
//   file     the record and "\n" appended to a JSON-lines file (created 0600), fsync per batch.
//
// Retry schedule: exponential from retry_initial, doubling, capped at retry_max, plus up to
// `jitter` of the delay at random; retried until the event is older than max_age, then dropped
// with a log line. Only a destination's head is attempted, so its events arrive in order and a
// failing destination waits alone.
//
// Delivery is at-least-once. A row is marked delivered only after the receiver's 2xx or the
// file's fsync, so nothing is lost to a kill -9; a kill between those and the mark sends the
// event again after restart (same X-Magnetic-Event-Id), and a file may then hold a line twice.
//
// Threading: one thread of its own running an Asio io_context; every destination is a coroutine
// on it. start(), stop() and wake() may be called from any thread; the outbox must outlive the
// dispatcher.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "events/outbox.h"

namespace magnetic::events {

struct DispatcherOptions {
  std::string signing_secret;  // HMAC key of X-Magnetic-Signature; empty: no signature header
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};  // per connect, write and read
  std::chrono::milliseconds retry_initial{std::chrono::seconds(1)};
  std::chrono::milliseconds retry_max{std::chrono::minutes(5)};
  double jitter = 0.1;  // up to this fraction of the delay is added at random (0: none)
  std::chrono::milliseconds max_age{std::chrono::hours(24)};
  size_t batch_size = 100;  // events claimed per destination at once (one fsync for a file)
  std::string ca_file;      // PEM CAs for https; empty: the system's default store
  std::chrono::milliseconds prune_interval{std::chrono::hours(1)};
  int64_t retention_ms = kDefaultRetentionMs;  // of the event log
  std::string user_agent = "magnetic-events/1";
  // Whether a destination (by id) still exists and is enabled; events still waiting for one that
  // does not are dropped rather than delivered (a deleted destination stops receiving, as in
  // SES). Empty: every destination exists. Called on the dispatcher's thread.
  std::function<bool(const std::string& destination_id)> destination_exists;
};

// Totals since start(), for metrics and tests.
struct DispatcherStats {
  uint64_t delivered = 0;        // events delivered, all destinations
  uint64_t failed_attempts = 0;  // attempts that will be retried, or led to a drop
  uint64_t dropped = 0;          // events given up (older than max_age)
};

class Dispatcher {
 public:
  Dispatcher(Outbox& outbox, DispatcherOptions options);
  ~Dispatcher();  // stop()s
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Starts the thread. Fails (and starts nothing) if ca_file cannot be loaded. Once only.
  Status start();
  // Abandons attempts under way (they are made again by the next start, from the outbox) and
  // joins the thread. Idempotent.
  void stop();
  // New events were appended: look at the outbox now rather than at the next due time.
  void wake();

  DispatcherStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "v1=" and the lower-case hex HMAC-SHA256 of timestamp + "." + body under secret: what
// X-Magnetic-Signature carries.
std::string webhook_signature(std::string_view secret, std::string_view timestamp,
                              std::string_view body);

// The delay before the next attempt after `failed_attempts` failures, without jitter.
std::chrono::milliseconds retry_delay(const DispatcherOptions& options, int failed_attempts);

}  // namespace magnetic::events
