// The feedback loop of `magnetic serve`: what happens to a message after it was accepted, turned
// into the actions and records that keep a sender's reputation.
//
//  - Delivery attempts (DeliveryEngine's AttemptListener): Delivery, DeliveryDelay and Bounce
//    events; a hard bounce suppresses the address, soft bounces are counted.
//  - Bounces and complaints coming back (the inbound SMTP listener and the HTTP endpoint):
//    parsed by feedback::parse_feedback, matched to the recipient by the VERP token of the
//    address they were sent to, else by the returned message's Message-ID; then suppression,
//    Bounce or Complaint events, and the reputation counters.
//  - The reputation guard: the bounce and complaint rates of the account and of each
//    configuration set over a sliding window. Past the review thresholds the account is put on
//    PROBATION (a warning); past the pause thresholds sending is paused (the account, or the
//    configuration set), with the reason in the log, the account's details and the event log.
//    Sending resumes through the API (PutAccountSendingAttributes,
//    PutConfigurationSetSendingOptions), and the window then starts again.
//
// Events are built only for configuration sets whose event destinations want them, and go
// through the Publisher into the durable outbox.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "feedback/report_parser.h"
#include "service/delivery.h"
#include "service/publisher.h"
#include "smtp/reply.h"
#include "smtp/submission_server.h"
#include "spool/message_spool.h"
#include "store/store.h"

namespace magnetic::service {

struct ReputationThresholds {
  bool enabled = true;
  std::chrono::milliseconds window{std::chrono::hours(24)};
  // Rates are judged only once this many recipients were sent in the window: 1 bounce in 3 is
  // no sign of a bad list.
  uint64_t min_sent = 200;
  double review_bounce_rate = 0.05, pause_bounce_rate = 0.10;          // SES: 5% and 10%
  double review_complaint_rate = 0.001, pause_complaint_rate = 0.005;  // SES: 0.1% and 0.5%
};

struct FeedbackOptions {
  // The domain of the VERP envelope senders (bounce+<token>@bounce_domain); "" turns VERP off.
  std::string bounce_domain;
  std::string verp_key;
  // Addresses that receive feedback-loop (ARF) reports, lower case.
  std::vector<std::string> complaint_addresses;
  // This many soft bounces of one address about its mailbox (full, inactive, expired), each
  // within 30 days of the one before, suppress it (reason BOUNCE); a hard bounce ends the run
  // (it suppresses anyway). A successful handoff does not end it: the receiver's 250 comes before
  // its own bounce. 0: soft bounces never suppress.
  int soft_bounce_limit = 3;
  ReputationThresholds reputation;
  std::string reporting_mta;                                  // our EHLO name, for records
  std::chrono::milliseconds max_age{std::chrono::hours(24)};  // for DeliveryDelay's expiration
  // Called when the guard has paused a configuration set ("" for the account), after the store
  // says so: a caller that caches sets drops its copy, so the next send is refused at once.
  std::function<void(const std::string& scope)> on_paused;
};

// The reasons (BOUNCE, COMPLAINT) that suppress for a message of this configuration set: the
// set's SuppressionOptions when it has them, else the account's (as SES).
std::vector<std::string> effective_suppressed_reasons(
    const store::Account& account, const std::optional<store::ConfigurationSet>& set);

// What happened to one report, for callers and tests.
struct FeedbackResult {
  feedback::FeedbackKind kind = feedback::FeedbackKind::kOther;
  size_t matched = 0;     // recipients of ours it was about
  size_t unmatched = 0;   // recipients it names that we could not match
  size_t repeated = 0;    // matched, but already acted on for the same message
  size_t suppressed = 0;  // addresses put on the suppression list
};

class FeedbackLoop {
 public:
  FeedbackLoop(FeedbackOptions options, store::Store& store, spool::MessageSpool& spool,
               Publisher& publisher);
  ~FeedbackLoop();

  // SMTP listener: whether an RCPT TO is one of ours (a VERP address with a valid token, a
  // complaint address, postmaster of the bounce domain).
  smtp::Reply check_recipient(const std::string& mail_from, const std::string& rcpt);
  // SMTP listener: a whole inbound message. 250 once its effects are durable; 451 when they
  // could not be recorded (the sending MTA tries again).
  smtp::Reply receive(const smtp::SubmissionEnvelope& envelope);

  // One raw report (from SMTP or the HTTP endpoint). verp_token: the token of the address it
  // was delivered to, "" if none. kIoError when the store failed.
  Result<FeedbackResult> process(std::string_view raw, const std::string& verp_token);

  // Delivery attempts (the engine's AttemptListener).
  void on_attempts(const std::vector<Attempt>& attempts);

  // Accepted messages. publish_accepted appends their Send events, and a Bounce event
  // (Permanent, OnAccountSuppressionList) per suppressed recipient, as SES publishes them; it is
  // called just before the messages are committed to the spool, so that no Delivery event of
  // theirs can come before their Send. count_accepted adds them to the reputation's sent counts
  // once they are durable. on_accepted does both (tests).
  struct Accepted {
    std::string message_id, configuration_set, mail_json;
    uint64_t recipients = 0;  // not suppressed
    std::vector<std::string> suppressed;
  };
  void publish_accepted(const std::vector<Accepted>& messages);
  void count_accepted(const std::vector<Accepted>& messages);
  void on_accepted(const std::vector<Accepted>& messages) {
    publish_accepted(messages);
    count_accepted(messages);
  }

  // Runs the reputation guard on the account and a configuration set now (tests; normally
  // after each group of delivery attempts and each report).
  void check_reputation(const std::string& configuration_set);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace magnetic::service
