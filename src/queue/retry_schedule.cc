#include "queue/retry_schedule.h"

#include <algorithm>
#include <cmath>

namespace magnetic::queue {

std::chrono::milliseconds RetrySchedule::delay_after(int attempts, double random01) const {
  double delay = static_cast<double>(initial.count()) * std::pow(factor, std::max(0, attempts - 1));
  delay = std::min(delay, static_cast<double>(max_delay.count()));
  delay *= 1.0 + jitter * (2.0 * random01 - 1.0);
  return std::chrono::milliseconds(static_cast<int64_t>(std::max(1.0, delay)));
}

spool::Outcome RetrySchedule::postponed(const spool::Claimed& r, int64_t now_ms,
                                        int64_t until_ms) const {
  spool::Outcome o;
  o.id = r.id;
  o.attempts = r.attempts;  // no attempt is made
  o.first_attempt_ms = r.first_attempt_ms ? r.first_attempt_ms : now_ms;
  o.reason = "suspended";
  o.reply = "not attempted: the destination refuses our egress source";
  int64_t origin = age_origin(r, now_ms);
  if (expired(origin, now_ms)) {
    o.state = spool::RecipientState::kExpired;
    o.reply = "expired while its destination rests: it refuses our egress source";
  } else {
    o.state = spool::RecipientState::kDeferred;
    o.next_attempt_ms = next_try(origin, std::max(until_ms, now_ms));
  }
  return o;
}

}  // namespace magnetic::queue
