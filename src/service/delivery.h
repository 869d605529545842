// The delivery engine of `magnetic serve`: runs for as long as the service does, taking due
// recipients of stored messages from the message spool, handing them to delivery sessions per
// destination domain, and committing each outcome (delivered, deferred, bounced, expired) in
// groups, with a line per attempt in the disposition log.
//
// The moving parts are those of a campaign run (campaign/send.cc): queue::Scheduler decides how
// many sessions each domain gets and when it must rest; smtp::SmtpClient speaks SMTP;
// feedback::classify_reply decides what each reply means. Messages are signed at delivery with
// the key of the identity they were accepted for, so a key rotated in the store applies to mail
// still waiting.
//
// Threads: one control thread (claim, route, commit) and a pool of I/O threads running the
// sessions as coroutines. DNS lookups run on the control thread (dns::Resolver blocks).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "dkim/signer.h"
#include "dns/resolver.h"
#include "smtp/client.h"
#include "spool/message_spool.h"

namespace magnetic::service {

struct DeliveryOptions {
  int domain_connections = 10;
  int total_connections = 200;
  size_t claim_batch = 1000;
  std::chrono::milliseconds max_age{std::chrono::hours(24)};  // SES keeps retrying ~ 14 h
  std::chrono::milliseconds retry_initial{std::chrono::minutes(1)};
  std::chrono::milliseconds retry_max{std::chrono::hours(1)};
  std::chrono::milliseconds slow_backoff{std::chrono::seconds(5)};
  // How long a destination that refuses our egress source (feedback::Action::kSuspendSource)
  // gets no mail from it; its recipients are deferred to the end of that time.
  std::chrono::milliseconds suspend_for{std::chrono::hours(1)};
  std::string ehlo_name = "localhost";
  smtp::TlsMode tls = smtp::TlsMode::kOpportunistic;
  std::optional<smtp::Credentials> relay_auth;
  int io_threads = 0;  // 0: one per core
  // Scheduling priority of the delivery threads, as nice(1) counts (0..19). Accepting is what
  // clients wait on; delivery is throughput and catches up: on a busy machine the API and SMTP
  // submission answer first. 0 gives delivery the same share as everything else.
  int nice = 10;
  std::string disposition_log;  // JSON lines, one per attempt; empty: none
  // VERP: when set, each recipient's mail goes out with MAIL FROM bounce+<token>@verp_domain
  // (feedback/verp.h) instead of the message's envelope sender, so that its bounces come back to
  // the feedback listener naming the recipient. verp_key signs the tokens.
  std::string verp_domain;
  std::string verp_key;
};

// One finished attempt, as the feedback loop sees it (events, suppression, reputation).
struct Attempt {
  spool::Claimed recipient;
  spool::Outcome outcome;
  smtp::Reply reply;
  std::string mx;  // host:port the reply came from; "" when no connection was made
  // From the stored message when it was read for this attempt (known = true); otherwise the
  // listener reads them from the spool if it needs them.
  bool known = false;
  std::string configuration_set;
  int64_t accepted_ms = 0;
  std::string mail_json;
};
// Called on the control thread with each group of attempts before their outcomes are committed
// (so a crash in between repeats the attempts' events rather than lose them). Must not block
// for long.
using AttemptListener = std::function<void(const std::vector<Attempt>&)>;

struct DeliveryStats {
  std::atomic<uint64_t> delivered{0}, bounced{0}, deferred{0}, expired{0}, failed{0};
  std::atomic<uint64_t> possible_duplicates{0};  // replies lost after the final dot
};

// The signer for an identity, or nullptr to send unsigned (signing disabled, an address identity
// without a key); an error when the identity no longer exists, which fails the recipient rather
// than send its mail unsigned. Called on I/O threads; must be thread-safe and fast (cache).
using SignerLookup =
    std::function<Result<std::shared_ptr<const dkim::DkimSigner>>(const std::string& identity)>;

// What configuration sets ask of delivery. Called on I/O threads; must be thread-safe.
struct MessagePolicy {
  bool require_tls = false;  // DeliveryOptions.TlsPolicy REQUIRE
};
using PolicyLookup = std::function<MessagePolicy(const std::string& configuration_set)>;
// Whether a recipient is on the suppression list for the reasons in force for its message's
// configuration set. Asked before every attempt: an address suppressed after its message was
// accepted (a bounce of another message, a complaint, PutSuppressedDestination) is not mailed.
using SuppressionCheck =
    std::function<bool(const std::string& email, const std::string& configuration_set)>;

class DeliveryEngine {
 public:
  DeliveryEngine(DeliveryOptions options, spool::MessageSpool& spool, dns::Resolver& resolver,
                 SignerLookup signers, PolicyLookup policies, AttemptListener listener = {});
  ~DeliveryEngine();

  // Before start(): the check asked before each attempt (none: only acceptance checks).
  void set_suppression_check(SuppressionCheck check);

  // Recovers in-flight recipients (a crash), then starts the threads.
  Status start();
  // Lets sessions finish their message (up to `grace`), records outcomes, and joins.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
  // New mail was accepted: claim without waiting for the next poll.
  void wake();

  // Writes the disposition line of a recipient that was accepted and never attempted because it
  // is suppressed (its spool state is set at acceptance). Thread-safe.
  void record_suppressed(const std::string& message_id, const std::string& recipient,
                         const std::string& configuration_set);

  const DeliveryStats& stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace magnetic::service
