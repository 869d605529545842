#include "queue/throttle.h"

#include <algorithm>

namespace magnetic::queue {

Throttle::Throttle(Rate rate, double burst) : rate_(rate) {
  auto period = std::chrono::duration_cast<Clock::duration>(rate.period);
  interval_ =
      Clock::duration(static_cast<Clock::rep>(static_cast<double>(period.count()) / rate.count));
  if (interval_.count() <= 0) interval_ = Clock::duration(1);
  tolerance_ = Clock::duration(
      static_cast<Clock::rep>(static_cast<double>(interval_.count()) * std::max(0.0, burst - 1)));
}

Throttle::Clock::duration Throttle::reserve(Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  Clock::time_point tat = std::max(tat_, now);
  Clock::time_point allowed_at = tat - tolerance_;
  tat_ = tat + interval_;
  return allowed_at > now ? allowed_at - now : Clock::duration::zero();
}

bool Throttle::would_allow(Clock::time_point now) const {
  std::lock_guard<std::mutex> lock(mu_);
  return std::max(tat_, now) - tolerance_ <= now;
}

}  // namespace magnetic::queue
