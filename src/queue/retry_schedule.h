// Retry schedule for deferred recipients: exponential from `initial`, multiplied by `factor`
// after each attempt, capped at `max_delay`. A recipient's age counts from its message's
// acceptance where that is known (as Postfix's maximal_queue_lifetime counts from arrival), else
// from its first attempt. No retry is scheduled past the age limit: the last one comes at the
// limit itself, and a recipient that fails at or after it expires. So a recipient expires
// `max_age` after acceptance, the time SES's DeliveryDelay announces as expirationTime. Jitter (a
// fraction of the delay, drawn at random) keeps recipients deferred together from coming back
// together.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "spool/spool.h"

namespace magnetic::queue {

struct RetrySchedule {
  std::chrono::milliseconds initial{std::chrono::minutes(1)};
  double factor = 2.0;
  std::chrono::milliseconds max_delay{std::chrono::hours(1)};
  std::chrono::milliseconds max_age{std::chrono::hours(4)};
  double jitter = 0.1;  // +/- this fraction of the delay

  // Delay before the next attempt after `attempts` attempts (>= 1) have been made.
  // random01 is a number in [0, 1) for the jitter.
  std::chrono::milliseconds delay_after(int attempts, double random01 = 0.5) const;

  // True when a recipient whose age counts from since_ms has reached the limit at now_ms.
  bool expired(int64_t since_ms, int64_t now_ms) const {
    return now_ms - since_ms >= max_age.count();
  }
  // When to try next: at next_ms, or at the limit if that comes first.
  int64_t next_try(int64_t since_ms, int64_t next_ms) const {
    return std::min(next_ms, since_ms + static_cast<int64_t>(max_age.count()));
  }

  // Where a recipient's age counts from: its message's acceptance, else its first attempt, else
  // now.
  static int64_t age_origin(const spool::Claimed& r, int64_t now_ms) {
    if (r.accepted_ms) return r.accepted_ms;
    return r.first_attempt_ms ? r.first_attempt_ms : now_ms;
  }

  // The outcome of a recipient claimed while its destination is suspended until until_ms: deferred
  // without an attempt (reason "suspended") to then or to its age limit, whichever comes first,
  // or expired when it has reached the limit. A recipient never attempted counts its first
  // postponement as its first attempt, where its age has no other origin.
  spool::Outcome postponed(const spool::Claimed& r, int64_t now_ms, int64_t until_ms) const;
};

}  // namespace magnetic::queue
