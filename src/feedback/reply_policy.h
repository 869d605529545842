// What an SMTP reply means: the one place that decides whether a recipient is delivered,
// retried later, retried with the egress path slowed down, or bounced. SMTP sessions report
// replies; the scheduler applies the verdict; neither interprets reply codes itself.
//
// Strategy: the enhanced status code (RFC 3463) decides when the server gave a valid one
// (it was validated on parsing); the diagnostic text refines the class (a 5.7.1 that speaks of
// spam is "spamdetected", one that speaks of a block list is "blocked"); the basic reply code
// decides the rest. Class names are the reasons shared by bounce tools (userunknown,
// mailboxfull, toomanyconn, ...).
#pragma once

#include <string>

#include "smtp/reply.h"

namespace magnetic::feedback {

enum class Action {
  kDelivered,         // 2xx after the final dot
  kRetry,             // transient: defer the recipient with backoff
  kRetryAndThrottle,  // transient, and the receiver asks us to slow down: defer and slow the path
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

}  // namespace magnetic::feedback
