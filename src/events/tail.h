// Printing the event log: what `magnetic events tail` does, apart from the command line.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>

#include "base/status.h"
#include "events/outbox.h"

namespace magnetic::events {

struct TailOptions {
  int64_t after_seq = 0;  // print events with a greater sequence number
  LogFilter filter;
  bool follow = false;  // keep printing new events until `stop`
  std::chrono::milliseconds poll{200};
};

// Writes each matching record, as logged, and "\n" to `out`, oldest first, flushing after each
// read. Without follow it returns once the log is printed; with follow it polls the outbox
// (which another process may be writing) until `stop` becomes true. A read error ends it.
Status tail(Outbox& outbox, const TailOptions& options, std::FILE* out,
            const std::atomic<bool>& stop);

}  // namespace magnetic::events
