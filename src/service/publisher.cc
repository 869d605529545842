#include "service/publisher.h"

#include <algorithm>

#include "base/log.h"

namespace magnetic::service {
namespace {

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Publisher::Publisher(store::Store& store, events::Outbox& outbox, std::string events_dir,
                     std::function<void()> wake)
    : store_(store), outbox_(outbox), events_dir_(std::move(events_dir)), wake_(std::move(wake)) {}

const Publisher::SetDestinations& Publisher::destinations_locked(const std::string& set) {
  auto now = std::chrono::steady_clock::now();
  auto it = cache_.find(set);
  if (it != cache_.end() && it->second.expires > now) return it->second;
  if (cache_.size() > 10000) cache_.clear();
  SetDestinations d;
  d.expires = now + std::chrono::seconds(2);
  if (!set.empty()) {
    auto listed = store_.list_event_destinations(set);
    if (listed) {
      for (const auto& e : *listed) {
        if (!e.enabled) continue;
        events::Destination dest;
        dest.id = set + "/" + e.name;
        if (e.kind == store::EventDestination::Kind::kFile) {
          dest.kind = events::Destination::Kind::kFile;
          dest.target = events_dir_ + "/" + e.target + ".jsonl";
        } else {
          dest.kind = events::Destination::Kind::kWebhook;
          dest.target = e.target;
        }
        std::vector<events::EventType> types;
        for (const auto& name : e.matching_event_types) {
          if (auto t = events::event_type_from_api_name(name)) types.push_back(*t);
        }
        d.destinations.emplace_back(std::move(dest), std::move(types));
      }
    }
  }
  return cache_[set] = std::move(d);
}

bool Publisher::wants(const std::string& set, events::EventType type) {
  if (set.empty()) return false;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [dest, types] : destinations_locked(set).destinations) {
    if (std::find(types.begin(), types.end(), type) != types.end()) return true;
  }
  return false;
}

bool Publisher::destination_exists(const std::string& id) {
  auto slash = id.find('/');
  if (slash == std::string::npos) return false;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [dest, types] : destinations_locked(id.substr(0, slash)).destinations) {
    if (dest.id == id) return true;
  }
  return false;
}

Status Publisher::publish(const std::vector<PendingEvent>& pending) {
  if (pending.empty()) return Status::ok();
  std::vector<events::NewEvent> out;
  out.reserve(pending.size());
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& p : pending) {
      events::NewEvent e;
      e.configuration_set = p.configuration_set;
      e.message_id = p.message_id;
      e.type = p.type;
      e.json = p.json;
      for (const auto& [dest, types] : destinations_locked(p.configuration_set).destinations) {
        if (std::find(types.begin(), types.end(), p.type) != types.end())
          e.destinations.push_back(dest);
      }
      out.push_back(std::move(e));
    }
  }
  if (Status s = outbox_.append(out, wall_ms()); !s) return s;
  if (wake_) wake_();
  return Status::ok();
}

}  // namespace magnetic::service
