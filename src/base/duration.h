// Parsing of the durations and rates users type on the command line.
#pragma once

#include <chrono>
#include <string_view>

#include "base/status.h"

namespace magnetic {

// "30s", "5m", "4h", "2d", "1500ms", or a bare number of seconds.
Result<std::chrono::milliseconds> parse_duration(std::string_view text);

// A throttle written N/period: "100/s", "20000/h", "5/30s". period may be any duration.
struct Rate {
  double count = 0;  // events allowed per period
  std::chrono::milliseconds period{1000};
  double per_second() const { return count * 1000.0 / static_cast<double>(period.count()); }
};
Result<Rate> parse_rate(std::string_view text);

}  // namespace magnetic
