// The in-memory side of scheduling: recipients claimed from the spool wait here, per
// destination domain, for a delivery session. The scheduler decides how many sessions each
// domain may have and when a domain must rest; it never touches sockets.
//
// Strategy: every domain starts with `domain_connections` sessions allowed. A receiver that
// asks us to slow down (421, "too many connections", rate limits) halves the domain's session
// limit (at least 1) and pauses new sessions for a backoff that doubles each time it happens
// again with no delivery in between, up to `max_backoff`; every `recover_after` deliveries without
// complaint give one session back. A domain whose connections fail is paused the same way, and its
// waiting recipients are handed back to the caller to be deferred. A domain that refuses our
// egress source is suspended until a given time: no session opens, running sessions take no more
// recipients, and what waits or is added meanwhile is handed back to be deferred to that time
// (holding it here would fill the ready queue and stop claims for every other domain). When it
// ends the domain has one session, as after a slow-down, and earns the others back.
//
// Thread-safe: one mutex; every call is short.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "spool/spool.h"

namespace magnetic::queue {

struct SchedulerOptions {
  int domain_connections = 10;  // sessions per destination domain
  int total_connections = 200;  // sessions in all
  std::chrono::milliseconds initial_backoff{1000};
  std::chrono::milliseconds max_backoff{std::chrono::minutes(5)};
  int recover_after = 50;
};

class Scheduler {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Scheduler(SchedulerOptions options) : options_(options) {}

  // Adds claimed recipients to their domains' ready queues.
  void add(std::vector<spool::Claimed> recipients);
  // Puts a recipient back at the front of its domain's queue (a session ended before sending).
  void put_back(spool::Claimed recipient);

  // Domains that may open one more session now; each returned domain counts as having one
  // more active session until session_closed(domain).
  std::vector<std::string> sessions_to_open(Clock::time_point now = Clock::now());

  // The next recipient for a session of this domain, or nothing when the queue is empty or
  // the session must end (the domain is over its limit after a slow-down).
  std::optional<spool::Claimed> next(const std::string& domain,
                                     Clock::time_point now = Clock::now());

  void session_closed(const std::string& domain);

  // The receiver asked us to slow down.
  void slow_down(const std::string& domain, Clock::time_point now = Clock::now());
  // A delivery went through; after enough of them the domain gets a session back.
  void delivered(const std::string& domain);
  // The receiver refuses our egress source: suspend the domain until `until` (a later
  // suspension extends it) and return its waiting recipients.
  std::vector<spool::Claimed> suspend(const std::string& domain, Clock::time_point until);
  // When the domain's suspension ends, if it is suspended at `now`.
  std::optional<Clock::time_point> suspended_until(const std::string& domain,
                                                   Clock::time_point now = Clock::now()) const;
  // No session could be opened: pause the domain and return its waiting recipients.
  std::vector<spool::Claimed> connection_failed(const std::string& domain,
                                                Clock::time_point now = Clock::now());
  // Removes and returns every waiting recipient of the domain (a permanent routing failure).
  std::vector<spool::Claimed> take_all(const std::string& domain);
  // Removes and returns every waiting recipient (shutdown).
  std::vector<spool::Claimed> drain();

  size_t ready() const;
  int active_sessions() const;
  int session_limit(const std::string& domain) const;  // for tests and the report

 private:
  struct Domain {
    std::deque<spool::Claimed> ready;
    int active = 0;
    int limit = 0;
    int good_since_slowdown = 0;
    std::chrono::milliseconds backoff{0};
    Clock::time_point paused_until{};
    Clock::time_point suspended_until{};
  };
  Domain& domain(const std::string& name);
  void pause(Domain& d, Clock::time_point now);

  SchedulerOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, Domain> domains_;
  size_t ready_ = 0;
  int active_ = 0;
};

// The log line of a suspension: the domain, why (class and reply), how long, how many waiting
// recipients were deferred.
std::string suspension_note(const std::string& domain, const std::string& reason,
                            const std::string& reply, std::chrono::milliseconds rest,
                            size_t waiting);

}  // namespace magnetic::queue
