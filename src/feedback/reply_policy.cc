#include "feedback/reply_policy.h"

#include "feedback/bounce_rules.h"

namespace magnetic::feedback {

const char* action_name(Action a) {
  switch (a) {
    case Action::kDelivered:
      return "delivered";
    case Action::kRetry:
      return "retry";
    case Action::kRetryAndThrottle:
      return "slow the path";
    case Action::kSuspendSource:
      return "suspend the egress source";
    case Action::kBounce:
      return "bounce";
  }
  return "unknown";
}

Verdict classify_reply(const smtp::Reply& reply) {
  Verdict v;
  if (reply.positive()) {
    v.action = Action::kDelivered;
    v.reason = "delivered";
    return v;
  }

  // No reply at all: the connection failed, timed out or was dropped.
  if (reply.no_reply()) {
    v.action = Action::kRetry;
    v.reason = "networkerror";
    v.close_connection = true;
    return v;
  }

  // The class comes from the shared rules, exactly as for a DSN carrying this reply.
  BounceClass c = bounce_rules().classify(
      {reply.enhanced, reply.code, reply.text, /*permanent=*/reply.permanent(),
       /*after_data=*/reply.stage == "data" || reply.stage == "dot"});
  v.reason = c.reason;

  // A 4xx about reputation is a rate limit ("temporarily rate limited due to IP reputation"):
  // slowing the path answers it; a 5xx about it, a listing or the missing PTR refuse the source.
  // An addressing status (X.1.Y: the mailbox, the address) says the reply is about the recipient:
  // never a reason to rest the whole destination, whatever its text holds.
  bool about_address = reply.enhanced.size() > 2 && reply.enhanced[1] == '.' &&
                       reply.enhanced[2] == '1' &&
                       (reply.enhanced.size() == 3 || reply.enhanced[3] == '.');
  if (!about_address && (v.reason == "blocked" || v.reason == "requireptr" ||
                         (v.reason == "badreputation" && !reply.transient()))) {
    v.action = Action::kSuspendSource;
    v.close_connection = true;
    return v;
  }

  if (reply.transient()) {
    // The receiver asks us to slow down: by a 421 (it closes the session) or by the class.
    bool slow = reply.code == 421 || v.reason == "toomanyconn" || v.reason == "speeding" ||
                v.reason == "badreputation";
    v.action = slow ? Action::kRetryAndThrottle : Action::kRetry;
    v.close_connection = reply.code == 421;
    return v;
  }

  v.action = Action::kBounce;
  v.hard = c.hard;
  return v;
}

smtp::Reply routing_failure_reply(const std::string& domain, const Status& lookup) {
  bool permanent = !lookup.is_ok() && lookup.code() == StatusCode::kPermanent;
  bool null_mx = permanent && lookup.message().find("null MX") != std::string::npos;
  smtp::Reply r;
  r.code = null_mx ? 556 : permanent ? 550 : 451;
  r.enhanced = null_mx ? "5.1.10" : permanent ? "5.1.2" : "4.4.3";
  r.text = lookup.is_ok() ? "no route to " + domain : lookup.message();
  r.stage = "connect";
  return r;
}

}  // namespace magnetic::feedback
