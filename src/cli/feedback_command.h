// `magnetic feedback`: read inbound feedback and classify replies from the command line.
//
//   magnetic feedback parse [--rules FILE] FILE...   one JSON line per recipient in each message
//   magnetic feedback classify [--rules FILE] "550 5.1.1 <a@b>: user unknown"
//
// Both use the same bounce rules as delivery (src/feedback/bounce_rules.tsv, plus --rules).
#pragma once

#include <CLI/CLI.hpp>

namespace magnetic::cli {

// Registers the `feedback` subcommand and its `parse` and `classify` subcommands on `app`.
// Their callbacks run the work; a failure exits through CLI::RuntimeError with status 1.
void add_feedback_commands(CLI::App& app);

}  // namespace magnetic::cli
