#include "events/tail.h"

#include <thread>

namespace magnetic::events {

Status tail(Outbox& outbox, const TailOptions& options, std::FILE* out,
            const std::atomic<bool>& stop) {
  constexpr size_t kPage = 500;
  int64_t after = options.after_seq;
  while (!stop) {
    auto page = outbox.read_log(after, kPage, options.filter);
    if (!page) return page.status();
    for (const auto& e : *page) {
      std::fwrite(e.json.data(), 1, e.json.size(), out);
      std::fputc('\n', out);
      after = e.seq;
    }
    if (std::fflush(out) != 0) return Status::io_error("cannot write the events");
    if (page->size() == kPage) continue;
    if (!options.follow) break;

    // Sleep in slices so that a stop is noticed soon.
    auto until = std::chrono::steady_clock::now() + options.poll;
    while (!stop && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(
          std::min<std::chrono::milliseconds>(options.poll, std::chrono::milliseconds(20)));
    }
  }
  return Status::ok();
}

}  // namespace magnetic::events
