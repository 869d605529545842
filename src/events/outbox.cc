// Outbox layout: `event` is the log (seq is the event id), `destination` the latest kind and
// target of each destination, `delivery` one row per (destination, event) with its state. A
// partial index over the pending rows keeps finding a destination's head cheap however many
// delivered rows wait for the next prune.
//
// The statement and transaction helpers below are this file's own: spool/'s are internal to
// the spool, and the two are a few lines each.
#include "events/outbox.h"

#include <sqlite3.h>

#include <algorithm>

namespace magnetic::events {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS event (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ms INTEGER NOT NULL,
  configuration_set TEXT NOT NULL,
  message_id TEXT NOT NULL,
  type TEXT NOT NULL,
  json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS event_time ON event (time_ms);
CREATE TABLE IF NOT EXISTS destination (
  id TEXT PRIMARY KEY,
  kind INTEGER NOT NULL,
  target TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS delivery (
  destination TEXT NOT NULL,
  seq INTEGER NOT NULL,
  state INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (destination, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS delivery_pending ON delivery (destination, seq) WHERE state = 0;
CREATE INDEX IF NOT EXISTS delivery_pending_seq ON delivery (seq) WHERE state = 0;
)sql";

enum State : int64_t { kPending = 0, kDelivered = 1, kDropped = 2 };

Status db_error(sqlite3* db) {
  return Status::io_error(std::string("events outbox: ") + sqlite3_errmsg(db));
}

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &st_, nullptr) != SQLITE_OK) st_ = nullptr;
  }
  ~Stmt() { sqlite3_finalize(st_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return st_ != nullptr; }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  int step() { return sqlite3_step(st_); }
  void reset() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }
  int64_t i64(int col) const { return sqlite3_column_int64(st_, col); }
  bool is_null(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }
  std::string text(int col) const {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(st_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(st_, col))) : std::string();
  }

 private:
  sqlite3_stmt* st_ = nullptr;
};

class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {
    begun_ = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK;
  }
  ~Transaction() {
    if (begun_ && !done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  bool begun() const { return begun_; }
  Status commit() {
    done_ = true;
    if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      Status s = db_error(db_);
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return s;
    }
    return Status::ok();
  }

 private:
  sqlite3* db_;
  bool begun_ = false;
  bool done_ = false;
};

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

struct Head {
  Destination destination;
  int64_t seq = 0;
  int64_t next_attempt_ms = 0;
};

// The head of every destination with pending rows. One indexed lookup per destination: there
// are few destinations and possibly many pending rows.
Result<std::vector<Head>> heads(sqlite3* db) {
  std::vector<Head> out;
  Stmt dest(db, "SELECT id, kind, target FROM destination ORDER BY id");
  Stmt head(db,
            "SELECT seq, next_attempt_ms FROM delivery WHERE destination = ? AND state = 0 "
            "ORDER BY seq LIMIT 1");
  if (!dest.ok() || !head.ok()) return db_error(db);
  while (true) {
    int rc = dest.step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return db_error(db);
    Head h;
    h.destination.id = dest.text(0);
    h.destination.kind =
        dest.i64(1) == Destination::kFile ? Destination::kFile : Destination::kWebhook;
    h.destination.target = dest.text(2);
    head.bind(1, h.destination.id);
    rc = head.step();
    if (rc == SQLITE_ROW) {
      h.seq = head.i64(0);
      h.next_attempt_ms = head.i64(1);
      out.push_back(std::move(h));
    } else if (rc != SQLITE_DONE) {
      return db_error(db);
    }
    head.reset();
  }
  return out;
}

}  // namespace

Outbox::~Outbox() { sqlite3_close_v2(db_); }

Result<std::unique_ptr<Outbox>> Outbox::open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    return Status::io_error("cannot open event outbox '" + path + "': " + msg);
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<Outbox> outbox(new Outbox(db));
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", kSchema}) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db);
      sqlite3_free(err);
      return Status::io_error("event outbox '" + path + "' is not usable: " + msg);
    }
  }
  return outbox;
}

Status Outbox::append(const std::vector<NewEvent>& events, int64_t now_ms) {
  if (events.empty()) return Status::ok();
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(db_);
  if (!tx.begun()) return db_error(db_);
  Stmt ev(db_,
          "INSERT INTO event (time_ms, configuration_set, message_id, type, json) "
          "VALUES (?, ?, ?, ?, ?)");
  Stmt dest(db_,
            "INSERT INTO destination (id, kind, target) VALUES (?, ?, ?) ON CONFLICT (id) DO "
            "UPDATE SET kind = excluded.kind, target = excluded.target");
  Stmt del(db_, "INSERT OR IGNORE INTO delivery (destination, seq) VALUES (?, ?)");
  if (!ev.ok() || !dest.ok() || !del.ok()) return db_error(db_);
  for (const auto& e : events) {
    ev.bind(1, now_ms).bind(2, e.configuration_set).bind(3, e.message_id);
    ev.bind(4, std::string(event_type_api_name(e.type))).bind(5, e.json);
    if (ev.step() != SQLITE_DONE) return db_error(db_);
    ev.reset();
    int64_t seq = sqlite3_last_insert_rowid(db_);
    for (const auto& d : e.destinations) {
      if (d.id.empty()) return Status::invalid("events: a destination has an empty id");
      dest.bind(1, d.id).bind(2, static_cast<int64_t>(d.kind)).bind(3, d.target);
      if (dest.step() != SQLITE_DONE) return db_error(db_);
      dest.reset();
      del.bind(1, d.id).bind(2, seq);
      if (del.step() != SQLITE_DONE) return db_error(db_);
      del.reset();
    }
  }
  return tx.commit();
}

Result<std::vector<LoggedEvent>> Outbox::read_log(int64_t after_seq, size_t limit,
                                                  const LogFilter& filter) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_,
          "SELECT seq, time_ms, configuration_set, message_id, type, json FROM event "
          "WHERE seq > ?1 AND (?2 = '' OR type = ?2) AND (?3 = '' OR configuration_set = ?3) "
          "AND (?4 = '' OR message_id = ?4) ORDER BY seq LIMIT ?5");
  if (!st.ok()) return db_error(db_);
  st.bind(1, after_seq);
  st.bind(2, std::string(filter.type ? event_type_api_name(*filter.type) : ""));
  st.bind(3, filter.configuration_set).bind(4, filter.message_id);
  st.bind(5, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
  std::vector<LoggedEvent> out;
  while (true) {
    int rc = st.step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return db_error(db_);
    LoggedEvent e;
    e.seq = st.i64(0);
    e.time_ms = st.i64(1);
    e.configuration_set = st.text(2);
    e.message_id = st.text(3);
    auto type = event_type_from_api_name(st.text(4));
    if (!type) {
      return Status::io_error("events outbox: event " + std::to_string(e.seq) + ": " +
                              type.status().message());
    }
    e.type = *type;
    e.json = st.text(5);
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<DueBatch>> Outbox::claim_due(int64_t now_ms, size_t batch_limit,
                                                const std::vector<std::string>& busy) {
  std::lock_guard<std::mutex> lock(mu_);
  auto hs = heads(db_);
  if (!hs) return hs.status();
  Stmt rows(db_,
            "SELECT d.seq, e.time_ms, d.attempts, e.json FROM delivery d JOIN event e ON "
            "e.seq = d.seq WHERE d.destination = ? AND d.state = 0 ORDER BY d.seq LIMIT ?");
  if (!rows.ok()) return db_error(db_);
  std::vector<DueBatch> out;
  for (auto& h : *hs) {
    if (h.next_attempt_ms > now_ms || contains(busy, h.destination.id)) continue;
    DueBatch batch;
    rows.bind(1, h.destination.id).bind(2, static_cast<int64_t>(std::max<size_t>(batch_limit, 1)));
    while (true) {
      int rc = rows.step();
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return db_error(db_);
      PendingDelivery p;
      p.seq = rows.i64(0);
      p.time_ms = rows.i64(1);
      p.attempts = static_cast<int>(rows.i64(2));
      p.json = rows.text(3);
      batch.events.push_back(std::move(p));
    }
    rows.reset();
    batch.destination = std::move(h.destination);
    if (!batch.events.empty()) out.push_back(std::move(batch));
  }
  return out;
}

Result<int64_t> Outbox::next_due_ms(const std::vector<std::string>& busy) {
  std::lock_guard<std::mutex> lock(mu_);
  auto hs = heads(db_);
  if (!hs) return hs.status();
  int64_t next = -1;
  for (const auto& h : *hs) {
    if (contains(busy, h.destination.id)) continue;
    if (next < 0 || h.next_attempt_ms < next) next = h.next_attempt_ms;
  }
  return next;
}

Status Outbox::mark_delivered(const std::string& destination, const std::vector<int64_t>& seqs) {
  if (seqs.empty()) return Status::ok();
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(db_);
  if (!tx.begun()) return db_error(db_);
  Stmt st(db_, "UPDATE delivery SET state = 1, error = '' WHERE destination = ? AND seq = ?");
  if (!st.ok()) return db_error(db_);
  for (int64_t seq : seqs) {
    st.bind(1, destination).bind(2, seq);
    if (st.step() != SQLITE_DONE) return db_error(db_);
    st.reset();
  }
  return tx.commit();
}

Status Outbox::mark_failed(const std::string& destination, int64_t seq, int64_t next_attempt_ms,
                           const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_,
          "UPDATE delivery SET attempts = attempts + 1, next_attempt_ms = ?, error = ? "
          "WHERE destination = ? AND seq = ? AND state = 0");
  if (!st.ok()) return db_error(db_);
  st.bind(1, next_attempt_ms).bind(2, error).bind(3, destination).bind(4, seq);
  if (st.step() != SQLITE_DONE) return db_error(db_);
  return Status::ok();
}

Status Outbox::mark_dropped(const std::string& destination, int64_t seq,
                            const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "UPDATE delivery SET state = 2, error = ? WHERE destination = ? AND seq = ?");
  if (!st.ok()) return db_error(db_);
  st.bind(1, reason).bind(2, destination).bind(3, seq);
  if (st.step() != SQLITE_DONE) return db_error(db_);
  return Status::ok();
}

Result<PruneReport> Outbox::prune(int64_t now_ms, int64_t retention_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(db_);
  if (!tx.begun()) return db_error(db_);
  PruneReport r;
  {
    Stmt st(db_, "DELETE FROM delivery WHERE state != 0");
    if (!st.ok() || st.step() != SQLITE_DONE) return db_error(db_);
    r.deliveries = static_cast<uint64_t>(sqlite3_changes(db_));
  }
  {
    Stmt st(db_,
            "DELETE FROM event WHERE time_ms < ? AND NOT EXISTS (SELECT 1 FROM delivery d "
            "WHERE d.seq = event.seq AND d.state = 0)");
    if (!st.ok()) return db_error(db_);
    st.bind(1, now_ms - retention_ms);
    if (st.step() != SQLITE_DONE) return db_error(db_);
    r.events = static_cast<uint64_t>(sqlite3_changes(db_));
  }
  if (Status s = tx.commit(); !s) return s;
  return r;
}

Result<OutboxCounts> Outbox::counts() {
  std::lock_guard<std::mutex> lock(mu_);
  OutboxCounts c;
  {
    Stmt st(db_, "SELECT COUNT(*) FROM event");
    if (!st.ok() || st.step() != SQLITE_ROW) return db_error(db_);
    c.events = static_cast<uint64_t>(st.i64(0));
  }
  Stmt st(db_, "SELECT state, COUNT(*) FROM delivery GROUP BY state");
  if (!st.ok()) return db_error(db_);
  while (true) {
    int rc = st.step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return db_error(db_);
    auto n = static_cast<uint64_t>(st.i64(1));
    switch (st.i64(0)) {
      case kPending:
        c.pending = n;
        break;
      case kDelivered:
        c.delivered = n;
        break;
      case kDropped:
        c.dropped = n;
        break;
      default:
        break;
    }
  }
  return c;
}

Result<uint64_t> Outbox::pending(const std::string& destination) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "SELECT COUNT(*) FROM delivery WHERE destination = ? AND state = 0");
  if (!st.ok()) return db_error(db_);
  st.bind(1, destination);
  if (st.step() != SQLITE_ROW) return db_error(db_);
  return static_cast<uint64_t>(st.i64(0));
}

Result<int> Outbox::attempts(const std::string& destination, int64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "SELECT attempts FROM delivery WHERE destination = ? AND seq = ?");
  if (!st.ok()) return db_error(db_);
  st.bind(1, destination).bind(2, seq);
  int rc = st.step();
  if (rc == SQLITE_DONE) return -1;
  if (rc != SQLITE_ROW) return db_error(db_);
  return static_cast<int>(st.i64(0));
}

}  // namespace magnetic::events
