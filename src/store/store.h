// The metadata store: access keys, email templates, identities with their DKIM keys,
// configuration sets with their event destinations, the account's settings and suppression list,
// the count of messages sent in the last 24 hours (the SES sending quota), and the counters the
// reputation guard and the soft-bounce rule read (sent, bounced, complained per minute; runs of
// soft bounces per address).
//
// Embedded implementation: one SQLite file (WAL) in the data directory. Secrets (the secret
// access key of each access key, the private key of each identity) are never stored in the
// clear: they are sealed with AES-256-GCM under a 32-byte key kept in `<data>/master.key`,
// which open() creates with mode 0600 when it is missing. No module but store/ writes SQL for
// metadata (the spool keeps its own file).
//
// Names and keys are compared as SES compares them: template and configuration set names
// exactly, identities and suppressed addresses without ASCII case.
//
// Errors: kNotFound and kAlreadyExists name the thing ("Template 'x' does not exist");
// kInvalidArgument for bad input (an empty name, a page size out of range, a token that is not
// this listing's); kInternal when a sealed secret does not open (a damaged row, or a master key
// that is not the one it was sealed with); kIoError for SQLite failures.
//
// Thread-safety: a Store serializes its own use; any thread may call it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace magnetic::store {

struct AccessKey {
  std::string access_key_id;  // "AKIA" + 16 upper-case letters and digits, as AWS's look
  std::string secret;         // 40 characters; in the clear only in memory
  std::string name;
  std::string created_at;  // RFC 3339 UTC
  bool active = true;
};

struct EmailTemplate {
  std::string name;
  std::string subject, text, html;  // SES EmailTemplateContent
  std::string created_at;           // RFC 3339 UTC
  std::string updated_at;
};

struct Identity {
  std::string name;                  // "example.com" or "someone@example.com", as created
  bool is_domain = true;             // SES IdentityType DOMAIN or EMAIL_ADDRESS
  std::string dkim_origin;           // "AWS_SES" (key made by us) or "EXTERNAL" (BYODKIM)
  std::string dkim_selector;         // selector for the key below
  std::string dkim_private_key_pem;  // in the clear only in memory
  std::string dkim_key_length;       // "RSA_1024_BIT", "RSA_2048_BIT" or "ED25519"
  bool dkim_signing_enabled = true;
  std::string configuration_set;  // default configuration set of the identity, may be empty
  std::string created_at;
};

struct ConfigurationSet {
  std::string name;
  // The SES-shaped option groups as JSON text, each "" when unset:
  // DeliveryOptions, ReputationOptions, SendingOptions, SuppressionOptions, TrackingOptions,
  // and Tags (a JSON array of {Key, Value}).
  std::string delivery_options, reputation_options, sending_options, suppression_options,
      tracking_options, tags;
  std::string created_at;
};

// An event destination of a configuration set: where the events of messages sent with the set
// go. SES's destination shapes are mapped onto two kinds by the API (see
// api/event_destination_handlers.cc); the store keeps the kind and target the service needs and
// the definition as the client gave it, to answer GetConfigurationSetEventDestinations.
struct EventDestination {
  std::string configuration_set, name;  // name: unique within its set, compared exactly
  bool enabled = false;
  // SES EventType names: SEND, REJECT, BOUNCE, COMPLAINT, DELIVERY, OPEN, CLICK,
  // RENDERING_FAILURE, DELIVERY_DELAY, SUBSCRIPTION; and ours, SENDING_PAUSED. At least one.
  std::vector<std::string> matching_event_types;
  enum class Kind { kWebhook, kFile };
  Kind kind = Kind::kWebhook;
  // kWebhook: the http:// or https:// URL events are posted to. kFile: a file name (no
  // directory); the service writes JSON lines to <data>/events/<target>.jsonl.
  std::string target;
  std::string definition_json;  // the SES EventDestinationDefinition object, JSON text
};

// Sums of the reputation counters over a span of minutes (see reputation_since).
struct ReputationCounts {
  uint64_t sent = 0;
  uint64_t bounced = 0;     // hard bounces
  uint64_t complained = 0;  // complaints
};

struct SuppressedDestination {
  std::string email;           // as given; matched without ASCII case
  std::string reason;          // "BOUNCE" or "COMPLAINT"
  int64_t last_update_ms = 0;  // Unix milliseconds
  std::string message_id;      // the message that caused it, may be empty
  std::string feedback_id;     // the bounce or complaint report, may be empty
};

struct Account {
  double max_24_hour_send = 50000;  // SES SendQuota.Max24HourSend
  double max_send_rate = 1000;      // SES SendQuota.MaxSendRate, messages per second
  bool sending_enabled = true;
  // Reasons that put an address on the account suppression list automatically.
  std::vector<std::string> suppressed_reasons = {"BOUNCE", "COMPLAINT"};
  // true: templates render {{x}} without HTML escaping, as SES does (for templates migrated
  // from SES). false (default): Handlebars' escaping.
  bool ses_compatible_escaping = false;
  // SES GetAccount EnforcementStatus: "HEALTHY", "PROBATION" or "SHUTDOWN" (the reputation
  // guard's verdict; SHUTDOWN pauses sending).
  std::string enforcement_status = "HEALTHY";
  // Why sending was paused, free text for the operator; empty when not paused by the guard.
  std::string sending_paused_reason;
  // Unix milliseconds when sending was last resumed; the reputation guard counts only after it.
  int64_t reputation_reset_ms = 0;
};

// A page of a listing: SES NextToken/PageSize. The token is opaque to clients; an empty token
// starts from the beginning, an empty next_token means the end. size must be 1 to 1000
// (kInvalidArgument otherwise, as SES refuses a larger PageSize); a token is only good for the
// listing that made it. Listings are ordered by name (suppression: see list_suppressed).
struct Page {
  std::string token;
  size_t size = 100;
};

template <typename T>
struct Listing {
  std::vector<T> items;
  std::string next_token;
};

class Store {
 public:
  // Opens or creates `<data_dir>/metadata.db` and `<data_dir>/master.key` (creating data_dir
  // with mode 0700 when missing). A master key file readable by group or others is refused.
  // So are a key file that is not 32 bytes, a master key other than the one the database was
  // sealed with, and a missing master key beside an existing database (a lost key: making a
  // new one would leave every sealed secret unreadable). Refusals are kInvalidArgument.
  static Result<std::unique_ptr<Store>> open(const std::string& data_dir);
  virtual ~Store() = default;

  // Access keys. create_key makes a new id and secret and returns them (the only time the
  // secret leaves the store except find_key, which the API uses to check signatures).
  virtual Result<AccessKey> create_key(const std::string& name) = 0;
  virtual Result<std::vector<AccessKey>> list_keys() = 0;  // secrets left empty
  // kNotFound if unknown; revoking a revoked key again is ok.
  virtual Status revoke_key(const std::string& access_key_id) = 0;
  // The active key with this id, secret included; kNotFound if unknown or revoked.
  virtual Result<AccessKey> find_key(const std::string& access_key_id) = 0;

  // Templates. kAlreadyExists / kNotFound as SES: AlreadyExistsException, NotFoundException.
  // An empty created_at (updated_at) is set to now; update keeps created_at.
  virtual Status create_template(const EmailTemplate& t) = 0;
  virtual Result<EmailTemplate> get_template(const std::string& name) = 0;
  virtual Status update_template(const EmailTemplate& t) = 0;
  virtual Status delete_template(const std::string& name) = 0;
  virtual Result<Listing<EmailTemplate>> list_templates(const Page& page) = 0;

  // Identities. update keeps the name as created and created_at. list_identities leaves
  // dkim_private_key_pem empty (no SES listing returns it); get_identity fills it.
  virtual Status create_identity(const Identity& identity) = 0;
  virtual Result<Identity> get_identity(const std::string& name) = 0;
  virtual Status update_identity(const Identity& identity) = 0;
  virtual Status delete_identity(const std::string& name) = 0;
  virtual Result<Listing<Identity>> list_identities(const Page& page) = 0;

  // Configuration sets.
  virtual Status create_configuration_set(const ConfigurationSet& set) = 0;
  virtual Result<ConfigurationSet> get_configuration_set(const std::string& name) = 0;
  virtual Status update_configuration_set(const ConfigurationSet& set) = 0;
  virtual Status delete_configuration_set(const std::string& name) = 0;
  virtual Result<Listing<ConfigurationSet>> list_configuration_sets(const Page& page) = 0;
  // Deleting a configuration set also deletes its event destinations and its reputation
  // counters (scope = its name).

  // Event destinations of configuration sets. An unknown configuration set is kNotFound naming
  // it ("Configuration set 'x' does not exist"); an unknown destination is kNotFound naming both
  // ("Event destination 'd' does not exist in configuration set 'x'"); a second destination of
  // the same name in a set is kAlreadyExists. kInvalidArgument for an empty name or target, no
  // matching event types, or one that is not an SES EventType. update replaces everything but
  // the two names.
  //
  // The default implementations (here and for the counters below) answer kInternal ("not
  // implemented by this store"), inline so that a Store written before these calls, a test's
  // fake among them, still builds and links; SqliteStore implements them all.
  virtual Status create_event_destination(const EventDestination&) {
    return not_implemented("create_event_destination");
  }
  virtual Status update_event_destination(const EventDestination&) {
    return not_implemented("update_event_destination");
  }
  virtual Status delete_event_destination(const std::string& /*configuration_set*/,
                                          const std::string& /*name*/) {
    return not_implemented("delete_event_destination");
  }
  // One set's destinations, ordered by name.
  virtual Result<std::vector<EventDestination>> list_event_destinations(
      const std::string& /*configuration_set*/) {
    return not_implemented("list_event_destinations");
  }
  // Every set's destinations, ordered by configuration set name, then by name.
  virtual Result<std::vector<EventDestination>> list_event_destinations_all() {
    return not_implemented("list_event_destinations_all");
  }
  // A number that changes whenever any event destination is created, updated or deleted
  // (configuration set deletions included), also by another process on the same database: a
  // cache of the lists above is good while this answers the same. One indexed read.
  virtual Result<uint64_t> event_destinations_version() {
    return not_implemented("event_destinations_version");
  }

  // Account settings (defaults above until first written).
  virtual Result<Account> account() = 0;
  virtual Status put_account(const Account& account) = 0;

  // Account suppression list. put replaces an existing entry for the same address (keeping the
  // new spelling); reason must be BOUNCE or COMPLAINT; last_update_ms 0 means now.
  virtual Status put_suppressed(const SuppressedDestination& d) = 0;
  virtual Result<SuppressedDestination> get_suppressed(const std::string& email) = 0;
  virtual Status delete_suppressed(const std::string& email) = 0;
  // Filtered by reasons (empty: all) and by last_update_ms in [start_ms, end_ms] (0: open).
  // Newest first: by last_update_ms descending, then by address descending without ASCII case.
  virtual Result<Listing<SuppressedDestination>> list_suppressed(
      const std::vector<std::string>& reasons, int64_t start_ms, int64_t end_ms,
      const Page& page) = 0;
  // Which of these addresses are suppressed (one query for a whole bulk send).
  virtual Result<std::vector<bool>> are_suppressed(const std::vector<std::string>& emails) = 0;

  // Sending quota: counts of messages (recipients, as SES counts) sent per minute. The last 24
  // hours are the minute of now_ms and the 1439 before it; older minutes are deleted.
  virtual Status record_sent(int64_t now_ms, uint64_t count) = 0;
  virtual Result<uint64_t> sent_last_24_hours(int64_t now_ms) = 0;

  // Reputation counters in per-minute buckets, per scope: "" is the account, any other scope a
  // configuration set name. record_reputation adds to the bucket of now_ms's minute (all zero:
  // nothing is written); buckets older than 30 days are deleted. reputation_since sums the
  // buckets of one scope from the first minute that starts at or after since_ms to the minute
  // of now_ms: counts of the minute in which since_ms falls are left out, so that a reset never
  // counts what came before it. since_ms after now_ms sums nothing. Times before 1970 and counts
  // above INT64_MAX are kInvalidArgument.
  virtual Status record_reputation(const std::string& /*scope*/, int64_t /*now_ms*/,
                                   uint64_t /*sent*/, uint64_t /*bounced*/,
                                   uint64_t /*complained*/) {
    return not_implemented("record_reputation");
  }
  virtual Result<ReputationCounts> reputation_since(const std::string& /*scope*/,
                                                    int64_t /*since_ms*/, int64_t /*now_ms*/) {
    return not_implemented("reputation_since");
  }
  // Forgets a scope's counters: sending resumed after a pause starts a fresh window (the
  // minute buckets cannot be split at the moment of the resume).
  virtual Status clear_reputation(const std::string& /*scope*/) {
    return not_implemented("clear_reputation");
  }

  // Soft bounces in a row per address (matched without ASCII case). count_soft_bounce adds one
  // and returns the run's length; a run whose last soft bounce is more than 30 days before
  // now_ms starts again at 1 (and such runs are deleted). reset_soft_bounces ends the run (a
  // delivery or a hard bounce); an address without a run is ok. An empty address is
  // kInvalidArgument.
  virtual Result<int> count_soft_bounce(const std::string& /*email*/, int64_t /*now_ms*/) {
    return not_implemented("count_soft_bounce");
  }
  virtual Status reset_soft_bounces(const std::string& /*email*/) {
    return not_implemented("reset_soft_bounces");
  }

 private:
  static Status not_implemented(std::string_view call) {
    return Status::internal("store: " + std::string(call) + " is not implemented by this store");
  }
};

// The SES EventType names, in the model's order, then SENDING_PAUSED, which SES does not have
// (the reputation guard's pause; see events/record.h). Inline: api/ checks them without linking
// the store.
inline const std::vector<std::string>& event_type_names() {
  static const std::vector<std::string> kNames = {
      "SEND",           "REJECT",       "BOUNCE",        "COMPLAINT",
      "DELIVERY",       "OPEN",         "CLICK",         "RENDERING_FAILURE",
      "DELIVERY_DELAY", "SUBSCRIPTION", "SENDING_PAUSED"};
  return kNames;
}
inline bool is_event_type(std::string_view name) {
  for (const std::string& n : event_type_names()) {
    if (n == name) return true;
  }
  return false;
}

// The SES SMTP password for a secret access key: version byte 0x04 followed by
// HMAC-SHA256 chained over date "11111111", region, "ses", "aws4_request" and "SendRawEmail",
// base64-encoded, as AWS documents it for SMTP credentials. Region matters: SES derives a
// different password per region.
std::string smtp_password(const std::string& secret, const std::string& region);

}  // namespace magnetic::store
