#include "spool/spool.h"

#include <sqlite3.h>

#include <chrono>
#include <ctime>

#include "spool/sqlite_util.h"

namespace magnetic::spool {
namespace {

using internal::Stmt;
using internal::Transaction;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS campaign (
  id TEXT PRIMARY KEY,
  created_at TEXT NOT NULL,
  settings TEXT NOT NULL,
  rows_read INTEGER NOT NULL DEFAULT 0,
  ingest_done INTEGER NOT NULL DEFAULT 0,
  seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS recipient (
  id INTEGER PRIMARY KEY,
  campaign TEXT NOT NULL,
  row INTEGER NOT NULL,
  email TEXT NOT NULL,
  domain TEXT NOT NULL,
  data TEXT NOT NULL,
  token TEXT NOT NULL,
  message_id TEXT NOT NULL,
  state INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  first_attempt_ms INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER NOT NULL DEFAULT 0,
  reply TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT ''
);
-- One recipient per address and campaign. Local parts are compared without ASCII case, as
-- mailbox providers do: "Ann@x.example" and "ann@x.example" are one person, mailed once.
CREATE UNIQUE INDEX IF NOT EXISTS recipient_address ON recipient (campaign, lower(email));
CREATE INDEX IF NOT EXISTS recipient_due ON recipient (campaign, state, next_attempt_ms);
CREATE TABLE IF NOT EXISTS invalid_row (
  campaign TEXT NOT NULL,
  row INTEGER NOT NULL,
  error TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counter (
  campaign TEXT NOT NULL,
  name TEXT NOT NULL,
  value INTEGER NOT NULL,
  PRIMARY KEY (campaign, name)
);
)sql";

std::string now_rfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

const char* state_name(RecipientState s) {
  switch (s) {
    case RecipientState::kPending:
      return "pending";
    case RecipientState::kInFlight:
      return "in_flight";
    case RecipientState::kDelivered:
      return "delivered";
    case RecipientState::kDeferred:
      return "deferred";
    case RecipientState::kBounced:
      return "bounced";
    case RecipientState::kExpired:
      return "expired";
    case RecipientState::kFailed:
      return "failed";
    case RecipientState::kSuppressed:
      return "suppressed";
  }
  return "unknown";
}

bool is_final(RecipientState s) {
  return s != RecipientState::kPending && s != RecipientState::kInFlight &&
         s != RecipientState::kDeferred;
}

Spool::Spool(sqlite3* db) : db_(db) {}

Spool::~Spool() { sqlite3_close_v2(db_); }

Status Spool::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    return Status::io_error("spool: " + msg);
  }
  return Status::ok();
}

Result<std::unique_ptr<Spool>> Spool::open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    return Status::io_error("cannot open spool '" + path + "': " + msg);
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<Spool> spool(new Spool(db));
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                             "PRAGMA foreign_keys=ON", "PRAGMA cache_size=-16000"}) {
    if (Status s = spool->exec(pragma); !s) {
      return Status::io_error("cannot open spool '" + path + "': " + s.message());
    }
  }
  if (Status s = spool->exec(kSchema); !s) {
    return Status::io_error("spool '" + path + "' is not usable: " + s.message());
  }
  return spool;
}

Status Spool::create_campaign(const CampaignRecord& c) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_,
          "INSERT INTO campaign (id, created_at, settings, rows_read, ingest_done, seq) "
          "VALUES (?, ?, ?, 0, 0, (SELECT COALESCE(MAX(seq), 0) + 1 FROM campaign))");
  if (!st.ok()) return st.error();
  st.bind(1, c.id)
      .bind(2, c.created_at.empty() ? now_rfc3339() : c.created_at)
      .bind(3, c.settings_json);
  if (st.step() != SQLITE_DONE) return st.error();
  return Status::ok();
}

namespace {
Result<CampaignRecord> read_campaign(sqlite3* db, const char* sql, const std::string* id) {
  Stmt st(db, sql);
  if (!st.ok()) return st.error();
  if (id) st.bind(1, *id);
  int rc = st.step();
  if (rc == SQLITE_DONE) {
    return Status::not_found(id ? "no campaign '" + *id + "' in the spool"
                                : "the spool holds no campaign");
  }
  if (rc != SQLITE_ROW) return st.error();
  CampaignRecord c;
  c.id = st.text(0);
  c.created_at = st.text(1);
  c.settings_json = st.text(2);
  c.rows_read = static_cast<uint64_t>(st.i64(3));
  c.ingest_done = st.i64(4) != 0;
  return c;
}
}  // namespace

Result<CampaignRecord> Spool::campaign(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  return read_campaign(
      db_, "SELECT id, created_at, settings, rows_read, ingest_done FROM campaign WHERE id = ?",
      &id);
}

Result<CampaignRecord> Spool::latest_campaign() {
  std::lock_guard<std::mutex> lock(mu_);
  return read_campaign(db_,
                       "SELECT id, created_at, settings, rows_read, ingest_done FROM campaign "
                       "ORDER BY seq DESC LIMIT 1",
                       nullptr);
}

Result<uint64_t> Spool::accept_batch(const std::string& campaign_id,
                                     const std::vector<NewRecipient>& recipients,
                                     std::vector<InvalidRow> invalid, uint64_t rows_read,
                                     bool ingest_done) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(db_);
  if (!tx.begun()) return Status::io_error(std::string("spool: ") + sqlite3_errmsg(db_));

  Stmt insert(
      db_,
      "INSERT OR IGNORE INTO recipient (campaign, row, email, domain, data, token, message_id) "
      "VALUES (?, ?, ?, ?, ?, ?, ?)");
  Stmt first_row(db_, "SELECT row FROM recipient WHERE campaign = ? AND lower(email) = lower(?)");
  if (!insert.ok() || !first_row.ok()) return insert.error();
  uint64_t added = 0;
  for (const auto& r : recipients) {
    insert.bind(1, campaign_id).bind(2, static_cast<int64_t>(r.row)).bind(3, r.email);
    insert.bind(4, r.domain).bind(5, r.data_json).bind(6, r.token).bind(7, r.message_id);
    if (insert.step() != SQLITE_DONE) return insert.error();
    insert.reset();
    if (sqlite3_changes(db_) == 1) {
      ++added;
      continue;
    }
    first_row.bind(1, campaign_id).bind(2, r.email);
    int64_t earlier = first_row.step() == SQLITE_ROW ? first_row.i64(0) : 0;
    first_row.reset();
    invalid.push_back({r.row, "row " + std::to_string(r.row) + ": duplicate address '" + r.email +
                                  "' (first listed at row " + std::to_string(earlier) + ")"});
  }

  Stmt bad(db_, "INSERT INTO invalid_row (campaign, row, error) VALUES (?, ?, ?)");
  if (!bad.ok()) return bad.error();
  for (const auto& b : invalid) {
    bad.bind(1, campaign_id).bind(2, static_cast<int64_t>(b.row)).bind(3, b.error);
    if (bad.step() != SQLITE_DONE) return bad.error();
    bad.reset();
  }

  Stmt progress(db_, "UPDATE campaign SET rows_read = ?, ingest_done = ? WHERE id = ?");
  progress.bind(1, static_cast<int64_t>(rows_read))
      .bind(2, ingest_done ? 1 : 0)
      .bind(3, campaign_id);
  if (progress.step() != SQLITE_DONE) return progress.error();

  if (Status s = tx.commit(); !s) return s;
  return added;
}

Result<std::vector<Claimed>> Spool::claim_due(const std::string& campaign_id, int64_t now_ms,
                                              size_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Claimed> out;
  Transaction tx(db_);
  if (!tx.begun()) return Status::io_error(std::string("spool: ") + sqlite3_errmsg(db_));

  const char* kColumns =
      "SELECT id, row, email, domain, data, token, message_id, attempts, first_attempt_ms "
      "FROM recipient ";
  std::string deferred_sql = std::string(kColumns) +
                             "WHERE campaign = ? AND state = 3 AND next_attempt_ms <= ? "
                             "ORDER BY next_attempt_ms LIMIT ?";
  std::string pending_sql =
      std::string(kColumns) + "WHERE campaign = ? AND state = 0 ORDER BY id LIMIT ?";
  auto collect = [&](Stmt& st) -> Status {
    while (true) {
      int rc = st.step();
      if (rc == SQLITE_DONE) return Status::ok();
      if (rc != SQLITE_ROW) return st.error();
      Claimed c;
      c.id = st.i64(0);
      c.row = static_cast<uint64_t>(st.i64(1));
      c.email = st.text(2);
      c.domain = st.text(3);
      c.data_json = st.text(4);
      c.token = st.text(5);
      c.message_id = st.text(6);
      c.attempts = static_cast<int>(st.i64(7));
      c.first_attempt_ms = st.i64(8);
      out.push_back(std::move(c));
    }
  };
  {
    Stmt st(db_, deferred_sql.c_str());
    if (!st.ok()) return st.error();
    st.bind(1, campaign_id).bind(2, now_ms).bind(3, static_cast<int64_t>(limit));
    if (Status s = collect(st); !s) return s;
  }
  if (out.size() < limit) {
    Stmt st(db_, pending_sql.c_str());
    if (!st.ok()) return st.error();
    st.bind(1, campaign_id).bind(2, static_cast<int64_t>(limit - out.size()));
    if (Status s = collect(st); !s) return s;
  }

  Stmt mark(db_, "UPDATE recipient SET state = 1 WHERE id = ?");
  if (!mark.ok()) return mark.error();
  for (const auto& c : out) {
    mark.bind(1, c.id);
    if (mark.step() != SQLITE_DONE) return mark.error();
    mark.reset();
  }
  if (Status s = tx.commit(); !s) return s;
  return out;
}

Status Spool::commit_outcomes(const std::vector<Outcome>& outcomes) {
  if (outcomes.empty()) return Status::ok();
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(db_);
  if (!tx.begun()) return Status::io_error(std::string("spool: ") + sqlite3_errmsg(db_));
  Stmt st(
      db_,
      "UPDATE recipient SET state = ?, attempts = ?, next_attempt_ms = ?, first_attempt_ms = ?, "
      "reply = ?, reason = ? WHERE id = ?");
  if (!st.ok()) return st.error();
  for (const auto& o : outcomes) {
    st.bind(1, static_cast<int64_t>(o.state)).bind(2, o.attempts).bind(3, o.next_attempt_ms);
    st.bind(4, o.first_attempt_ms).bind(5, o.reply).bind(6, o.reason).bind(7, o.id);
    if (st.step() != SQLITE_DONE) return st.error();
    st.reset();
  }
  return tx.commit();
}

Result<RecoveryReport> Spool::recover(const std::string& campaign_id) {
  std::lock_guard<std::mutex> lock(mu_);
  // A recipient in flight that was attempted before goes back to deferred (its attempt count
  // and first attempt are kept); one never attempted goes back to pending.
  Stmt st(
      db_,
      "UPDATE recipient SET state = CASE WHEN attempts > 0 THEN 3 ELSE 0 END, next_attempt_ms = 0 "
      "WHERE campaign = ? AND state = 1");
  if (!st.ok()) return st.error();
  st.bind(1, campaign_id);
  if (st.step() != SQLITE_DONE) return st.error();
  RecoveryReport r;
  r.in_flight_reset = static_cast<uint64_t>(sqlite3_changes(db_));
  return r;
}

Result<int64_t> Spool::next_deferred_time(const std::string& campaign_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "SELECT MIN(next_attempt_ms) FROM recipient WHERE campaign = ? AND state = 3");
  if (!st.ok()) return st.error();
  st.bind(1, campaign_id);
  if (st.step() != SQLITE_ROW) return st.error();
  return st.is_null(0) ? int64_t{-1} : st.i64(0);
}

Result<uint64_t> Spool::unfinished(const std::string& campaign_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "SELECT COUNT(*) FROM recipient WHERE campaign = ? AND state IN (0, 1, 3)");
  if (!st.ok()) return st.error();
  st.bind(1, campaign_id);
  if (st.step() != SQLITE_ROW) return st.error();
  return static_cast<uint64_t>(st.i64(0));
}

Result<CampaignCounts> Spool::counts(const std::string& campaign_id) {
  std::lock_guard<std::mutex> lock(mu_);
  CampaignCounts out;
  {
    Stmt st(
        db_,
        "SELECT domain, state, COUNT(*) FROM recipient WHERE campaign = ? GROUP BY domain, state");
    if (!st.ok()) return st.error();
    st.bind(1, campaign_id);
    int rc;
    while ((rc = st.step()) == SQLITE_ROW) {
      auto n = static_cast<uint64_t>(st.i64(2));
      for (DomainCounts* d : {&out.by_domain[st.text(0)], &out.total}) {
        d->recipients += n;
        switch (static_cast<RecipientState>(st.i64(1))) {
          case RecipientState::kDelivered:
            d->delivered += n;
            break;
          case RecipientState::kDeferred:
            d->deferred += n;
            break;
          case RecipientState::kBounced:
            d->bounced += n;
            break;
          case RecipientState::kExpired:
            d->expired += n;
            break;
          case RecipientState::kFailed:
            d->failed += n;
            break;
          case RecipientState::kSuppressed:
            d->suppressed += n;
            break;
          case RecipientState::kPending:
          case RecipientState::kInFlight:
            d->pending += n;
            break;
        }
      }
    }
    if (rc != SQLITE_DONE) return st.error();
  }
  {
    Stmt st(db_,
            "SELECT state, reason, COUNT(*) FROM recipient WHERE campaign = ? AND state IN (3, 4, "
            "5) GROUP BY state, reason");
    if (!st.ok()) return st.error();
    st.bind(1, campaign_id);
    while (st.step() == SQLITE_ROW) {
      std::string reason = st.text(1).empty() ? "unknown" : st.text(1);
      auto n = static_cast<uint64_t>(st.i64(2));
      if (st.i64(0) == 4)
        out.bounced_by_reason[reason] += n;
      else if (st.i64(0) == 3)
        out.deferred_by_reason[reason] += n;
      else
        out.expired_by_reason[reason] += n;
    }
  }
  {
    Stmt st(db_, "SELECT COUNT(*) FROM invalid_row WHERE campaign = ?");
    if (!st.ok()) return st.error();
    st.bind(1, campaign_id);
    if (st.step() == SQLITE_ROW) out.invalid = static_cast<uint64_t>(st.i64(0));
  }
  return out;
}

Result<std::vector<InvalidRow>> Spool::invalid_rows(const std::string& campaign_id, size_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "SELECT row, error FROM invalid_row WHERE campaign = ? ORDER BY row LIMIT ?");
  if (!st.ok()) return st.error();
  st.bind(1, campaign_id).bind(2, static_cast<int64_t>(limit));
  std::vector<InvalidRow> out;
  while (st.step() == SQLITE_ROW) out.push_back({static_cast<uint64_t>(st.i64(0)), st.text(1)});
  return out;
}

Status Spool::add_counter(const std::string& campaign_id, const std::string& name, int64_t delta) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_,
          "INSERT INTO counter (campaign, name, value) VALUES (?, ?, ?) "
          "ON CONFLICT (campaign, name) DO UPDATE SET value = value + excluded.value");
  if (!st.ok()) return st.error();
  st.bind(1, campaign_id).bind(2, name).bind(3, delta);
  if (st.step() != SQLITE_DONE) return st.error();
  return Status::ok();
}

Result<int64_t> Spool::counter(const std::string& campaign_id, const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "SELECT value FROM counter WHERE campaign = ? AND name = ?");
  if (!st.ok()) return st.error();
  st.bind(1, campaign_id).bind(2, name);
  return st.step() == SQLITE_ROW ? st.i64(0) : int64_t{0};
}

}  // namespace magnetic::spool
