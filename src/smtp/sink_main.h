// `magnetic sink`: runs the capture sink in the foreground until SIGINT or SIGTERM.
#pragma once

#include "smtp/sink.h"

namespace magnetic::smtp {

// Starts the sink on its own io_context, prints "listening on HOST:PORT" on stdout (flushed, so
// a script can read the port when it asked for port 0), runs until SIGINT or SIGTERM, then
// prints one line of counts. Returns the process exit code: 0, or 1 when the sink cannot start.
int run_sink_command(const SinkOptions& options);

}  // namespace magnetic::smtp
