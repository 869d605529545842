// The event outbox: every event record the service produces, and its delivery to each event
// destination, in one SQLite file of its own (`<data>/events.db`; WAL, synchronous=FULL).
//
// An event is appended once, in the same call as one delivery row per destination that wants
// it; the event log keeps it (for `magnetic events tail`) for a retention period, the delivery
// rows until they are delivered or dropped. Each destination is a queue in sequence order: only
// its head is ever attempted, so a receiver sees one destination's events in the order they were
// appended (and so in order per message), and a destination that fails waits on its own head
// without holding up the others.
//
// Sequence numbers come from an AUTOINCREMENT key: they never repeat, even after every event has
// been pruned, so they can serve receivers as event ids for dropping duplicates.
//
// Nothing is in flight in the file: a claim only reads. After a crash the dispatcher claims the
// same heads again, so an attempt that was under way is made again (at-least-once).
//
// Thread-safety: serialized by a mutex; any thread may call it. One dispatcher delivers from an
// outbox at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "events/record.h"

struct sqlite3;

namespace magnetic::events {

// The outbox's file name in the data directory.
inline constexpr const char* kOutboxFileName = "events.db";

// How long the event log keeps an event by default (delivery rows go as soon as they are done).
inline constexpr int64_t kDefaultRetentionMs = int64_t{7} * 24 * 3600 * 1000;

struct Destination {
  std::string id;  // "<configuration set>/<destination name>"
  enum Kind { kWebhook, kFile } kind = kWebhook;
  std::string target;  // webhook URL or file path
};

struct NewEvent {
  std::string configuration_set, message_id;
  EventType type = EventType::kSend;
  std::string json;  // the whole record, as built by make_event()
  std::vector<Destination> destinations;
};

struct LoggedEvent {
  int64_t seq = 0;
  int64_t time_ms = 0;  // when it was appended
  std::string configuration_set, message_id;
  EventType type = EventType::kSend;
  std::string json;
};

// Filters of read_log(); empty or unset fields match everything.
struct LogFilter {
  std::optional<EventType> type;
  std::string configuration_set;
  std::string message_id;
};

// One event waiting at a destination.
struct PendingDelivery {
  int64_t seq = 0;
  int64_t time_ms = 0;  // when the event was appended (its age decides when it is dropped)
  int attempts = 0;     // failed attempts so far
  std::string json;
};

// The head of one destination's queue and the events right behind it, in sequence order.
struct DueBatch {
  Destination destination;
  std::vector<PendingDelivery> events;
};

struct OutboxCounts {
  uint64_t events = 0;     // in the log
  uint64_t pending = 0;    // delivery rows not yet done, all destinations
  uint64_t delivered = 0;  // delivered rows not yet pruned
  uint64_t dropped = 0;    // given up rows not yet pruned
};

struct PruneReport {
  uint64_t events = 0;      // log entries removed
  uint64_t deliveries = 0;  // finished delivery rows removed
};

class Outbox {
 public:
  // Opens or creates the file. Errors name the path.
  static Result<std::unique_ptr<Outbox>> open(const std::string& path);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // One transaction for the whole group: each event into the log, one delivery row per
  // destination. A destination's kind and target are updated to the latest seen, so a corrected
  // URL applies to what is still queued.
  Status append(const std::vector<NewEvent>& events, int64_t now_ms);

  // Logged events with seq > after_seq, oldest first, at most `limit`.
  Result<std::vector<LoggedEvent>> read_log(int64_t after_seq, size_t limit,
                                            const LogFilter& filter = {});

  // For every destination whose head is due at now_ms (skipping the ids in `busy`), the head
  // and up to batch_limit - 1 events behind it.
  Result<std::vector<DueBatch>> claim_due(int64_t now_ms, size_t batch_limit,
                                          const std::vector<std::string>& busy = {});

  // The earliest next-attempt time of the heads of destinations not in `busy` (a time already
  // passed means one is due now); -1 if no such destination has pending events.
  Result<int64_t> next_due_ms(const std::vector<std::string>& busy = {});

  // Done with these events at this destination (after the receiver's 2xx, or the fsync).
  Status mark_delivered(const std::string& destination, const std::vector<int64_t>& seqs);
  // A failed attempt: counts it and makes the event due again at next_attempt_ms.
  Status mark_failed(const std::string& destination, int64_t seq, int64_t next_attempt_ms,
                     const std::string& error);
  // Given up for good (too old): the row is finished, never attempted again.
  Status mark_dropped(const std::string& destination, int64_t seq, const std::string& reason);

  // Removes what every destination is done with, and the log entries appended before
  // now_ms - retention_ms that no destination still waits for.
  Result<PruneReport> prune(int64_t now_ms, int64_t retention_ms = kDefaultRetentionMs);

  Result<OutboxCounts> counts();
  // Events not yet done at one destination.
  Result<uint64_t> pending(const std::string& destination);

  // Failed attempts recorded for one delivery row (tests, diagnostics); -1 if there is no row.
  Result<int> attempts(const std::string& destination, int64_t seq);

 private:
  explicit Outbox(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::mutex mu_;
};

}  // namespace magnetic::events
