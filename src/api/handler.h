// Internal to api/: what every SES operation handler gets and returns.
//
// A handler reads its inputs through Call (path labels, query parameters, the JSON body), each
// read checking the value and naming the field at fault; it returns the JSON body of a 200
// response or the ApiError to send. It calls body.finish() (and finish_query()) once it has read
// everything it knows, so that nothing it does not understand passes unnoticed.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "api/api_server.h"
#include "api/errors.h"
#include "api/http_server.h"
#include "api/json_reader.h"

namespace magnetic::api {

struct Services {
  store::Store& store;
  service::Submitter& submitter;
  const ApiOptions& options;
};

using Reply = std::variant<nlohmann::json, ApiError>;

class Call {
 public:
  Call(const HttpRequest& http, std::vector<std::string> labels,
       std::vector<std::pair<std::string, std::string>> query, const nlohmann::json* body,
       std::string request_id, std::chrono::system_clock::time_point now);

  const HttpRequest& http;
  const std::vector<std::string> labels;  // the {Label} values of the path, decoded, in order
  JsonObject body;
  const std::string request_id;
  const std::chrono::system_clock::time_point now;
  int64_t now_ms() const;

  // The first problem any read found.
  const std::optional<ApiError>& error() const { return body.state()->error; }
  void fail(std::string message) { body.state()->fail(std::move(message)); }

  // Query parameters (names exact, values decoded). Each read marks the name as known.
  std::optional<std::string> query(std::string_view name);
  std::vector<std::string> query_all(std::string_view name);
  std::optional<int64_t> query_integer(std::string_view name, int64_t min, int64_t max);
  // An ISO 8601 date-time ("2026-01-31T12:00:00Z", fractions and offsets allowed) or epoch
  // seconds, in milliseconds.
  std::optional<int64_t> query_time_ms(std::string_view name);
  // Refuses parameters not read (unsupported ones get their own message).
  void finish_query(std::initializer_list<std::string_view> unsupported = {});

 private:
  std::vector<std::pair<std::string, std::string>> query_;
  std::vector<std::string> query_read_;
};

// An RFC 3339 / ISO 8601 date-time in milliseconds since the epoch; nullopt when malformed.
std::optional<int64_t> parse_iso8601_ms(std::string_view text);
// Epoch seconds for a response timestamp (REST-JSON sends timestamps as epoch seconds).
double epoch_seconds(int64_t ms);
// The store's RFC 3339 text as epoch seconds (0 when empty or malformed).
double epoch_seconds(const std::string& rfc3339);
// An RFC 3339 UTC text for the store ("2026-03-14T15:09:26Z").
std::string rfc3339(std::chrono::system_clock::time_point t);

// The operations, one per file group (send_handlers.cc, template_handlers.cc, ...).
Reply send_email(Services& s, Call& c);
Reply send_bulk_email(Services& s, Call& c);

Reply create_email_template(Services& s, Call& c);
Reply get_email_template(Services& s, Call& c);
Reply update_email_template(Services& s, Call& c);
Reply delete_email_template(Services& s, Call& c);
Reply list_email_templates(Services& s, Call& c);
Reply test_render_email_template(Services& s, Call& c);

Reply get_account(Services& s, Call& c);
Reply put_account_sending_attributes(Services& s, Call& c);
Reply put_account_suppression_attributes(Services& s, Call& c);

Reply create_email_identity(Services& s, Call& c);
Reply get_email_identity(Services& s, Call& c);
Reply list_email_identities(Services& s, Call& c);
Reply list_email_identities_post(Services& s, Call& c);
Reply delete_email_identity(Services& s, Call& c);

Reply create_configuration_set(Services& s, Call& c);
Reply get_configuration_set(Services& s, Call& c);
Reply list_configuration_sets(Services& s, Call& c);
Reply list_configuration_sets_post(Services& s, Call& c);
Reply delete_configuration_set(Services& s, Call& c);
Reply put_configuration_set_delivery_options(Services& s, Call& c);
Reply put_configuration_set_reputation_options(Services& s, Call& c);
Reply put_configuration_set_sending_options(Services& s, Call& c);
Reply put_configuration_set_suppression_options(Services& s, Call& c);
Reply put_configuration_set_tracking_options(Services& s, Call& c);

Reply create_configuration_set_event_destination(Services& s, Call& c);
Reply get_configuration_set_event_destinations(Services& s, Call& c);
Reply update_configuration_set_event_destination(Services& s, Call& c);
Reply delete_configuration_set_event_destination(Services& s, Call& c);

Reply put_suppressed_destination(Services& s, Call& c);
Reply get_suppressed_destination(Services& s, Call& c);
Reply delete_suppressed_destination(Services& s, Call& c);
Reply list_suppressed_destinations(Services& s, Call& c);

// An SES name (configuration set, event destination): 1 to 64 ASCII letters, digits, '_' and
// '-'. Otherwise fails the call naming the field and returns false.
bool check_ses_name(Call& c, const std::string& name, const std::string& field);

// A store listing's page from NextToken and PageSize query parameters (PageSize in
// [0, max_size]; default_size when absent or 0).
store::Page read_page(Call& c, size_t default_size, size_t max_size);

// The same from body members (the POST list operations of newer SES v2 models).
store::Page read_body_page(Call& c, size_t default_size, size_t max_size);

// A listing filtered here (the store does not filter): store pages of page.size are read until
// one holds a match or the list ends (at most kMaxFilterPages at a time), so a page may be shorter
// than PageSize, even empty, while NextToken says there is more, as SES pages may be.
constexpr int kMaxFilterPages = 100;
template <typename T, typename List, typename Keep>
Result<store::Listing<T>> filtered_listing(store::Page page, List list, Keep keep) {
  store::Listing<T> out;
  for (int i = 0; i < kMaxFilterPages; ++i) {
    Result<store::Listing<T>> got = list(page);
    if (!got) return got.status();
    for (T& item : got->items) {
      if (keep(item)) out.items.push_back(std::move(item));
    }
    out.next_token = got->next_token;
    page.token = got->next_token;
    if (!out.items.empty() || page.token.empty()) break;
  }
  return out;
}

}  // namespace magnetic::api
