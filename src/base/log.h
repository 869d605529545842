// Diagnostics logging: one spdlog logger per subsystem ("send", "smtp", "spool", ...),
// all writing to stderr. Disposition records are not diagnostics: they go to their own
// JSON-lines file (see queue/disposition_log.h).
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace magnetic {

// The logger for a subsystem, created on first use. Thread-safe.
std::shared_ptr<spdlog::logger> logger(const std::string& subsystem);

// Sets the level of every logger: "debug", "info", "warn", "error", "off".
void set_log_level(const std::string& level);

}  // namespace magnetic
