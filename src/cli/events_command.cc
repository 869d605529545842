// `magnetic events tail`: the event records logged in a data directory's outbox, one JSON line
// each, exactly as they were delivered to the event destinations.
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "events/outbox.h"
#include "events/tail.h"

namespace magnetic::cli {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_stop_signal(int) { g_stop = true; }

}  // namespace

int events_tail_command(const EventsTailArgs& args) {
  events::TailOptions options;
  options.after_seq = args.after;
  options.follow = args.follow;
  options.filter.configuration_set = args.configuration_set;
  if (!args.type.empty()) {
    auto type = events::event_type_from_api_name(args.type);
    if (!type) {
      std::fprintf(stderr, "magnetic events tail: --type: %s\n", type.status().message().c_str());
      return 1;
    }
    options.filter.type = *type;
  }

  // Opening would create an empty outbox; a data directory without one is more likely a typo.
  auto path = std::filesystem::path(args.data_dir) / events::kOutboxFileName;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    std::fprintf(stderr, "magnetic events tail: no event outbox at '%s'\n", path.c_str());
    return 1;
  }
  auto outbox = events::Outbox::open(path.string());
  if (!outbox) {
    std::fprintf(stderr, "magnetic events tail: %s\n", outbox.status().message().c_str());
    return 1;
  }

  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  Status s = events::tail(**outbox, options, stdout, g_stop);
  if (!s) {
    std::fprintf(stderr, "magnetic events tail: %s\n", s.message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace magnetic::cli
