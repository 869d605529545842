#include "campaign/disposition_log.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace magnetic::campaign {

std::string format_time_ms(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

DispositionLog::~DispositionLog() {
  (void)flush();
  if (file_) std::fclose(file_);
}

Status DispositionLog::open(const std::string& path) {
  file_ = std::fopen(path.c_str(), "ab");
  if (!file_) {
    return Status::io_error("cannot open disposition log '" + path + "': " + std::strerror(errno));
  }
  return Status::ok();
}

void DispositionLog::add(const Disposition& d) {
  nlohmann::json j = {
      {"time", format_time_ms(d.time_ms)},
      {"campaign", d.campaign},
      {"message_id", d.message_id},
      {"recipient", d.recipient},
      {"row", d.row},
      {"status", d.status},
      {"reason", d.reason},
      {"reply", d.reply},
      {"attempt", d.attempt},
      {"duration_ms", static_cast<double>(static_cast<int64_t>(d.duration_ms * 1000)) / 1000},
      {"mx", d.mx}};
  pending_ += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  pending_ += '\n';
}

Status DispositionLog::flush() {
  if (!file_ || pending_.empty()) return Status::ok();
  size_t written = std::fwrite(pending_.data(), 1, pending_.size(), file_);
  pending_.clear();
  if (written == 0 || std::fflush(file_) != 0) {
    return Status::io_error(std::string("disposition log write failed: ") + std::strerror(errno));
  }
  return Status::ok();
}

}  // namespace magnetic::campaign
