// The metadata store: access keys, email templates, identities with their DKIM keys,
// configuration sets, the account's settings and suppression list, and the count of messages
// sent in the last 24 hours (the SES sending quota).
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
};

// The SES SMTP password for a secret access key: version byte 0x04 followed by
// HMAC-SHA256 chained over date "11111111", region, "ses", "aws4_request" and "SendRawEmail",
// base64-encoded, as AWS documents it for SMTP credentials. Region matters: SES derives a
// different password per region.
std::string smtp_password(const std::string& secret, const std::string& region);

}  // namespace magnetic::store
