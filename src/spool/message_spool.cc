#include "spool/message_spool.h"

#include <sqlite3.h>

#include <tuple>

#include "spool/sqlite_util.h"

namespace magnetic::spool {
namespace {

using internal::Stmt;
using internal::Transaction;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS message (
  id INTEGER PRIMARY KEY,
  message_id TEXT NOT NULL UNIQUE,
  identity TEXT NOT NULL,
  configuration_set TEXT NOT NULL,
  envelope_from TEXT NOT NULL,
  accepted_ms INTEGER NOT NULL,
  open_recipients INTEGER NOT NULL,
  data BLOB,
  mail_json TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS message_recipient (
  id INTEGER PRIMARY KEY,
  message INTEGER NOT NULL REFERENCES message (id),
  email TEXT NOT NULL,
  domain TEXT NOT NULL,
  state INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  first_attempt_ms INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER NOT NULL DEFAULT 0,
  reply TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  feedback INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS message_recipient_due ON message_recipient (state, next_attempt_ms);
CREATE INDEX IF NOT EXISTS message_recipient_message ON message_recipient (message);
)sql";

Status db_error(sqlite3* db) {
  return Status::io_error(std::string("spool: ") + sqlite3_errmsg(db));
}

}  // namespace

MessageSpool::~MessageSpool() { sqlite3_close_v2(db_); }

Result<std::unique_ptr<MessageSpool>> MessageSpool::open(const std::string& path) {
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
  std::unique_ptr<MessageSpool> spool(new MessageSpool(db));
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                          "PRAGMA foreign_keys=ON", "PRAGMA cache_size=-32000", kSchema}) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db);
      sqlite3_free(err);
      return Status::io_error("spool '" + path + "' is not usable: " + msg);
    }
  }
  // Spools made before events were published have no mail_json column; it is added empty (the
  // events of their messages then carry a mail object without headers).
  // Likewise the feedback marks of recipients.
  auto has_column = [db](const char* table, const std::string& column) {
    Stmt cols(db, (std::string("PRAGMA table_info(") + table + ")").c_str());
    bool found = false;
    while (cols.step() == SQLITE_ROW) found |= cols.text(1) == column;
    return found;
  };
  for (auto [table, column, sql] :
       {std::tuple{"message", "mail_json",
                   "ALTER TABLE message ADD COLUMN mail_json TEXT NOT NULL DEFAULT ''"},
        std::tuple{
            "message_recipient", "feedback",
            "ALTER TABLE message_recipient ADD COLUMN feedback INTEGER NOT NULL DEFAULT 0"}}) {
    if (!has_column(table, column) &&
        sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
      return Status::io_error("spool '" + path + "' cannot be upgraded: " + sqlite3_errmsg(db));
    }
  }
  return spool;
}

Status MessageSpool::accept(const std::vector<NewMessage>& messages, int64_t now_ms) {
  if (messages.empty()) return Status::ok();
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(db_);
  if (!tx.begun()) return db_error(db_);
  Stmt msg(db_,
           "INSERT INTO message (message_id, identity, configuration_set, envelope_from, "
           "accepted_ms, open_recipients, data, mail_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  Stmt rcpt(db_,
            "INSERT INTO message_recipient (message, email, domain, state, reason) "
            "VALUES (?, ?, ?, ?, ?)");
  if (!msg.ok() || !rcpt.ok()) return db_error(db_);
  for (const auto& m : messages) {
    int64_t open = 0;
    for (const auto& r : m.recipients) open += r.suppressed ? 0 : 1;
    msg.bind(1, m.message_id).bind(2, m.identity).bind(3, m.configuration_set);
    msg.bind(4, m.envelope_from).bind(5, m.accepted_ms ? m.accepted_ms : now_ms).bind(6, open);
    if (open > 0) msg.bind_blob(7, m.data);
    msg.bind(8, m.mail_json);
    if (msg.step() != SQLITE_DONE) return db_error(db_);
    msg.reset();
    int64_t row = sqlite3_last_insert_rowid(db_);
    for (const auto& r : m.recipients) {
      rcpt.bind(1, row).bind(2, r.email).bind(3, r.domain);
      if (r.suppressed) {
        rcpt.bind(4, static_cast<int64_t>(RecipientState::kSuppressed));
        rcpt.bind(5, std::string("suppressed"));
      } else {
        rcpt.bind(4, static_cast<int64_t>(RecipientState::kPending)).bind(5, std::string());
      }
      if (rcpt.step() != SQLITE_DONE) return db_error(db_);
      rcpt.reset();
    }
  }
  return tx.commit();
}

Result<std::vector<ClaimedRecipient>> MessageSpool::claim_due(int64_t now_ms, size_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ClaimedRecipient> out;
  Transaction tx(db_);
  if (!tx.begun()) return db_error(db_);
  constexpr const char* kColumns =
      "SELECT r.id, r.message, r.email, r.domain, m.message_id, r.attempts, r.first_attempt_ms, "
      "m.accepted_ms "
      "FROM message_recipient r JOIN message m ON m.id = r.message ";
  auto collect = [&](Stmt& st) -> Status {
    while (true) {
      int rc = st.step();
      if (rc == SQLITE_DONE) return Status::ok();
      if (rc != SQLITE_ROW) return db_error(db_);
      ClaimedRecipient c;
      c.id = st.i64(0);
      c.message = st.i64(1);
      c.email = st.text(2);
      c.domain = st.text(3);
      c.message_id = st.text(4);
      c.attempts = static_cast<int>(st.i64(5));
      c.first_attempt_ms = st.i64(6);
      c.accepted_ms = st.i64(7);
      out.push_back(std::move(c));
    }
  };
  {
    std::string sql = std::string(kColumns) +
                      "WHERE r.state = 3 AND r.next_attempt_ms <= ? ORDER BY r.next_attempt_ms "
                      "LIMIT ?";
    Stmt st(db_, sql.c_str());
    if (!st.ok()) return db_error(db_);
    st.bind(1, now_ms).bind(2, static_cast<int64_t>(limit));
    if (Status s = collect(st); !s) return s;
  }
  if (out.size() < limit) {
    std::string sql = std::string(kColumns) + "WHERE r.state = 0 ORDER BY r.id LIMIT ?";
    Stmt st(db_, sql.c_str());
    if (!st.ok()) return db_error(db_);
    st.bind(1, static_cast<int64_t>(limit - out.size()));
    if (Status s = collect(st); !s) return s;
  }
  Stmt mark(db_, "UPDATE message_recipient SET state = 1 WHERE id = ?");
  if (!mark.ok()) return db_error(db_);
  for (const auto& c : out) {
    mark.bind(1, c.id);
    if (mark.step() != SQLITE_DONE) return db_error(db_);
    mark.reset();
  }
  if (Status s = tx.commit(); !s) return s;
  return out;
}

Result<StoredMessage> MessageSpool::message(int64_t row) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_,
          "SELECT message_id, identity, configuration_set, envelope_from, data, mail_json, "
          "accepted_ms FROM message WHERE id = ?");
  if (!st.ok()) return db_error(db_);
  st.bind(1, row);
  int rc = st.step();
  if (rc == SQLITE_DONE) return Status::not_found("no message " + std::to_string(row));
  if (rc != SQLITE_ROW) return db_error(db_);
  StoredMessage m;
  m.row = row;
  m.message_id = st.text(0);
  m.identity = st.text(1);
  m.configuration_set = st.text(2);
  m.envelope_from = st.text(3);
  m.data = st.blob(4);
  m.mail_json = st.text(5);
  m.accepted_ms = st.i64(6);
  return m;
}

Status MessageSpool::commit_outcomes(const std::vector<Outcome>& outcomes, int64_t now_ms) {
  (void)now_ms;
  if (outcomes.empty()) return Status::ok();
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(db_);
  if (!tx.begun()) return db_error(db_);
  Stmt st(db_,
          "UPDATE message_recipient SET state = ?, attempts = ?, next_attempt_ms = ?, "
          "first_attempt_ms = ?, reply = ?, reason = ? WHERE id = ? RETURNING message");
  // The body goes when the last open recipient is final.
  Stmt close(db_,
             "UPDATE message SET open_recipients = open_recipients - 1, data = CASE WHEN "
             "open_recipients <= 1 THEN NULL ELSE data END WHERE id = ?");
  if (!st.ok() || !close.ok()) return db_error(db_);
  for (const auto& o : outcomes) {
    st.bind(1, static_cast<int64_t>(o.state)).bind(2, o.attempts).bind(3, o.next_attempt_ms);
    st.bind(4, o.first_attempt_ms).bind(5, o.reply).bind(6, o.reason).bind(7, o.id);
    int rc = st.step();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_error(db_);
    int64_t message = rc == SQLITE_ROW ? st.i64(0) : 0;
    while (rc == SQLITE_ROW) rc = st.step();
    st.reset();
    if (message && is_final(o.state)) {
      close.bind(1, message);
      if (close.step() != SQLITE_DONE) return db_error(db_);
      close.reset();
    }
  }
  return tx.commit();
}

Result<RecoveryReport> MessageSpool::recover() {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_,
          "UPDATE message_recipient SET state = CASE WHEN attempts > 0 THEN 3 ELSE 0 END, "
          "next_attempt_ms = 0 WHERE state = 1");
  if (!st.ok()) return db_error(db_);
  if (st.step() != SQLITE_DONE) return db_error(db_);
  RecoveryReport r;
  r.in_flight_reset = static_cast<uint64_t>(sqlite3_changes(db_));
  return r;
}

Result<int64_t> MessageSpool::next_deferred_time() {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "SELECT MIN(next_attempt_ms) FROM message_recipient WHERE state = 3");
  if (!st.ok()) return db_error(db_);
  if (st.step() != SQLITE_ROW) return db_error(db_);
  return st.is_null(0) ? int64_t{-1} : st.i64(0);
}

Result<MessageSpoolCounts> MessageSpool::counts() {
  std::lock_guard<std::mutex> lock(mu_);
  MessageSpoolCounts c;
  {
    Stmt st(db_, "SELECT state, COUNT(*) FROM message_recipient GROUP BY state");
    if (!st.ok()) return db_error(db_);
    while (st.step() == SQLITE_ROW) {
      auto n = static_cast<uint64_t>(st.i64(1));
      switch (static_cast<RecipientState>(st.i64(0))) {
        case RecipientState::kPending:
          c.pending += n;
          break;
        case RecipientState::kInFlight:
          c.in_flight += n;
          break;
        case RecipientState::kDeferred:
          c.deferred += n;
          break;
        case RecipientState::kDelivered:
          c.delivered += n;
          break;
        case RecipientState::kBounced:
          c.bounced += n;
          break;
        case RecipientState::kExpired:
          c.expired += n;
          break;
        case RecipientState::kSuppressed:
          c.suppressed += n;
          break;
        case RecipientState::kFailed:
          c.failed += n;
          break;
      }
    }
  }
  {
    Stmt st(db_, "SELECT COUNT(*) FROM message WHERE open_recipients > 0");
    if (!st.ok()) return db_error(db_);
    if (st.step() == SQLITE_ROW) c.messages = static_cast<uint64_t>(st.i64(0));
  }
  return c;
}

Result<std::vector<MessageSpool::RecipientStatus>> MessageSpool::recipients_of(
    const std::string& message_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_,
          "SELECT r.email, r.state, r.reason, r.reply, r.attempts FROM message_recipient r "
          "JOIN message m ON m.id = r.message WHERE m.message_id = ? ORDER BY r.id");
  if (!st.ok()) return db_error(db_);
  st.bind(1, message_id);
  std::vector<RecipientStatus> out;
  while (st.step() == SQLITE_ROW) {
    out.push_back({st.text(0), static_cast<RecipientState>(st.i64(1)), st.text(2), st.text(3),
                   static_cast<int>(st.i64(4))});
  }
  return out;
}

namespace {

constexpr const char* kRecipientColumns =
    "SELECT r.id, r.message, m.message_id, r.email, m.configuration_set, m.envelope_from, "
    "r.state, m.accepted_ms, m.mail_json FROM message_recipient r JOIN message m ON m.id = "
    "r.message ";

RecipientRecord read_recipient(Stmt& st) {
  RecipientRecord r;
  r.row = st.i64(0);
  r.message = st.i64(1);
  r.message_id = st.text(2);
  r.email = st.text(3);
  r.configuration_set = st.text(4);
  r.envelope_from = st.text(5);
  r.state = static_cast<RecipientState>(st.i64(6));
  r.accepted_ms = st.i64(7);
  r.mail_json = st.text(8);
  return r;
}

}  // namespace

Result<bool> MessageSpool::mark_feedback(int64_t row, int mark) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_,
          "UPDATE message_recipient SET feedback = feedback | ? WHERE id = ? AND "
          "(feedback & ?) = 0");
  if (!st.ok()) return db_error(db_);
  st.bind(1, static_cast<int64_t>(mark)).bind(2, row).bind(3, static_cast<int64_t>(mark));
  if (st.step() != SQLITE_DONE) return db_error(db_);
  return sqlite3_changes(db_) == 1;
}

Result<RecipientRecord> MessageSpool::recipient(int64_t row) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, (std::string(kRecipientColumns) + "WHERE r.id = ?").c_str());
  if (!st.ok()) return db_error(db_);
  st.bind(1, row);
  int rc = st.step();
  if (rc == SQLITE_DONE) return Status::not_found("no recipient " + std::to_string(row));
  if (rc != SQLITE_ROW) return db_error(db_);
  return read_recipient(st);
}

Result<std::vector<RecipientRecord>> MessageSpool::recipients_of_message(
    const std::string& message_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, (std::string(kRecipientColumns) + "WHERE m.message_id = ? ORDER BY r.id").c_str());
  if (!st.ok()) return db_error(db_);
  st.bind(1, message_id);
  std::vector<RecipientRecord> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) out.push_back(read_recipient(st));
  if (rc != SQLITE_DONE) return db_error(db_);
  return out;
}

}  // namespace magnetic::spool
