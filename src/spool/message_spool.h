// The message spool of `magnetic serve`: complete messages submitted through the API or SMTP,
// stored whole with one row per envelope recipient, in SQLite (WAL, synchronous=FULL).
//
// Unlike a campaign (spool.h), whose recipients share one template and are rendered at delivery,
// every message here was rendered when it was accepted; the spool keeps its bytes until every
// one of its recipients is final. The recipient states and the recovery rule are the
// campaign's: a recipient is marked in flight before it is handed to egress, and after a crash
// the in-flight ones are made due again (possible duplicates), so nothing accepted is lost.
//
// Thread-safety: serialized by a mutex; any thread may call it. Accepts from many API and SMTP
// handlers are committed together by the caller (service/), one transaction per group.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "spool/spool.h"

struct sqlite3;

namespace magnetic::spool {

struct NewMessage {
  std::string message_id;   // SES MessageId, unique
  int64_t accepted_ms = 0;  // when it was accepted; 0: the time accept() is given
  std::string identity;     // the identity whose key signs it
  std::string configuration_set;
  std::string envelope_from;
  std::string data;  // the whole message, unsigned
  // The SES event record's `mail` object for this message (JSON text), kept after the body is
  // dropped so that late bounces and complaints can still be published.
  std::string mail_json;
  struct Recipient {
    std::string email;
    std::string domain;
    bool suppressed = false;  // accepted, recorded as suppressed, never attempted
  };
  std::vector<Recipient> recipients;
};

struct StoredMessage {
  int64_t row = 0;
  std::string message_id, identity, configuration_set, envelope_from, data, mail_json;
  int64_t accepted_ms = 0;
};

// One recipient with what its message says about it: what feedback needs to act on a bounce or
// a complaint that names the recipient's row (the VERP token) or its message.
struct RecipientRecord {
  int64_t row = 0;      // the recipient's row
  int64_t message = 0;  // the message's row
  std::string message_id, email, configuration_set, envelope_from;
  RecipientState state = RecipientState::kPending;
  int64_t accepted_ms = 0;
  std::string mail_json;
};

// A recipient of a stored message claimed for delivery. `id` is the recipient's row,
// `message` the message's row (for message()), `message_id` its SES MessageId.
using ClaimedRecipient = Claimed;

struct MessageSpoolCounts {
  uint64_t messages = 0;  // messages with recipients not yet final
  uint64_t pending = 0, in_flight = 0, deferred = 0, delivered = 0, bounced = 0, expired = 0,
           suppressed = 0, failed = 0;
};

class MessageSpool {
 public:
  static Result<std::unique_ptr<MessageSpool>> open(const std::string& path);
  ~MessageSpool();

  // One transaction for the whole group. A message_id already present is refused (the group
  // fails as a whole: ids come from new_id() and never repeat).
  Status accept(const std::vector<NewMessage>& messages, int64_t now_ms);

  // Marks up to `limit` due recipients in flight (deferred ones whose time has come, oldest
  // first, then pending ones in order of acceptance) and returns them.
  Result<std::vector<ClaimedRecipient>> claim_due(int64_t now_ms, size_t limit);

  Result<StoredMessage> message(int64_t row);

  // Records outcomes in one transaction; the body of a message whose recipients are all final
  // is dropped in the same transaction (its row and recipients' states are kept).
  Status commit_outcomes(const std::vector<Outcome>& outcomes, int64_t now_ms);

  // In-flight recipients back to due (at start, after a crash or a stop). Returns how many.
  Result<RecoveryReport> recover();

  Result<int64_t> next_deferred_time();  // -1 if none
  Result<MessageSpoolCounts> counts();

  // The state of each recipient of a message, for tests and tools: (email, state, reason).
  struct RecipientStatus {
    std::string email;
    RecipientState state;
    std::string reason, reply;
    int attempts = 0;
  };
  Result<std::vector<RecipientStatus>> recipients_of(const std::string& message_id);

  // A recipient by row (kNotFound if none), and every recipient of a message by its MessageId
  // (empty if none).
  Result<RecipientRecord> recipient(int64_t row);

  // Feedback marks, so that a bounce or complaint about one recipient of one message is acted on
  // once however often the report is sent again. Sets `mark` (a bit: kFeedbackBounce,
  // kFeedbackComplaint) on the recipient; true when it was not set before.
  static constexpr int kFeedbackBounce = 1, kFeedbackComplaint = 2;
  Result<bool> mark_feedback(int64_t row, int mark);
  Result<std::vector<RecipientRecord>> recipients_of_message(const std::string& message_id);

 private:
  explicit MessageSpool(sqlite3* db) : db_(db) {}
  std::mutex mu_;
  sqlite3* db_;
};

}  // namespace magnetic::spool
