// What an SMTP reply means: the one place that decides whether a recipient is delivered,
// retried later, retried with the egress path slowed down, or bounced. SMTP sessions report
// replies; the scheduler applies the verdict; neither interprets reply codes itself.
//
// Strategy: the bounce class comes from the shared bounce rules (bounce_rules.h), the same
// rules the feedback parser applies to DSNs, so one reply text gets one class either way. The
// action follows the reply code: 4xx retries (and slows the egress path for a 421 or a class
// that speaks of rate, connections or reputation), 5xx bounces; hard only for a 5xx whose
// class says the address itself is bad. A refusal of the egress source itself (its IP on a
// block list or its missing reverse DNS, 4xx or 5xx: classes blocked and requireptr; its
// reputation, 5xx: badreputation) suspends the source toward that destination and defers the
// recipient: the recipient is not at fault, and the same mail goes through once the source is
// delisted or from another source.
#pragma once

#include <string>

#include "base/status.h"
#include "smtp/reply.h"

namespace magnetic::feedback {

enum class Action {
  kDelivered,         // 2xx after the final dot
  kRetry,             // transient: defer the recipient with backoff
  kRetryAndThrottle,  // transient, and the receiver asks us to slow down: defer and slow the path
  kSuspendSource,     // the receiver refuses our egress source: defer, and rest the path a while
  kBounce,            // permanent: the recipient fails now
};
const char* action_name(Action a);

struct Verdict {
  Action action = Action::kRetry;
  std::string reason;             // bounce class, e.g. "userunknown"; "delivered" for kDelivered
  bool hard = false;              // a permanent failure that should suppress the address
  bool close_connection = false;  // the session must not be reused (421, network errors)
};

// Classifies the reply that decided a recipient's attempt: the failing MAIL/RCPT/DATA reply,
// the reply to the final dot, or a connection-level failure (code 0 or a failed greeting).
Verdict classify_reply(const smtp::Reply& reply);

// The reply that stands for a destination that could not be routed: a null MX as 556 5.1.10
// (RFC 7505 section 4.1), another permanent DNS failure (no such domain) as 550 5.1.2, a DNS
// failure worth retrying as 451 4.4.3; an ok status means the lookup found no target. Stage
// "connect".
smtp::Reply routing_failure_reply(const std::string& domain, const Status& lookup);

}  // namespace magnetic::feedback
