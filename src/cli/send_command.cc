#include <csignal>
#include <cstdio>

#include "base/log.h"
#include "cli/commands.h"

namespace magnetic::cli {
namespace {
void on_signal(int) { campaign::request_stop(); }
}  // namespace

int send_command(const campaign::SendSettings& settings, bool print_json) {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGPIPE, SIG_IGN);
  auto report = campaign::run_send(settings);
  if (!report) {
    std::fprintf(stderr, "magnetic send: %s\n", report.status().message().c_str());
    return 1;
  }
  std::fputs(report->table.c_str(), stdout);
  if (print_json) std::puts(report->json.dump(2).c_str());
  if (!settings.report_path.empty())
    std::printf("  report written to %s\n", settings.report_path.c_str());
  return report->finished ? 0 : 3;
}

}  // namespace magnetic::cli
