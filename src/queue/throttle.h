// Throttles written N/period, enforced with GCRA (the generic cell rate algorithm).
//
// Strategy: GCRA keeps one number, the theoretical arrival time (TAT) of the next event. Each
// event is spaced by the emission interval T = period / N; up to `burst` events may come
// back to back. reserve() never refuses: it books the next slot and says how long the caller
// must wait for it, so concurrent senders are spread evenly instead of waking together.
// The cluster variant (Redis, an atomic GCRA step) will implement the same interface.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <mutex>

#include "base/duration.h"

namespace magnetic::queue {

class Throttle {
 public:
  using Clock = std::chrono::steady_clock;

  // burst: events allowed at once after an idle time (at least 1).
  explicit Throttle(Rate rate, double burst = 1);

  // Books one event and returns how long to wait before it may happen (zero: now).
  Clock::duration reserve(Clock::time_point now = Clock::now());

  // Whether an event could happen now without waiting (does not book it).
  bool would_allow(Clock::time_point now = Clock::now()) const;

  Rate rate() const { return rate_; }

 private:
  Rate rate_;
  Clock::duration interval_;   // T
  Clock::duration tolerance_;  // tau = (burst - 1) * T
  mutable std::mutex mu_;
  Clock::time_point tat_{};
};

}  // namespace magnetic::queue
