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

}  // namespace magnetic::queue
