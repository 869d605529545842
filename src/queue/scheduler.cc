#include "queue/scheduler.h"

#include <algorithm>

namespace magnetic::queue {

Scheduler::Domain& Scheduler::domain(const std::string& name) {
  auto [it, inserted] = domains_.try_emplace(name);
  if (inserted) it->second.limit = options_.domain_connections;
  return it->second;
}

void Scheduler::add(std::vector<spool::Claimed> recipients) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& r : recipients) {
    std::string name = r.domain;
    domain(name).ready.push_back(std::move(r));
    ++ready_;
  }
}

void Scheduler::put_back(spool::Claimed recipient) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string name = recipient.domain;
  domain(name).ready.push_front(std::move(recipient));
  ++ready_;
}

std::vector<std::string> Scheduler::sessions_to_open(Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  // Round-robin over domains, one session each per pass, so one large domain does not take
  // every connection before the small ones get any.
  bool opened = true;
  while (opened && active_ < options_.total_connections) {
    opened = false;
    for (auto& [name, d] : domains_) {
      if (active_ >= options_.total_connections) break;
      if (d.paused_until > now) continue;
      // Open a session while there is more waiting work than the open sessions will take soon.
      size_t per_session = 1;
      if (d.active < d.limit && d.ready.size() > static_cast<size_t>(d.active) * per_session) {
        ++d.active;
        ++active_;
        out.push_back(name);
        opened = true;
      }
    }
  }
  return out;
}

std::optional<spool::Claimed> Scheduler::next(const std::string& name, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  Domain& d = domain(name);
  if (d.ready.empty() || d.active > d.limit || d.paused_until > now) return std::nullopt;
  spool::Claimed r = std::move(d.ready.front());
  d.ready.pop_front();
  --ready_;
  return r;
}

void Scheduler::session_closed(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  Domain& d = domain(name);
  if (d.active > 0) {
    --d.active;
    --active_;
  }
}

void Scheduler::pause(Domain& d, Clock::time_point now) {
  // Sessions opened together fail together: one event, one pause.
  if (d.paused_until > now) return;
  // The pause doubles only while complaints come with no delivery in between; a receiver that
  // takes mail between its 421s (a per-connection message cap) gets the short pause each time.
  bool again_without_progress = d.backoff.count() != 0 && d.good_since_slowdown == 0;
  d.backoff = again_without_progress ? std::min(options_.max_backoff, d.backoff * 2)
                                     : options_.initial_backoff;
  d.paused_until = now + d.backoff;
  d.good_since_slowdown = 0;
}

void Scheduler::slow_down(const std::string& name, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  Domain& d = domain(name);
  d.limit = std::max(1, d.limit / 2);
  pause(d, now);
}

void Scheduler::delivered(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  Domain& d = domain(name);
  if (d.limit >= options_.domain_connections) {
    d.backoff = std::chrono::milliseconds(0);
    return;
  }
  if (++d.good_since_slowdown >= options_.recover_after) {
    ++d.limit;
    d.good_since_slowdown = 0;
    if (d.limit >= options_.domain_connections) d.backoff = std::chrono::milliseconds(0);
  }
}

std::vector<spool::Claimed> Scheduler::connection_failed(const std::string& name,
                                                         Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  Domain& d = domain(name);
  pause(d, now);
  std::vector<spool::Claimed> out(std::make_move_iterator(d.ready.begin()),
                                  std::make_move_iterator(d.ready.end()));
  ready_ -= d.ready.size();
  d.ready.clear();
  return out;
}

std::vector<spool::Claimed> Scheduler::suspend(const std::string& name, Clock::time_point until) {
  std::lock_guard<std::mutex> lock(mu_);
  Domain& d = domain(name);
  d.suspended_until = std::max(d.suspended_until, until);
  d.paused_until = std::max(d.paused_until, d.suspended_until);
  // When it ends, one session probes the receiver; more come back with deliveries.
  d.limit = 1;
  d.good_since_slowdown = 0;
  std::vector<spool::Claimed> out(std::make_move_iterator(d.ready.begin()),
                                  std::make_move_iterator(d.ready.end()));
  ready_ -= d.ready.size();
  d.ready.clear();
  return out;
}

std::optional<Scheduler::Clock::time_point> Scheduler::suspended_until(
    const std::string& name, Clock::time_point now) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = domains_.find(name);
  if (it == domains_.end() || it->second.suspended_until <= now) return std::nullopt;
  return it->second.suspended_until;
}

std::vector<spool::Claimed> Scheduler::take_all(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  Domain& d = domain(name);
  std::vector<spool::Claimed> out(std::make_move_iterator(d.ready.begin()),
                                  std::make_move_iterator(d.ready.end()));
  ready_ -= d.ready.size();
  d.ready.clear();
  return out;
}

std::vector<spool::Claimed> Scheduler::drain() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<spool::Claimed> out;
  for (auto& [name, d] : domains_) {
    for (auto& r : d.ready) out.push_back(std::move(r));
    d.ready.clear();
  }
  ready_ = 0;
  return out;
}

size_t Scheduler::ready() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ready_;
}

int Scheduler::active_sessions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return active_;
}

int Scheduler::session_limit(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = domains_.find(name);
  return it == domains_.end() ? options_.domain_connections : it->second.limit;
}

std::string suspension_note(const std::string& domain, const std::string& reason,
                            const std::string& reply, std::chrono::milliseconds rest,
                            size_t waiting) {
  return domain + ": the receiver refuses our egress source (" + reason + ": " + reply +
         "); no mail to it for " +
         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(rest).count()) + " s, " +
         std::to_string(waiting) + " waiting recipient(s) deferred";
}

}  // namespace magnetic::queue
