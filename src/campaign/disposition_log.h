// The disposition log: one JSON line per delivery attempt, apart from diagnostics, so that
// tools can follow what happened to each recipient. Lines are buffered and written out by
// flush(), which the engine calls after each group commit of the spool.
//
// Not thread-safe: the engine's control thread owns it.
#pragma once

#include <cstdio>
#include <string>

#include "base/status.h"

namespace magnetic::campaign {

struct Disposition {
  int64_t time_ms = 0;
  std::string campaign;
  std::string message_id;
  std::string recipient;
  uint64_t row = 0;
  std::string status;  // delivered, deferred, bounced, expired, failed
  std::string reason;
  std::string reply;
  int attempt = 0;
  double duration_ms = 0;
  std::string mx;
};

class DispositionLog {
 public:
  ~DispositionLog();
  Status open(const std::string& path);  // appends
  void add(const Disposition& d);
  Status flush();

 private:
  FILE* file_ = nullptr;
  std::string pending_;
};

// RFC 3339 UTC with milliseconds: "2026-12-03T22:40:00.123Z".
std::string format_time_ms(int64_t ms);

}  // namespace magnetic::campaign
