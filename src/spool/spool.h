// The spool: durable per-recipient state of campaigns, in SQLite (WAL mode).
//
// Strategy. Accepted recipients are written in groups: one transaction (one fsync) per batch
// of rows, never one per message. Delivery outcomes are buffered by the caller and committed
// together (commit_outcomes) every few milliseconds. Before a recipient is handed to egress
// it is marked in flight, in the same group-commit way (claim_due). After a crash, recipients
// still marked in flight are the only ones whose outcome is unknown: recover() counts them as
// possible duplicates and makes them due again, so nothing accepted is lost and nothing
// recorded as delivered is sent again.
//
// The spool holds the template and per-recipient data, not rendered bodies: messages are
// rendered at delivery time.
//
// Thread-safety: a Spool serializes its own use with a mutex; any thread may call it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"

struct sqlite3;

namespace magnetic::spool {

enum class RecipientState : int {
  kPending = 0,     // accepted, not yet attempted
  kInFlight = 1,    // handed to egress; outcome not yet recorded
  kDelivered = 2,   // final: the receiving MTA took it (250 after the final dot)
  kDeferred = 3,    // a transient failure; due again at next_attempt_ms
  kBounced = 4,     // final: permanent failure
  kExpired = 5,     // final: deferred past the campaign's max age
  kFailed = 6,      // final: could not be rendered or signed (a rendering failure)
  kSuppressed = 7,  // final: on a suppression list, never attempted
};
const char* state_name(RecipientState s);
bool is_final(RecipientState s);

struct CampaignRecord {
  std::string id;
  std::string created_at;     // RFC 3339 UTC
  std::string settings_json;  // the campaign's template and options, as the caller wrote them
  uint64_t rows_read = 0;     // data rows of the list consumed so far (valid and invalid)
  bool ingest_done = false;   // the whole list has been read
};

struct NewRecipient {
  uint64_t row = 0;
  std::string email;
  std::string domain;
  std::string data_json;
  std::string token;       // per-recipient token for VERP and unsubscribe links
  std::string message_id;  // fixed at acceptance, so a resend keeps the same Message-ID
};

struct InvalidRow {
  uint64_t row = 0;
  std::string error;
};

// One recipient claimed for delivery.
struct Claimed {
  int64_t id = 0;
  uint64_t row = 0;
  std::string email;
  std::string domain;
  std::string data_json;
  std::string token;
  std::string message_id;
  int attempts = 0;              // attempts already made before this one
  int64_t first_attempt_ms = 0;  // 0 if never attempted
  int64_t message = 0;           // message spool (message_spool.h): the stored message's row
  int64_t accepted_ms = 0;       // message spool: when the message was accepted (0 otherwise)
};

struct Outcome {
  int64_t id = 0;
  RecipientState state = RecipientState::kDelivered;
  int attempts = 0;             // attempts made, including this one
  int64_t next_attempt_ms = 0;  // for kDeferred
  int64_t first_attempt_ms = 0;
  std::string reply;   // the SMTP reply or error that decided it
  std::string reason;  // bounce class for kBounced/kDeferred, e.g. "userunknown"
};

struct DomainCounts {
  uint64_t recipients = 0, delivered = 0, deferred = 0, bounced = 0, expired = 0, failed = 0,
           suppressed = 0, pending = 0;
};

struct CampaignCounts {
  DomainCounts total;
  std::map<std::string, DomainCounts> by_domain;
  std::map<std::string, uint64_t> bounced_by_reason;
  std::map<std::string, uint64_t> deferred_by_reason;
  std::map<std::string, uint64_t> expired_by_reason;  // the reason of the last deferral
  uint64_t invalid = 0;
};

struct RecoveryReport {
  uint64_t in_flight_reset = 0;  // recipients whose outcome was unknown: possible duplicates
};

class Spool {
 public:
  // Opens or creates the spool file. synchronous=FULL: a committed group survives power loss.
  static Result<std::unique_ptr<Spool>> open(const std::string& path);
  ~Spool();

  Status create_campaign(const CampaignRecord& campaign);
  Result<CampaignRecord> campaign(const std::string& id);
  // The most recently created campaign (for --resume without an id).
  Result<CampaignRecord> latest_campaign();

  // One transaction: the valid recipients, the invalid rows, and the new rows_read/ingest_done.
  // A recipient whose email is already in the campaign (compared without ASCII case) is not
  // added again; it is recorded as an invalid row naming the row that listed it first. Returns how
  // many recipients were added.
  Result<uint64_t> accept_batch(const std::string& campaign_id,
                                const std::vector<NewRecipient>& recipients,
                                std::vector<InvalidRow> invalid, uint64_t rows_read,
                                bool ingest_done);

  // Marks up to `limit` due recipients in flight and returns them: first deferred ones whose
  // time has come (oldest first), then pending ones in row order.
  Result<std::vector<Claimed>> claim_due(const std::string& campaign_id, int64_t now_ms,
                                         size_t limit);

  // Records a group of outcomes in one transaction.
  Status commit_outcomes(const std::vector<Outcome>& outcomes);

  // Sets in-flight recipients back to due (crash recovery, or on a clean stop for those never
  // sent). Returns how many there were.
  Result<RecoveryReport> recover(const std::string& campaign_id);

  // The earliest next_attempt_ms among deferred recipients, or -1 if none.
  Result<int64_t> next_deferred_time(const std::string& campaign_id);
  // Recipients not yet final (pending, in flight or deferred).
  Result<uint64_t> unfinished(const std::string& campaign_id);

  Result<CampaignCounts> counts(const std::string& campaign_id);
  Result<std::vector<InvalidRow>> invalid_rows(const std::string& campaign_id, size_t limit);

  // Extra counters kept with the campaign (e.g. possible duplicates over all resumes).
  Status add_counter(const std::string& campaign_id, const std::string& name, int64_t delta);
  Result<int64_t> counter(const std::string& campaign_id, const std::string& name);

 private:
  explicit Spool(sqlite3* db);
  Status exec(const char* sql);

  std::mutex mu_;
  sqlite3* db_;
};

}  // namespace magnetic::spool
