// The embedded metadata store: one SQLite file (WAL, synchronous=FULL) and the master key that
// seals its secrets.
//
// Strategy. Every table is keyed by the name the API uses, with the collation SES compares
// it with: templates and configuration sets exactly (BINARY), identities and suppressed
// addresses without ASCII case (NOCASE, which folds ASCII only). Listings page by keyset: the
// token carries the last key returned and the next page starts after it, so a page costs an
// index seek however deep it is, and rows added or removed meanwhile never shift a page.
// Prepared statements are kept for the life of the Store: are_suppressed runs for every bulk
// send, and preparing a statement costs more than the lookup it runs.
//
// The quota counts sent recipients in per-minute buckets; a bucket older than 24 hours is
// deleted when the minute turns, so the table holds at most 1440 rows. The reputation counters
// are buckets of the same kind per scope (the account, or a configuration set), kept 30 days.
//
// Event destinations belong to their configuration set (a foreign key that cascades on delete).
// Every change to them also bumps a version number in the meta table in the same transaction,
// so a cache in the service (or in another process) can tell with one read whether its copy is
// current. The tables added after the first release are created by the same IF NOT EXISTS
// schema on open: they are additive, so the schema version stays 1 and an older program still
// opens the file.
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>
#include <utility>

#include "store/sealer_internal.h"
#include "store/store.h"

namespace magnetic::store {
namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  name TEXT PRIMARY KEY,
  value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS access_key (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  secret BLOB NOT NULL,          -- sealed, bound to the id
  name TEXT NOT NULL,
  created_at TEXT NOT NULL,
  active INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS email_template (
  name TEXT PRIMARY KEY,
  subject TEXT NOT NULL,
  text TEXT NOT NULL,
  html TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS identity (
  name TEXT PRIMARY KEY COLLATE NOCASE,
  is_domain INTEGER NOT NULL,
  dkim_origin TEXT NOT NULL,
  dkim_selector TEXT NOT NULL,
  dkim_private_key BLOB,         -- sealed, bound to the lower-case name; NULL when none
  dkim_key_length TEXT NOT NULL,
  dkim_signing_enabled INTEGER NOT NULL,
  configuration_set TEXT NOT NULL,
  created_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS configuration_set (
  name TEXT PRIMARY KEY,
  delivery_options TEXT NOT NULL,
  reputation_options TEXT NOT NULL,
  sending_options TEXT NOT NULL,
  suppression_options TEXT NOT NULL,
  tracking_options TEXT NOT NULL,
  tags TEXT NOT NULL,
  created_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS account (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  settings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS suppressed (
  email TEXT PRIMARY KEY COLLATE NOCASE,
  reason TEXT NOT NULL,
  last_update_ms INTEGER NOT NULL,
  message_id TEXT NOT NULL,
  feedback_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS suppressed_by_time ON suppressed (last_update_ms, email);
CREATE TABLE IF NOT EXISTS sent_minute (
  minute INTEGER PRIMARY KEY,
  count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS event_destination (
  configuration_set TEXT NOT NULL REFERENCES configuration_set (name) ON DELETE CASCADE,
  name TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  matching_event_types TEXT NOT NULL,  -- a JSON array of SES EventType names
  kind TEXT NOT NULL,                  -- 'webhook' or 'file'
  target TEXT NOT NULL,
  definition TEXT NOT NULL,
  PRIMARY KEY (configuration_set, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reputation_minute (
  scope TEXT NOT NULL,                 -- '' for the account, else a configuration set name
  minute INTEGER NOT NULL,
  sent INTEGER NOT NULL,
  bounced INTEGER NOT NULL,
  complained INTEGER NOT NULL,
  PRIMARY KEY (scope, minute)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS reputation_by_minute ON reputation_minute (minute);
CREATE TABLE IF NOT EXISTS soft_bounce (
  email TEXT PRIMARY KEY COLLATE NOCASE,
  count INTEGER NOT NULL,
  last_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS soft_bounce_by_time ON soft_bounce (last_ms);
)sql";

constexpr size_t kMaxPageSize = 1000;
constexpr int64_t kMinuteMs = 60 * 1000;
constexpr int64_t kQuotaWindowMinutes = 24 * 60;
constexpr int64_t kReputationKeptMinutes = 30 * 24 * 60;
constexpr int64_t kDayMs = 24 * 60 * kMinuteMs;
constexpr int64_t kSoftBounceKeptMs = 30 * kDayMs;

// --- Small helpers -------------------------------------------------------------------------

std::string now_rfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// Strict: only what base64_encode makes is accepted (EVP_DecodeBlock alone skips blanks and
// would take several spellings of one token).
std::optional<std::string> base64_decode(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  size_t len = static_cast<size_t>(n);
  if (text.ends_with("=="))
    len -= 2;
  else if (text.ends_with("="))
    len -= 1;
  out.resize(len);
  if (base64_encode(out) != text) return std::nullopt;
  return out;
}

// A listing's token is base64 of "<kind>:<last key>", the kind naming the listing so that a
// token of one listing is refused by another.
std::string make_token(std::string_view kind, std::string_view last_key) {
  return base64_encode(std::string(kind) + ":" + std::string(last_key));
}

Result<std::string> read_token(std::string_view kind, const std::string& token) {
  auto raw = base64_decode(token);
  std::string prefix = std::string(kind) + ":";
  if (!raw || !raw->starts_with(prefix)) {
    return Status::invalid("NextToken '" + token + "' is not a token of this listing");
  }
  return raw->substr(prefix.size());
}

Status check_page(const Page& page) {
  if (page.size < 1 || page.size > kMaxPageSize) {
    return Status::invalid("PageSize " + std::to_string(page.size) +
                           " is out of range: it must be from 1 to 1000");
  }
  return Status::ok();
}

Status check_name(std::string_view what, const std::string& name) {
  if (name.empty()) return Status::invalid(std::string(what) + " name is empty");
  return Status::ok();
}

bool is_reason(const std::string& r) { return r == "BOUNCE" || r == "COMPLAINT"; }

// Access key ids look like AWS's: "AKIA" and 16 characters of the RFC 4648 base32 alphabet,
// which is 80 random bits. Secrets are 30 random bytes in base64: 40 characters of
// [A-Za-z0-9+/] with no padding, 240 bits.
Result<std::string> random_bytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return Status::internal("the random generator failed");
  }
  return out;
}

Result<std::string> new_access_key_id() {
  static constexpr char kBase32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  auto raw = random_bytes(10);
  if (!raw) return raw.status();
  std::string id = "AKIA";
  for (size_t i = 0; i < raw->size(); i += 5) {
    uint64_t bits = 0;
    for (size_t j = 0; j < 5; ++j) bits = (bits << 8) | static_cast<unsigned char>((*raw)[i + j]);
    for (int k = 7; k >= 0; --k) id.push_back(kBase32[(bits >> (5 * k)) & 31]);
  }
  return id;
}

Result<std::string> new_secret() {
  auto raw = random_bytes(30);
  if (!raw) return raw.status();
  return base64_encode(*raw);
}

std::string key_aad(const std::string& access_key_id) { return "access_key:" + access_key_id; }
std::string identity_aad(const std::string& name) { return "identity:" + ascii_lower(name); }

// --- Statements ----------------------------------------------------------------------------

// A use of a cached prepared statement: binds, steps, reads columns, and resets the statement
// for its next use when it goes out of scope.
class Query {
 public:
  explicit Query(sqlite3_stmt* st) : st_(st) {}
  ~Query() {
    if (st_) {
      sqlite3_reset(st_);
      sqlite3_clear_bindings(st_);
    }
  }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  bool ok() const { return st_ != nullptr; }
  Query& text(int i, std::string_view v) {
    sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Query& blob(int i, std::string_view v) {
    sqlite3_bind_blob(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Query& i64(int i, int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  Query& null(int i) {
    sqlite3_bind_null(st_, i);
    return *this;
  }
  int step() { return sqlite3_step(st_); }
  // Ready to run again with new bindings.
  void reset() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }

  std::string text(int col) const {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(st_, col));
    return p ? std::string(p, sqlite3_column_bytes(st_, col)) : std::string();
  }
  std::string blob(int col) const {
    auto p = static_cast<const char*>(sqlite3_column_blob(st_, col));
    return p ? std::string(p, sqlite3_column_bytes(st_, col)) : std::string();
  }
  int64_t i64(int col) const { return sqlite3_column_int64(st_, col); }
  bool is_null(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }

 private:
  sqlite3_stmt* st_;
};

// --- The store -----------------------------------------------------------------------------

class SqliteStore final : public Store {
 public:
  SqliteStore(sqlite3* db, Sealer sealer) : db_(db), sealer_(std::move(sealer)) {}
  ~SqliteStore() override {
    for (auto& [sql, st] : statements_) sqlite3_finalize(st);
    sqlite3_close_v2(db_);
  }

  Status init();

  Result<AccessKey> create_key(const std::string& name) override;
  Result<std::vector<AccessKey>> list_keys() override;
  Status revoke_key(const std::string& access_key_id) override;
  Result<AccessKey> find_key(const std::string& access_key_id) override;

  Status create_template(const EmailTemplate& t) override;
  Result<EmailTemplate> get_template(const std::string& name) override;
  Status update_template(const EmailTemplate& t) override;
  Status delete_template(const std::string& name) override;
  Result<Listing<EmailTemplate>> list_templates(const Page& page) override;

  Status create_identity(const Identity& identity) override;
  Result<Identity> get_identity(const std::string& name) override;
  Status update_identity(const Identity& identity) override;
  Status delete_identity(const std::string& name) override;
  Result<Listing<Identity>> list_identities(const Page& page) override;

  Status create_configuration_set(const ConfigurationSet& set) override;
  Result<ConfigurationSet> get_configuration_set(const std::string& name) override;
  Status update_configuration_set(const ConfigurationSet& set) override;
  Status delete_configuration_set(const std::string& name) override;
  Result<Listing<ConfigurationSet>> list_configuration_sets(const Page& page) override;

  Result<Account> account() override;
  Status put_account(const Account& account) override;

  Status put_suppressed(const SuppressedDestination& d) override;
  Result<SuppressedDestination> get_suppressed(const std::string& email) override;
  Status delete_suppressed(const std::string& email) override;
  Result<Listing<SuppressedDestination>> list_suppressed(const std::vector<std::string>& reasons,
                                                         int64_t start_ms, int64_t end_ms,
                                                         const Page& page) override;
  Result<std::vector<bool>> are_suppressed(const std::vector<std::string>& emails) override;

  Status record_sent(int64_t now_ms, uint64_t count) override;
  Result<uint64_t> sent_last_24_hours(int64_t now_ms) override;

  Status create_event_destination(const EventDestination& d) override;
  Status update_event_destination(const EventDestination& d) override;
  Status delete_event_destination(const std::string& configuration_set,
                                  const std::string& name) override;
  Result<std::vector<EventDestination>> list_event_destinations(
      const std::string& configuration_set) override;
  Result<std::vector<EventDestination>> list_event_destinations_all() override;
  Result<uint64_t> event_destinations_version() override;

  Status record_reputation(const std::string& scope, int64_t now_ms, uint64_t sent,
                           uint64_t bounced, uint64_t complained) override;
  Result<ReputationCounts> reputation_since(const std::string& scope, int64_t since_ms,
                                            int64_t now_ms) override;

  Status clear_reputation(const std::string& scope) override;
  Result<int> count_soft_bounce(const std::string& email, int64_t now_ms) override;
  Status reset_soft_bounces(const std::string& email) override;

 private:
  // A cached statement for `sql`; !ok() when it does not prepare (see error()).
  Query query(const char* sql) {
    auto it = statements_.find(sql);
    if (it == statements_.end()) {
      sqlite3_stmt* st = nullptr;
      if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr) != SQLITE_OK) {
        return Query(nullptr);
      }
      it = statements_.emplace(sql, st).first;
    }
    return Query(it->second);
  }
  Status error(std::string_view what) const {
    return Status::io_error("store: " + std::string(what) + ": " + sqlite3_errmsg(db_));
  }
  Status exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      return Status::io_error("store: " + msg);
    }
    return Status::ok();
  }
  // Runs a statement that returns no rows; `what` names the operation in an error.
  Status run(Query& q, std::string_view what) {
    if (q.step() != SQLITE_DONE) return error(what);
    return Status::ok();
  }
  int changes() const { return sqlite3_changes(db_); }

  // Runs body inside BEGIN IMMEDIATE ... COMMIT, rolling back when it fails. mu_ is held.
  template <typename Body>
  Status transaction(Body body) {
    if (Status s = exec("BEGIN IMMEDIATE"); !s) return s;
    Status s = body();
    if (s) s = exec("COMMIT");
    if (!s) (void)exec("ROLLBACK");
    return s;
  }

  Status init_schema();
  Result<Identity> identity_row(const Query& q);
  // kNotFound naming the set when there is none of that name. mu_ is held.
  Status check_set_exists(const std::string& name);
  Status bump_event_destinations_version();

  std::mutex mu_;
  sqlite3* db_;
  Sealer sealer_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
  int64_t pruned_minute_ = std::numeric_limits<int64_t>::min();
  int64_t reputation_pruned_minute_ = std::numeric_limits<int64_t>::min();
  int64_t soft_bounce_pruned_day_ = std::numeric_limits<int64_t>::min();
};

// The schema, and a sealed check value that proves the master key is the one the secrets in
// this file were sealed with: a wrong key is refused at open, not at the first signature.
Status SqliteStore::init() {
  {
    Query q = query("PRAGMA user_version");
    if (!q.ok() || q.step() != SQLITE_ROW) return error("reading the schema version");
    if (q.i64(0) > kSchemaVersion) {
      return Status::invalid("metadata.db has schema version " + std::to_string(q.i64(0)) +
                             ", newer than this program's " + std::to_string(kSchemaVersion));
    }
  }
  if (Status s = exec("BEGIN IMMEDIATE"); !s) return s;
  Status s = init_schema();
  if (!s) {
    (void)exec("ROLLBACK");
    return s;
  }
  return exec("COMMIT");
}

Status SqliteStore::init_schema() {
  if (Status s = exec(kSchema); !s) return s;
  if (Status s = exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str()); !s) {
    return s;
  }

  constexpr std::string_view kCheckText = "magnetic master key check";
  constexpr std::string_view kCheckAad = "meta:key_check";
  std::optional<std::string> check;
  {
    Query get = query("SELECT value FROM meta WHERE name = 'key_check'");
    if (!get.ok()) return error("reading the key check");
    int rc = get.step();
    if (rc == SQLITE_ROW) {
      check = get.blob(0);
    } else if (rc != SQLITE_DONE) {
      return error("reading the key check");
    }
  }
  if (check) {
    auto opened = sealer_.unseal(*check, kCheckAad);
    if (!opened || *opened != kCheckText) {
      return Status::invalid(
          "master.key is not the key this metadata.db was sealed with; restore the right "
          "master.key (the secrets in metadata.db cannot be opened without it)");
    }
    return Status::ok();
  }
  auto sealed = sealer_.seal(kCheckText, kCheckAad);
  if (!sealed) return sealed.status();
  Query put = query("INSERT INTO meta (name, value) VALUES ('key_check', ?)");
  if (!put.ok()) return error("writing the key check");
  put.blob(1, *sealed);
  return run(put, "writing the key check");
}

// --- Access keys ---------------------------------------------------------------------------

Result<AccessKey> SqliteStore::create_key(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  AccessKey key;
  key.name = name;
  key.created_at = now_rfc3339();
  key.active = true;
  auto secret = new_secret();
  if (!secret) return secret.status();
  key.secret = std::move(secret).value();

  // 80 random bits make a clash all but impossible; a few tries make it impossible to matter.
  for (int attempt = 0; attempt < 4; ++attempt) {
    auto id = new_access_key_id();
    if (!id) return id.status();
    auto sealed = sealer_.seal(key.secret, key_aad(*id));
    if (!sealed) return sealed.status();
    Query q = query(
        "INSERT INTO access_key (id, secret, name, created_at, active) VALUES (?, ?, ?, ?, 1) "
        "ON CONFLICT (id) DO NOTHING");
    if (!q.ok()) return error("creating an access key");
    q.text(1, *id).blob(2, *sealed).text(3, key.name).text(4, key.created_at);
    if (Status s = run(q, "creating an access key"); !s) return s;
    if (changes() == 1) {
      key.access_key_id = std::move(id).value();
      return key;
    }
  }
  return Status::internal("could not make an unused access key id");
}

Result<std::vector<AccessKey>> SqliteStore::list_keys() {
  std::lock_guard<std::mutex> lock(mu_);
  Query q = query("SELECT id, name, created_at, active FROM access_key ORDER BY seq");
  if (!q.ok()) return error("listing access keys");
  std::vector<AccessKey> keys;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    keys.push_back({q.text(0), "", q.text(1), q.text(2), q.i64(3) != 0});
  }
  if (rc != SQLITE_DONE) return error("listing access keys");
  return keys;
}

Status SqliteStore::revoke_key(const std::string& access_key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Query q = query("UPDATE access_key SET active = 0 WHERE id = ?");
  if (!q.ok()) return error("revoking an access key");
  q.text(1, access_key_id);
  if (Status s = run(q, "revoking an access key"); !s) return s;
  if (changes() == 0) return Status::not_found("Access key '" + access_key_id + "' does not exist");
  return Status::ok();
}

Result<AccessKey> SqliteStore::find_key(const std::string& access_key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Query q =
      query("SELECT id, secret, name, created_at FROM access_key WHERE id = ? AND active = 1");
  if (!q.ok()) return error("reading an access key");
  q.text(1, access_key_id);
  int rc = q.step();
  if (rc == SQLITE_DONE) {
    return Status::not_found("Access key '" + access_key_id + "' does not exist or is revoked");
  }
  if (rc != SQLITE_ROW) return error("reading an access key");
  auto secret = sealer_.unseal(q.blob(1), key_aad(access_key_id));
  if (!secret) {
    return Status::internal("the secret of access key '" + access_key_id +
                            "' cannot be opened: " + secret.status().message());
  }
  return AccessKey{q.text(0), std::move(secret).value(), q.text(2), q.text(3), true};
}

// --- Templates -----------------------------------------------------------------------------

Status SqliteStore::create_template(const EmailTemplate& t) {
  if (Status s = check_name("Template", t.name); !s) return s;
  std::lock_guard<std::mutex> lock(mu_);
  std::string created = t.created_at.empty() ? now_rfc3339() : t.created_at;
  std::string updated = t.updated_at.empty() ? created : t.updated_at;
  Query q = query(
      "INSERT INTO email_template (name, subject, text, html, created_at, updated_at) "
      "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING");
  if (!q.ok()) return error("creating a template");
  q.text(1, t.name)
      .text(2, t.subject)
      .text(3, t.text)
      .text(4, t.html)
      .text(5, created)
      .text(6, updated);
  if (Status s = run(q, "creating a template"); !s) return s;
  if (changes() == 0)
    return {StatusCode::kAlreadyExists, "Template '" + t.name + "' already exists"};
  return Status::ok();
}

Result<EmailTemplate> SqliteStore::get_template(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  Query q = query(
      "SELECT name, subject, text, html, created_at, updated_at FROM email_template "
      "WHERE name = ?");
  if (!q.ok()) return error("reading a template");
  q.text(1, name);
  int rc = q.step();
  if (rc == SQLITE_DONE) return Status::not_found("Template '" + name + "' does not exist");
  if (rc != SQLITE_ROW) return error("reading a template");
  return EmailTemplate{q.text(0), q.text(1), q.text(2), q.text(3), q.text(4), q.text(5)};
}

Status SqliteStore::update_template(const EmailTemplate& t) {
  std::lock_guard<std::mutex> lock(mu_);
  Query q = query(
      "UPDATE email_template SET subject = ?, text = ?, html = ?, updated_at = ? WHERE name = ?");
  if (!q.ok()) return error("updating a template");
  q.text(1, t.subject)
      .text(2, t.text)
      .text(3, t.html)
      .text(4, t.updated_at.empty() ? now_rfc3339() : t.updated_at)
      .text(5, t.name);
  if (Status s = run(q, "updating a template"); !s) return s;
  if (changes() == 0) return Status::not_found("Template '" + t.name + "' does not exist");
  return Status::ok();
}

Status SqliteStore::delete_template(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  Query q = query("DELETE FROM email_template WHERE name = ?");
  if (!q.ok()) return error("deleting a template");
  q.text(1, name);
  if (Status s = run(q, "deleting a template"); !s) return s;
  if (changes() == 0) return Status::not_found("Template '" + name + "' does not exist");
  return Status::ok();
}

Result<Listing<EmailTemplate>> SqliteStore::list_templates(const Page& page) {
  if (Status s = check_page(page); !s) return s;
  std::string after;
  if (!page.token.empty()) {
    auto t = read_token("template", page.token);
    if (!t) return t.status();
    after = std::move(t).value();
  }
  std::lock_guard<std::mutex> lock(mu_);
  Query q = query(
      "SELECT name, subject, text, html, created_at, updated_at FROM email_template "
      "WHERE name > ? ORDER BY name LIMIT ?");
  if (!q.ok()) return error("listing templates");
  q.text(1, after).i64(2, static_cast<int64_t>(page.size) + 1);
  Listing<EmailTemplate> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    out.items.push_back({q.text(0), q.text(1), q.text(2), q.text(3), q.text(4), q.text(5)});
  }
  if (rc != SQLITE_DONE) return error("listing templates");
  // One row more than the page was asked for: there is a next page.
  if (out.items.size() > page.size) {
    out.items.pop_back();
    out.next_token = make_token("template", out.items.back().name);
  }
  return out;
}

// --- Identities ----------------------------------------------------------------------------

constexpr const char* kIdentityColumns =
    "name, is_domain, dkim_origin, dkim_selector, dkim_private_key, dkim_key_length, "
    "dkim_signing_enabled, configuration_set, created_at";

Result<Identity> SqliteStore::identity_row(const Query& q) {
  Identity id;
  id.name = q.text(0);
  id.is_domain = q.i64(1) != 0;
  id.dkim_origin = q.text(2);
  id.dkim_selector = q.text(3);
  if (!q.is_null(4)) {
    auto pem = sealer_.unseal(q.blob(4), identity_aad(id.name));
    if (!pem) {
      return Status::internal("the DKIM private key of identity '" + id.name +
                              "' cannot be opened: " + pem.status().message());
    }
    id.dkim_private_key_pem = std::move(pem).value();
  }
  id.dkim_key_length = q.text(5);
  id.dkim_signing_enabled = q.i64(6) != 0;
  id.configuration_set = q.text(7);
  id.created_at = q.text(8);
  return id;
}

Status SqliteStore::create_identity(const Identity& identity) {
  if (Status s = check_name("Identity", identity.name); !s) return s;
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<std::string> sealed;
  if (!identity.dkim_private_key_pem.empty()) {
    auto r = sealer_.seal(identity.dkim_private_key_pem, identity_aad(identity.name));
    if (!r) return r.status();
    sealed = std::move(r).value();
  }
  Query q = query(
      "INSERT INTO identity (name, is_domain, dkim_origin, dkim_selector, dkim_private_key, "
      "dkim_key_length, dkim_signing_enabled, configuration_set, created_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING");
  if (!q.ok()) return error("creating an identity");
  q.text(1, identity.name)
      .i64(2, identity.is_domain ? 1 : 0)
      .text(3, identity.dkim_origin)
      .text(4, identity.dkim_selector);
  if (sealed) {
    q.blob(5, *sealed);
  } else {
    q.null(5);
  }
  q.text(6, identity.dkim_key_length)
      .i64(7, identity.dkim_signing_enabled ? 1 : 0)
      .text(8, identity.configuration_set)
      .text(9, identity.created_at.empty() ? now_rfc3339() : identity.created_at);
  if (Status s = run(q, "creating an identity"); !s) return s;
  if (changes() == 0) {
    return {StatusCode::kAlreadyExists, "Identity '" + identity.name + "' already exists"};
  }
  return Status::ok();
}

Result<Identity> SqliteStore::get_identity(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  static const std::string sql =
      std::string("SELECT ") + kIdentityColumns + " FROM identity WHERE name = ?";
  Query q = query(sql.c_str());
  if (!q.ok()) return error("reading an identity");
  q.text(1, name);
  int rc = q.step();
  if (rc == SQLITE_DONE) return Status::not_found("Identity '" + name + "' does not exist");
  if (rc != SQLITE_ROW) return error("reading an identity");
  return identity_row(q);
}

Status SqliteStore::update_identity(const Identity& identity) {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<std::string> sealed;
  if (!identity.dkim_private_key_pem.empty()) {
    auto r = sealer_.seal(identity.dkim_private_key_pem, identity_aad(identity.name));
    if (!r) return r.status();
    sealed = std::move(r).value();
  }
  // The name keeps the spelling it was created with; created_at stays.
  Query q = query(
      "UPDATE identity SET is_domain = ?, dkim_origin = ?, dkim_selector = ?, "
      "dkim_private_key = ?, dkim_key_length = ?, dkim_signing_enabled = ?, "
      "configuration_set = ? WHERE name = ?");
  if (!q.ok()) return error("updating an identity");
  q.i64(1, identity.is_domain ? 1 : 0)
      .text(2, identity.dkim_origin)
      .text(3, identity.dkim_selector);
  if (sealed) {
    q.blob(4, *sealed);
  } else {
    q.null(4);
  }
  q.text(5, identity.dkim_key_length)
      .i64(6, identity.dkim_signing_enabled ? 1 : 0)
      .text(7, identity.configuration_set)
      .text(8, identity.name);
  if (Status s = run(q, "updating an identity"); !s) return s;
  if (changes() == 0) return Status::not_found("Identity '" + identity.name + "' does not exist");
  return Status::ok();
}

Status SqliteStore::delete_identity(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  Query q = query("DELETE FROM identity WHERE name = ?");
  if (!q.ok()) return error("deleting an identity");
  q.text(1, name);
  if (Status s = run(q, "deleting an identity"); !s) return s;
  if (changes() == 0) return Status::not_found("Identity '" + name + "' does not exist");
  return Status::ok();
}

Result<Listing<Identity>> SqliteStore::list_identities(const Page& page) {
  if (Status s = check_page(page); !s) return s;
  std::string after;
  if (!page.token.empty()) {
    auto t = read_token("identity", page.token);
    if (!t) return t.status();
    after = std::move(t).value();
  }
  std::lock_guard<std::mutex> lock(mu_);
  // Private keys stay sealed in a listing: no SES listing returns them, and a page of 1000
  // identities need not put 1000 private keys in memory.
  Query q = query(
      "SELECT name, is_domain, dkim_origin, dkim_selector, NULL, dkim_key_length, "
      "dkim_signing_enabled, configuration_set, created_at FROM identity "
      "WHERE name > ? ORDER BY name LIMIT ?");
  if (!q.ok()) return error("listing identities");
  q.text(1, after).i64(2, static_cast<int64_t>(page.size) + 1);
  Listing<Identity> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    auto id = identity_row(q);
    if (!id) return id.status();
    out.items.push_back(std::move(id).value());
  }
  if (rc != SQLITE_DONE) return error("listing identities");
  if (out.items.size() > page.size) {
    out.items.pop_back();
    out.next_token = make_token("identity", out.items.back().name);
  }
  return out;
}

// --- Configuration sets --------------------------------------------------------------------

ConfigurationSet configuration_set_row(const Query& q) {
  return {q.text(0), q.text(1), q.text(2), q.text(3), q.text(4), q.text(5), q.text(6), q.text(7)};
}

Status SqliteStore::create_configuration_set(const ConfigurationSet& set) {
  if (Status s = check_name("Configuration set", set.name); !s) return s;
  std::lock_guard<std::mutex> lock(mu_);
  Query q = query(
      "INSERT INTO configuration_set (name, delivery_options, reputation_options, "
      "sending_options, suppression_options, tracking_options, tags, created_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING");
  if (!q.ok()) return error("creating a configuration set");
  q.text(1, set.name)
      .text(2, set.delivery_options)
      .text(3, set.reputation_options)
      .text(4, set.sending_options)
      .text(5, set.suppression_options)
      .text(6, set.tracking_options)
      .text(7, set.tags)
      .text(8, set.created_at.empty() ? now_rfc3339() : set.created_at);
  if (Status s = run(q, "creating a configuration set"); !s) return s;
  if (changes() == 0) {
    return {StatusCode::kAlreadyExists, "Configuration set '" + set.name + "' already exists"};
  }
  return Status::ok();
}

Result<ConfigurationSet> SqliteStore::get_configuration_set(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  Query q = query(
      "SELECT name, delivery_options, reputation_options, sending_options, suppression_options, "
      "tracking_options, tags, created_at FROM configuration_set WHERE name = ?");
  if (!q.ok()) return error("reading a configuration set");
  q.text(1, name);
  int rc = q.step();
  if (rc == SQLITE_DONE) {
    return Status::not_found("Configuration set '" + name + "' does not exist");
  }
  if (rc != SQLITE_ROW) return error("reading a configuration set");
  return configuration_set_row(q);
}

Status SqliteStore::update_configuration_set(const ConfigurationSet& set) {
  std::lock_guard<std::mutex> lock(mu_);
  Query q = query(
      "UPDATE configuration_set SET delivery_options = ?, reputation_options = ?, "
      "sending_options = ?, suppression_options = ?, tracking_options = ?, tags = ? "
      "WHERE name = ?");
  if (!q.ok()) return error("updating a configuration set");
  q.text(1, set.delivery_options)
      .text(2, set.reputation_options)
      .text(3, set.sending_options)
      .text(4, set.suppression_options)
      .text(5, set.tracking_options)
      .text(6, set.tags)
      .text(7, set.name);
  if (Status s = run(q, "updating a configuration set"); !s) return s;
  if (changes() == 0) {
    return Status::not_found("Configuration set '" + set.name + "' does not exist");
  }
  return Status::ok();
}

// The set, its event destinations (also by the foreign key's cascade; deleted here by name too,
// so that a connection without foreign keys on leaves none behind) and its reputation
// counters, which a new set of the same name must not inherit.
Status SqliteStore::delete_configuration_set(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  return transaction([&]() -> Status {
    {
      Query q = query("DELETE FROM event_destination WHERE configuration_set = ?");
      if (!q.ok()) return error("deleting a configuration set");
      q.text(1, name);
      if (Status s = run(q, "deleting a configuration set"); !s) return s;
    }
    {
      Query q = query("DELETE FROM configuration_set WHERE name = ?");
      if (!q.ok()) return error("deleting a configuration set");
      q.text(1, name);
      if (Status s = run(q, "deleting a configuration set"); !s) return s;
      if (changes() == 0) {
        return Status::not_found("Configuration set '" + name + "' does not exist");
      }
    }
    {
      Query q = query("DELETE FROM reputation_minute WHERE scope = ?");
      if (!q.ok()) return error("deleting a configuration set");
      q.text(1, name);
      if (Status s = run(q, "deleting a configuration set"); !s) return s;
    }
    return bump_event_destinations_version();
  });
}

Result<Listing<ConfigurationSet>> SqliteStore::list_configuration_sets(const Page& page) {
  if (Status s = check_page(page); !s) return s;
  std::string after;
  if (!page.token.empty()) {
    auto t = read_token("configuration_set", page.token);
    if (!t) return t.status();
    after = std::move(t).value();
  }
  std::lock_guard<std::mutex> lock(mu_);
  Query q = query(
      "SELECT name, delivery_options, reputation_options, sending_options, suppression_options, "
      "tracking_options, tags, created_at FROM configuration_set "
      "WHERE name > ? ORDER BY name LIMIT ?");
  if (!q.ok()) return error("listing configuration sets");
  q.text(1, after).i64(2, static_cast<int64_t>(page.size) + 1);
  Listing<ConfigurationSet> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) out.items.push_back(configuration_set_row(q));
  if (rc != SQLITE_DONE) return error("listing configuration sets");
  if (out.items.size() > page.size) {
    out.items.pop_back();
    out.next_token = make_token("configuration_set", out.items.back().name);
  }
  return out;
}

// --- Account -------------------------------------------------------------------------------

// The account is one JSON object; a field it lacks keeps the default of struct Account, so a
// field added later needs no migration.
Result<Account> SqliteStore::account() {
  std::lock_guard<std::mutex> lock(mu_);
  Query q = query("SELECT settings FROM account WHERE id = 1");
  if (!q.ok()) return error("reading the account");
  int rc = q.step();
  Account a;
  if (rc == SQLITE_DONE) return a;
  if (rc != SQLITE_ROW) return error("reading the account");
  auto j = nlohmann::json::parse(q.text(0), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::internal("store: the account settings are not a JSON object");
  }
  try {
    a.max_24_hour_send = j.value("Max24HourSend", a.max_24_hour_send);
    a.max_send_rate = j.value("MaxSendRate", a.max_send_rate);
    a.sending_enabled = j.value("SendingEnabled", a.sending_enabled);
    a.suppressed_reasons = j.value("SuppressedReasons", a.suppressed_reasons);
    a.ses_compatible_escaping = j.value("SesCompatibleEscaping", a.ses_compatible_escaping);
    a.enforcement_status = j.value("EnforcementStatus", a.enforcement_status);
    a.sending_paused_reason = j.value("SendingPausedReason", a.sending_paused_reason);
    a.reputation_reset_ms = j.value("ReputationResetMs", a.reputation_reset_ms);
  } catch (const nlohmann::json::exception& e) {
    return Status::internal(std::string("store: the account settings are damaged: ") + e.what());
  }
  return a;
}

Status SqliteStore::put_account(const Account& a) {
  if (!std::isfinite(a.max_24_hour_send) || a.max_24_hour_send < 0) {
    return Status::invalid("Max24HourSend must be a number of at least 0");
  }
  if (!std::isfinite(a.max_send_rate) || a.max_send_rate < 0) {
    return Status::invalid("MaxSendRate must be a number of at least 0");
  }
  if (a.enforcement_status != "HEALTHY" && a.enforcement_status != "PROBATION" &&
      a.enforcement_status != "SHUTDOWN") {
    return Status::invalid("EnforcementStatus '" + a.enforcement_status +
                           "' is not HEALTHY, PROBATION or SHUTDOWN");
  }
  if (a.reputation_reset_ms < 0) {
    return Status::invalid("ReputationResetMs " + std::to_string(a.reputation_reset_ms) +
                           " is before 1970");
  }
  for (size_t i = 0; i < a.suppressed_reasons.size(); ++i) {
    const std::string& r = a.suppressed_reasons[i];
    if (!is_reason(r)) {
      return Status::invalid("SuppressedReasons: '" + r + "' is not BOUNCE or COMPLAINT");
    }
    for (size_t j = 0; j < i; ++j) {
      if (a.suppressed_reasons[j] == r) {
        return Status::invalid("SuppressedReasons: '" + r + "' is listed twice");
      }
    }
  }
  nlohmann::json j = {{"Max24HourSend", a.max_24_hour_send},
                      {"MaxSendRate", a.max_send_rate},
                      {"SendingEnabled", a.sending_enabled},
                      {"SuppressedReasons", a.suppressed_reasons},
                      {"SesCompatibleEscaping", a.ses_compatible_escaping},
                      {"EnforcementStatus", a.enforcement_status},
                      {"SendingPausedReason", a.sending_paused_reason},
                      {"ReputationResetMs", a.reputation_reset_ms}};
  std::lock_guard<std::mutex> lock(mu_);
  Query q = query(
      "INSERT INTO account (id, settings) VALUES (1, ?) "
      "ON CONFLICT (id) DO UPDATE SET settings = excluded.settings");
  if (!q.ok()) return error("writing the account");
  q.text(1, j.dump());
  return run(q, "writing the account");
}

// --- Suppression list ----------------------------------------------------------------------

SuppressedDestination suppressed_row(const Query& q) {
  return {q.text(0), q.text(1), q.i64(2), q.text(3), q.text(4)};
}

Status SqliteStore::put_suppressed(const SuppressedDestination& d) {
  if (d.email.empty()) return Status::invalid("EmailAddress is empty");
  if (!is_reason(d.reason)) {
    return Status::invalid("Reason '" + d.reason + "' is not BOUNCE or COMPLAINT");
  }
  if (d.last_update_ms < 0) {
    return Status::invalid("LastUpdateTime " + std::to_string(d.last_update_ms) +
                           " is before 1970");
  }
  std::lock_guard<std::mutex> lock(mu_);
  // REPLACE: the NOCASE key makes "Ann@x.example" replace "ann@x.example", keeping the new
  // spelling.
  Query q = query(
      "INSERT OR REPLACE INTO suppressed (email, reason, last_update_ms, message_id, feedback_id) "
      "VALUES (?, ?, ?, ?, ?)");
  if (!q.ok()) return error("suppressing an address");
  q.text(1, d.email)
      .text(2, d.reason)
      .i64(3, d.last_update_ms == 0 ? now_ms() : d.last_update_ms)
      .text(4, d.message_id)
      .text(5, d.feedback_id);
  return run(q, "suppressing an address");
}

Result<SuppressedDestination> SqliteStore::get_suppressed(const std::string& email) {
  std::lock_guard<std::mutex> lock(mu_);
  Query q = query(
      "SELECT email, reason, last_update_ms, message_id, feedback_id FROM suppressed "
      "WHERE email = ?");
  if (!q.ok()) return error("reading a suppressed address");
  q.text(1, email);
  int rc = q.step();
  if (rc == SQLITE_DONE) {
    return Status::not_found("Email address '" + email + "' is not on the suppression list");
  }
  if (rc != SQLITE_ROW) return error("reading a suppressed address");
  return suppressed_row(q);
}

Status SqliteStore::delete_suppressed(const std::string& email) {
  std::lock_guard<std::mutex> lock(mu_);
  Query q = query("DELETE FROM suppressed WHERE email = ?");
  if (!q.ok()) return error("removing a suppressed address");
  q.text(1, email);
  if (Status s = run(q, "removing a suppressed address"); !s) return s;
  if (changes() == 0) {
    return Status::not_found("Email address '" + email + "' is not on the suppression list");
  }
  return Status::ok();
}

// Newest first: ordered by last_update_ms descending, then by address descending (ASCII case
// folded) so that entries of the same millisecond have one order too. The token holds the
// last (time, address) pair and the next page starts below it, a range of the
// suppressed_by_time index.
Result<Listing<SuppressedDestination>> SqliteStore::list_suppressed(
    const std::vector<std::string>& reasons, int64_t start_ms, int64_t end_ms, const Page& page) {
  if (Status s = check_page(page); !s) return s;
  bool bounce = reasons.empty(), complaint = reasons.empty();
  for (const auto& r : reasons) {
    if (r == "BOUNCE") {
      bounce = true;
    } else if (r == "COMPLAINT") {
      complaint = true;
    } else {
      return Status::invalid("Reasons: '" + r + "' is not BOUNCE or COMPLAINT");
    }
  }
  if (start_ms < 0) return Status::invalid("StartDate is before 1970");
  if (end_ms < 0) return Status::invalid("EndDate is before 1970");
  if (start_ms != 0 && end_ms != 0 && start_ms > end_ms) {
    return Status::invalid("StartDate (" + std::to_string(start_ms) + ") is after EndDate (" +
                           std::to_string(end_ms) + ")");
  }
  int64_t below_ms = 0;
  std::string below_email;
  bool has_cursor = !page.token.empty();
  if (has_cursor) {
    auto t = read_token("suppressed", page.token);
    if (!t) return t.status();
    size_t space = t->find(' ');
    char* end = nullptr;
    if (space != std::string::npos) below_ms = std::strtoll(t->c_str(), &end, 10);
    if (space == std::string::npos || end != t->c_str() + space) {
      return Status::invalid("NextToken '" + page.token + "' is not a token of this listing");
    }
    below_email = t->substr(space + 1);
  }

  std::lock_guard<std::mutex> lock(mu_);
  // Two statements, so that each is one plain index range for the planner.
  constexpr const char* kFirst =
      "SELECT email, reason, last_update_ms, message_id, feedback_id FROM suppressed "
      "WHERE last_update_ms BETWEEN ?1 AND ?2 "
      "AND ((?3 AND reason = 'BOUNCE') OR (?4 AND reason = 'COMPLAINT')) "
      "ORDER BY last_update_ms DESC, email DESC LIMIT ?5";
  constexpr const char* kNext =
      "SELECT email, reason, last_update_ms, message_id, feedback_id FROM suppressed "
      "WHERE last_update_ms BETWEEN ?1 AND ?2 "
      "AND ((?3 AND reason = 'BOUNCE') OR (?4 AND reason = 'COMPLAINT')) "
      "AND (last_update_ms, email) < (?6, ?7) "
      "ORDER BY last_update_ms DESC, email DESC LIMIT ?5";
  Query q = query(has_cursor ? kNext : kFirst);
  if (!q.ok()) return error("listing suppressed addresses");
  q.i64(1, start_ms)
      .i64(2, end_ms == 0 ? std::numeric_limits<int64_t>::max() : end_ms)
      .i64(3, bounce ? 1 : 0)
      .i64(4, complaint ? 1 : 0)
      .i64(5, static_cast<int64_t>(page.size) + 1);
  if (has_cursor) q.i64(6, below_ms).text(7, below_email);
  Listing<SuppressedDestination> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) out.items.push_back(suppressed_row(q));
  if (rc != SQLITE_DONE) return error("listing suppressed addresses");
  if (out.items.size() > page.size) {
    out.items.pop_back();
    const auto& last = out.items.back();
    out.next_token =
        make_token("suppressed", std::to_string(last.last_update_ms) + " " + last.email);
  }
  return out;
}

// One read transaction around one prepared statement run per address: one snapshot and one
// lock for the whole batch, and no SQL text to build or prepare per call.
Result<std::vector<bool>> SqliteStore::are_suppressed(const std::vector<std::string>& emails) {
  std::vector<bool> out(emails.size(), false);
  if (emails.empty()) return out;
  std::lock_guard<std::mutex> lock(mu_);
  {
    Query begin = query("BEGIN");
    if (!begin.ok() || begin.step() != SQLITE_DONE) return error("checking the suppression list");
  }
  Status status;
  {
    Query q = query("SELECT 1 FROM suppressed WHERE email = ?");
    if (!q.ok()) status = error("checking the suppression list");
    for (size_t i = 0; status && i < emails.size(); ++i) {
      q.text(1, emails[i]);
      int rc = q.step();
      if (rc == SQLITE_ROW) {
        out[i] = true;
      } else if (rc != SQLITE_DONE) {
        status = error("checking the suppression list");
      }
      q.reset();
    }
  }
  // Nothing was written: ending the read transaction either way is the same.
  Query end = query("COMMIT");
  bool ended = end.ok() && end.step() == SQLITE_DONE;
  if (!ended) (void)exec("ROLLBACK");
  if (!status) return status;
  if (!ended) return error("checking the suppression list");
  return out;
}

// --- Sending quota -------------------------------------------------------------------------

Status SqliteStore::record_sent(int64_t now, uint64_t count) {
  if (now < 0)
    return Status::invalid("record_sent: time " + std::to_string(now) + " is before 1970");
  if (count > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::invalid("record_sent: count " + std::to_string(count) + " is too large");
  }
  if (count == 0) return Status::ok();
  int64_t minute = now / kMinuteMs;
  std::lock_guard<std::mutex> lock(mu_);
  Query q = query(
      "INSERT INTO sent_minute (minute, count) VALUES (?, ?) "
      "ON CONFLICT (minute) DO UPDATE SET count = count + excluded.count");
  if (!q.ok()) return error("counting sent messages");
  q.i64(1, minute).i64(2, static_cast<int64_t>(count));
  if (Status s = run(q, "counting sent messages"); !s) return s;

  if (minute != pruned_minute_) {
    Query prune = query("DELETE FROM sent_minute WHERE minute <= ?");
    if (!prune.ok()) return error("pruning the sent counts");
    prune.i64(1, minute - kQuotaWindowMinutes);
    if (Status s = run(prune, "pruning the sent counts"); !s) return s;
    pruned_minute_ = minute;
  }
  return Status::ok();
}

// The current minute and the 1439 before it.
Result<uint64_t> SqliteStore::sent_last_24_hours(int64_t now) {
  if (now < 0) {
    return Status::invalid("sent_last_24_hours: time " + std::to_string(now) + " is before 1970");
  }
  int64_t minute = now / kMinuteMs;
  std::lock_guard<std::mutex> lock(mu_);
  Query q =
      query("SELECT COALESCE(SUM(count), 0) FROM sent_minute WHERE minute > ? AND minute <= ?");
  if (!q.ok()) return error("reading the sent counts");
  q.i64(1, minute - kQuotaWindowMinutes).i64(2, minute);
  if (q.step() != SQLITE_ROW) return error("reading the sent counts");
  return static_cast<uint64_t>(q.i64(0));
}

// --- Event destinations --------------------------------------------------------------------

Status check_event_destination(const EventDestination& d) {
  if (d.configuration_set.empty()) return Status::invalid("Configuration set name is empty");
  if (d.name.empty()) return Status::invalid("Event destination name is empty");
  std::string which = "Event destination '" + d.name + "'";
  if (d.matching_event_types.empty()) {
    return Status::invalid(which + " has no matching event types");
  }
  for (const std::string& t : d.matching_event_types) {
    if (!is_event_type(t)) {
      return Status::invalid(which + ": '" + t + "' is not an SES event type");
    }
  }
  if (d.kind != EventDestination::Kind::kWebhook && d.kind != EventDestination::Kind::kFile) {
    return Status::invalid(which + " has an unknown kind");
  }
  if (d.target.empty()) return Status::invalid(which + " has no target");
  return Status::ok();
}

const char* kind_text(EventDestination::Kind kind) {
  return kind == EventDestination::Kind::kFile ? "file" : "webhook";
}

Status destination_not_found(const std::string& set, const std::string& name) {
  return Status::not_found("Event destination '" + name +
                           "' does not exist in configuration set '" + set + "'");
}

constexpr const char* kDestinationColumns =
    "configuration_set, name, enabled, matching_event_types, kind, target, definition";

Result<EventDestination> destination_row(const Query& q) {
  EventDestination d;
  d.configuration_set = q.text(0);
  d.name = q.text(1);
  d.enabled = q.i64(2) != 0;
  auto types = nlohmann::json::parse(q.text(3), nullptr, false);
  if (!types.is_array()) {
    return Status::internal("store: the event types of event destination '" + d.name +
                            "' are damaged");
  }
  for (const auto& t : types) {
    if (!t.is_string()) {
      return Status::internal("store: the event types of event destination '" + d.name +
                              "' are damaged");
    }
    d.matching_event_types.push_back(t.get<std::string>());
  }
  std::string kind = q.text(4);
  if (kind == "webhook") {
    d.kind = EventDestination::Kind::kWebhook;
  } else if (kind == "file") {
    d.kind = EventDestination::Kind::kFile;
  } else {
    return Status::internal("store: event destination '" + d.name + "' has unknown kind '" + kind +
                            "'");
  }
  d.target = q.text(5);
  d.definition_json = q.text(6);
  return d;
}

Status SqliteStore::check_set_exists(const std::string& name) {
  Query q = query("SELECT 1 FROM configuration_set WHERE name = ?");
  if (!q.ok()) return error("reading a configuration set");
  q.text(1, name);
  int rc = q.step();
  if (rc == SQLITE_DONE) {
    return Status::not_found("Configuration set '" + name + "' does not exist");
  }
  if (rc != SQLITE_ROW) return error("reading a configuration set");
  return Status::ok();
}

Status SqliteStore::bump_event_destinations_version() {
  Query q = query(
      "INSERT INTO meta (name, value) VALUES ('event_destinations_version', 1) "
      "ON CONFLICT (name) DO UPDATE SET value = value + 1");
  if (!q.ok()) return error("counting event destination changes");
  return run(q, "counting event destination changes");
}

Status SqliteStore::create_event_destination(const EventDestination& d) {
  if (Status s = check_event_destination(d); !s) return s;
  std::lock_guard<std::mutex> lock(mu_);
  return transaction([&]() -> Status {
    if (Status s = check_set_exists(d.configuration_set); !s) return s;
    {
      Query q = query(
          "INSERT INTO event_destination (configuration_set, name, enabled, "
          "matching_event_types, kind, target, definition) VALUES (?, ?, ?, ?, ?, ?, ?) "
          "ON CONFLICT (configuration_set, name) DO NOTHING");
      if (!q.ok()) return error("creating an event destination");
      q.text(1, d.configuration_set)
          .text(2, d.name)
          .i64(3, d.enabled ? 1 : 0)
          .text(4, nlohmann::json(d.matching_event_types).dump())
          .text(5, kind_text(d.kind))
          .text(6, d.target)
          .text(7, d.definition_json);
      if (Status s = run(q, "creating an event destination"); !s) return s;
      if (changes() == 0) {
        return {StatusCode::kAlreadyExists, "Event destination '" + d.name +
                                                "' already exists in configuration set '" +
                                                d.configuration_set + "'"};
      }
    }
    return bump_event_destinations_version();
  });
}

Status SqliteStore::update_event_destination(const EventDestination& d) {
  if (Status s = check_event_destination(d); !s) return s;
  std::lock_guard<std::mutex> lock(mu_);
  return transaction([&]() -> Status {
    if (Status s = check_set_exists(d.configuration_set); !s) return s;
    {
      Query q = query(
          "UPDATE event_destination SET enabled = ?, matching_event_types = ?, kind = ?, "
          "target = ?, definition = ? WHERE configuration_set = ? AND name = ?");
      if (!q.ok()) return error("updating an event destination");
      q.i64(1, d.enabled ? 1 : 0)
          .text(2, nlohmann::json(d.matching_event_types).dump())
          .text(3, kind_text(d.kind))
          .text(4, d.target)
          .text(5, d.definition_json)
          .text(6, d.configuration_set)
          .text(7, d.name);
      if (Status s = run(q, "updating an event destination"); !s) return s;
      if (changes() == 0) return destination_not_found(d.configuration_set, d.name);
    }
    return bump_event_destinations_version();
  });
}

Status SqliteStore::delete_event_destination(const std::string& configuration_set,
                                             const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  return transaction([&]() -> Status {
    if (Status s = check_set_exists(configuration_set); !s) return s;
    {
      Query q = query("DELETE FROM event_destination WHERE configuration_set = ? AND name = ?");
      if (!q.ok()) return error("deleting an event destination");
      q.text(1, configuration_set).text(2, name);
      if (Status s = run(q, "deleting an event destination"); !s) return s;
      if (changes() == 0) return destination_not_found(configuration_set, name);
    }
    return bump_event_destinations_version();
  });
}

Result<std::vector<EventDestination>> SqliteStore::list_event_destinations(
    const std::string& configuration_set) {
  std::lock_guard<std::mutex> lock(mu_);
  if (Status s = check_set_exists(configuration_set); !s) return s;
  static const std::string sql = std::string("SELECT ") + kDestinationColumns +
                                 " FROM event_destination WHERE configuration_set = ? "
                                 "ORDER BY name";
  Query q = query(sql.c_str());
  if (!q.ok()) return error("listing event destinations");
  q.text(1, configuration_set);
  std::vector<EventDestination> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    auto d = destination_row(q);
    if (!d) return d.status();
    out.push_back(std::move(d).value());
  }
  if (rc != SQLITE_DONE) return error("listing event destinations");
  return out;
}

Result<std::vector<EventDestination>> SqliteStore::list_event_destinations_all() {
  std::lock_guard<std::mutex> lock(mu_);
  static const std::string sql = std::string("SELECT ") + kDestinationColumns +
                                 " FROM event_destination ORDER BY configuration_set, name";
  Query q = query(sql.c_str());
  if (!q.ok()) return error("listing event destinations");
  std::vector<EventDestination> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    auto d = destination_row(q);
    if (!d) return d.status();
    out.push_back(std::move(d).value());
  }
  if (rc != SQLITE_DONE) return error("listing event destinations");
  return out;
}

Result<uint64_t> SqliteStore::event_destinations_version() {
  std::lock_guard<std::mutex> lock(mu_);
  Query q = query("SELECT value FROM meta WHERE name = 'event_destinations_version'");
  if (!q.ok()) return error("reading the event destinations version");
  int rc = q.step();
  if (rc == SQLITE_DONE) return uint64_t{0};
  if (rc != SQLITE_ROW) return error("reading the event destinations version");
  return static_cast<uint64_t>(q.i64(0));
}

// --- Reputation counters -------------------------------------------------------------------

Status SqliteStore::record_reputation(const std::string& scope, int64_t now, uint64_t sent,
                                      uint64_t bounced, uint64_t complained) {
  if (now < 0) {
    return Status::invalid("record_reputation: time " + std::to_string(now) + " is before 1970");
  }
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (sent > kMax || bounced > kMax || complained > kMax) {
    return Status::invalid("record_reputation: a count is too large");
  }
  if (sent == 0 && bounced == 0 && complained == 0) return Status::ok();
  int64_t minute = now / kMinuteMs;
  std::lock_guard<std::mutex> lock(mu_);
  Query q = query(
      "INSERT INTO reputation_minute (scope, minute, sent, bounced, complained) "
      "VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, minute) DO UPDATE SET "
      "sent = sent + excluded.sent, bounced = bounced + excluded.bounced, "
      "complained = complained + excluded.complained");
  if (!q.ok()) return error("counting reputation");
  q.text(1, scope)
      .i64(2, minute)
      .i64(3, static_cast<int64_t>(sent))
      .i64(4, static_cast<int64_t>(bounced))
      .i64(5, static_cast<int64_t>(complained));
  if (Status s = run(q, "counting reputation"); !s) return s;

  if (minute != reputation_pruned_minute_) {
    Query prune = query("DELETE FROM reputation_minute WHERE minute <= ?");
    if (!prune.ok()) return error("pruning the reputation counts");
    prune.i64(1, minute - kReputationKeptMinutes);
    if (Status s = run(prune, "pruning the reputation counts"); !s) return s;
    reputation_pruned_minute_ = minute;
  }
  return Status::ok();
}

Status SqliteStore::clear_reputation(const std::string& scope) {
  std::lock_guard<std::mutex> lock(mu_);
  Query q = query("DELETE FROM reputation_minute WHERE scope = ?");
  if (!q.ok()) return error("clearing reputation counters");
  q.text(1, scope);
  return run(q, "clearing reputation counters");
}

Result<ReputationCounts> SqliteStore::reputation_since(const std::string& scope, int64_t since,
                                                       int64_t now) {
  if (since < 0 || now < 0) {
    return Status::invalid("reputation_since: time " + std::to_string(since < 0 ? since : now) +
                           " is before 1970");
  }
  // The first whole minute at or after since; the minute of now.
  int64_t first = since / kMinuteMs + (since % kMinuteMs != 0 ? 1 : 0);
  int64_t last = now / kMinuteMs;
  ReputationCounts out;
  if (first > last) return out;
  std::lock_guard<std::mutex> lock(mu_);
  Query q = query(
      "SELECT COALESCE(SUM(sent), 0), COALESCE(SUM(bounced), 0), COALESCE(SUM(complained), 0) "
      "FROM reputation_minute WHERE scope = ? AND minute >= ? AND minute <= ?");
  if (!q.ok()) return error("reading the reputation counts");
  q.text(1, scope).i64(2, first).i64(3, last);
  if (q.step() != SQLITE_ROW) return error("reading the reputation counts");
  out.sent = static_cast<uint64_t>(q.i64(0));
  out.bounced = static_cast<uint64_t>(q.i64(1));
  out.complained = static_cast<uint64_t>(q.i64(2));
  return out;
}

// --- Soft bounces in a row -----------------------------------------------------------------

Result<int> SqliteStore::count_soft_bounce(const std::string& email, int64_t now) {
  if (email.empty()) return Status::invalid("count_soft_bounce: the address is empty");
  if (now < 0) {
    return Status::invalid("count_soft_bounce: time " + std::to_string(now) + " is before 1970");
  }
  std::lock_guard<std::mutex> lock(mu_);
  int count = 0;
  {
    // A run last extended more than 30 days ago starts again; the count saturates rather than
    // wraps (it is compared with a small threshold).
    Query q = query(
        "INSERT INTO soft_bounce (email, count, last_ms) VALUES (?1, 1, ?2) "
        "ON CONFLICT (email) DO UPDATE SET "
        "count = CASE WHEN last_ms < ?2 - ?3 THEN 1 ELSE MIN(count + 1, 1000000) END, "
        "last_ms = MAX(last_ms, ?2) RETURNING count");
    if (!q.ok()) return error("counting a soft bounce");
    q.text(1, email).i64(2, now).i64(3, kSoftBounceKeptMs);
    if (q.step() != SQLITE_ROW) return error("counting a soft bounce");
    count = static_cast<int>(q.i64(0));
    if (q.step() != SQLITE_DONE) return error("counting a soft bounce");
  }

  int64_t day = now / kDayMs;
  if (day != soft_bounce_pruned_day_) {
    Query prune = query("DELETE FROM soft_bounce WHERE last_ms < ?");
    if (!prune.ok()) return error("pruning the soft bounce runs");
    prune.i64(1, now - kSoftBounceKeptMs);
    if (Status s = run(prune, "pruning the soft bounce runs"); !s) return s;
    soft_bounce_pruned_day_ = day;
  }
  return count;
}

Status SqliteStore::reset_soft_bounces(const std::string& email) {
  if (email.empty()) return Status::invalid("reset_soft_bounces: the address is empty");
  std::lock_guard<std::mutex> lock(mu_);
  Query q = query("DELETE FROM soft_bounce WHERE email = ?");
  if (!q.ok()) return error("ending a soft bounce run");
  q.text(1, email);
  return run(q, "ending a soft bounce run");
}

// --- Opening -------------------------------------------------------------------------------

std::string errno_text() { return std::strerror(errno); }

}  // namespace

Result<std::unique_ptr<Store>> Store::open(const std::string& data_dir) {
  namespace fs = std::filesystem;
  std::string dir = data_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (dir.empty()) return Status::invalid("the data directory is not named");

  // The data directory: owner-only when we make it.
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return Status::io_error("cannot use data directory '" + dir + "': " + errno_text());
    }
    std::error_code ec;
    fs::path parent = fs::path(dir).parent_path();
    if (!parent.empty()) fs::create_directories(parent, ec);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::io_error("cannot create data directory '" + dir + "': " + errno_text());
    }
    if (::stat(dir.c_str(), &st) != 0) {
      return Status::io_error("cannot use data directory '" + dir + "': " + errno_text());
    }
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::invalid("data directory '" + dir + "' is not a directory");
  }

  // A missing master key beside an existing database is a lost key, not a first start: making
  // a new one would leave every sealed secret unreadable, so refuse instead.
  std::string key_path = dir + "/master.key";
  std::string db_path = dir + "/metadata.db";
  struct stat db_st {};
  bool db_exists = ::stat(db_path.c_str(), &db_st) == 0 && db_st.st_size > 0;
  if (db_exists && ::access(key_path.c_str(), F_OK) != 0 && errno == ENOENT) {
    return Status::invalid("master key '" + key_path + "' is missing but '" + db_path +
                           "' exists; restore master.key (the secrets sealed in metadata.db "
                           "cannot be opened without it)");
  }
  auto sealer = Sealer::open_master_key(key_path);
  if (!sealer) return sealer.status();

  // Created owner-only before SQLite opens it; SQLite gives its -wal and -shm files the mode
  // of the database file.
  int fd = ::open(db_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
  } else if (errno != EEXIST) {
    return Status::io_error("cannot create '" + db_path + "': " + errno_text());
  }

  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(db_path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    return Status::io_error("cannot open '" + db_path + "': " + msg);
  }
  sqlite3_busy_timeout(db, 5000);
  auto store = std::make_unique<SqliteStore>(db, std::move(sealer).value());

  // WAL lets readers (another process's `magnetic keys list`) run beside the server's writes;
  // synchronous=FULL makes a committed key or suppression survive a power loss.
  char* mode = nullptr;
  auto capture = [](void* out, int, char** values, char**) {
    if (values[0]) *static_cast<char**>(out) = sqlite3_mprintf("%s", values[0]);
    return 0;
  };
  rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL", capture, &mode, nullptr);
  bool wal = rc == SQLITE_OK && mode && std::strcmp(mode, "wal") == 0;
  sqlite3_free(mode);
  if (!wal) {
    return Status::io_error("cannot open '" + db_path +
                            "': WAL mode is refused: " + sqlite3_errmsg(db));
  }
  for (const char* pragma : {"PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    if (sqlite3_exec(db, pragma, nullptr, nullptr, nullptr) != SQLITE_OK) {
      return Status::io_error("cannot open '" + db_path + "': " + sqlite3_errmsg(db));
    }
  }
  if (Status s = store->init(); !s) {
    if (s.code() == StatusCode::kInvalidArgument) return s;
    return Status::io_error("'" + db_path + "' is not usable: " + s.message());
  }
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace magnetic::store
