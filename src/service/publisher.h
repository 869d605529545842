// The service's door to event publishing: which configuration sets want which events (their
// event destinations in the store, cached briefly), and the append of built records to the
// durable outbox that events::Dispatcher delivers from.
//
// Thread-safety: any thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "events/outbox.h"
#include "events/record.h"
#include "store/store.h"

namespace magnetic::service {

struct PendingEvent {
  std::string configuration_set, message_id;
  events::EventType type = events::EventType::kSend;
  std::string json;  // the whole record
};

class Publisher {
 public:
  // File destinations are written under events_dir; wake() is called after each append.
  Publisher(store::Store& store, events::Outbox& outbox, std::string events_dir,
            std::function<void()> wake);

  // Whether an enabled event destination of the set matches the type.
  bool wants(const std::string& configuration_set, events::EventType type);

  // Whether the destination "<set>/<name>" exists and is enabled (the dispatcher drops what
  // waits for one that does not).
  bool destination_exists(const std::string& destination_id);

  // Appends the events, each to the destinations of its set that want it (none: it is only
  // logged, for `magnetic events tail`). Durable when it returns ok.
  Status publish(const std::vector<PendingEvent>& events);

 private:
  struct SetDestinations {
    std::vector<std::pair<events::Destination, std::vector<events::EventType>>> destinations;
    std::chrono::steady_clock::time_point expires;
  };
  const SetDestinations& destinations_locked(const std::string& configuration_set);

  store::Store& store_;
  events::Outbox& outbox_;
  std::string events_dir_;
  std::function<void()> wake_;
  std::mutex mu_;
  std::map<std::string, SetDestinations> cache_;
};

}  // namespace magnetic::service
