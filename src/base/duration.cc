#include "base/duration.h"

#include <charconv>
#include <string>

namespace magnetic {

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text.empty()) return Status::invalid("empty duration");
  double number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || number < 0) {
    return Status::invalid("bad duration '" + std::string(text) + "': expected e.g. 30s, 5m, 4h");
  }
  std::string_view unit(end, text.data() + text.size() - end);
  double ms_per_unit = 0;
  if (unit.empty() || unit == "s")
    ms_per_unit = 1000;
  else if (unit == "ms")
    ms_per_unit = 1;
  else if (unit == "m" || unit == "min")
    ms_per_unit = 60'000;
  else if (unit == "h")
    ms_per_unit = 3'600'000;
  else if (unit == "d")
    ms_per_unit = 86'400'000;
  else
    return Status::invalid("bad duration unit '" + std::string(unit) + "' in '" +
                           std::string(text) + "'");
  // Longer than a century is a typo, and would overflow the millisecond count.
  constexpr double kMaxMs = 100.0 * 365 * 86'400'000;
  if (number * ms_per_unit > kMaxMs) {
    return Status::invalid("duration '" + std::string(text) + "' is longer than 100 years");
  }
  return std::chrono::milliseconds(static_cast<long long>(number * ms_per_unit));
}

Result<Rate> parse_rate(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    return Status::invalid("bad rate '" + std::string(text) + "': expected N/period, e.g. 100/s");
  }
  double count = 0;
  auto head = text.substr(0, slash);
  auto [end, ec] = std::from_chars(head.data(), head.data() + head.size(), count);
  if (ec != std::errc() || end != head.data() + head.size() || count <= 0) {
    return Status::invalid("bad rate '" + std::string(text) + "': count must be a positive number");
  }
  auto tail = text.substr(slash + 1);
  std::string period_text(tail);
  if (!period_text.empty() && !(period_text[0] >= '0' && period_text[0] <= '9')) {
    period_text = "1" + period_text;  // "100/s" means per one second
  }
  auto period = parse_duration(period_text);
  if (!period) return period.status();
  if (period->count() <= 0)
    return Status::invalid("bad rate '" + std::string(text) + "': zero period");
  return Rate{count, *period};
}

}  // namespace magnetic
