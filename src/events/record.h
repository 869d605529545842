// Event records in the shape Amazon SES publishes them to its event destinations: a top-level
// object with `eventType`, the `mail` object describing the message, and one object named after
// the type (`bounce`, `complaint`, `delivery`, `send`, `reject`, `deliveryDelay`, `failure`).
// Field names, nesting and the timestamp form ("2026-12-04T05:06:07.123Z", UTC, milliseconds)
// follow SES's published record format, so receivers written for SES read ours unchanged.
//
// This file only builds records; it parses no messages. The service fills MailInfo when it
// accepts a message, keeps mail_json() of it, and builds each event later from that text and the
// detail of what happened. Optional fields that SES leaves out when it does not know them
// (remoteMtaIp, a recipient's status, ...) are left out here when empty.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/status.h"

namespace magnetic::events {

// The event types of the SES v2 API (EventDestination.MatchingEventTypes).
enum class EventType {
  kSend,
  kReject,
  kBounce,
  kComplaint,
  kDelivery,
  kOpen,
  kClick,
  kRenderingFailure,
  kDeliveryDelay,
  kSubscription,
  // Not an SES type: the reputation guard paused sending for the account or a configuration set.
  // Its record has no `mail` object (it is about no one message).
  kSendingPaused,
};

// "SEND", "RENDERING_FAILURE", ...: the API's spelling (configuration set event destinations).
const char* event_type_api_name(EventType type);
// The inverse of event_type_api_name; an unknown name is an invalid-argument error naming it.
Result<EventType> event_type_from_api_name(std::string_view name);
// "Send", "Rendering Failure", "DeliveryDelay", ...: the record's `eventType`.
const char* event_type_record_name(EventType type);

// "2026-12-04T05:06:07.123Z" for milliseconds since the epoch (UTC).
std::string format_timestamp(int64_t ms);

// The `mail.commonHeaders` object. Empty lists and strings are left out of the record.
struct CommonHeaders {
  std::vector<std::string> from;
  std::vector<std::string> reply_to;
  std::vector<std::string> to;
  std::vector<std::string> cc;
  std::vector<std::string> bcc;
  std::string sender;
  std::string return_path;
  std::string message_id;  // the message's own Message-ID header, as written
  std::string date;        // the Date header, as written
  std::string subject;
};

// The `mail` object: the message an event is about.
struct MailInfo {
  std::string message_id;    // SES MessageId, as returned by SendEmail
  int64_t timestamp_ms = 0;  // when the message was accepted
  std::string source;        // envelope MAIL FROM (SES: the From address as sent)
  std::string source_arn;    // ARN of the sending identity
  std::string sending_account_id;
  std::vector<std::string> destination;  // every envelope recipient
  bool headers_truncated = false;
  std::vector<std::pair<std::string, std::string>> headers;  // in message order
  CommonHeaders common_headers;
  // Message tags and the automatic ones (ses:configuration-set, ...): name -> values.
  std::map<std::string, std::vector<std::string>> tags;
};

// The mail object with SES's field names. nlohmann::json orders the keys alphabetically; prefer
// mail_json() for the text to store, which keeps SES's field order.
nlohmann::json mail_object(const MailInfo& mail);
// Compact JSON text of the mail object in SES's field order: what the service stores with an
// accepted message and passes back to make_event().
std::string mail_json(const MailInfo& mail);

struct BouncedRecipient {
  std::string email_address;
  std::string action;           // DSN Action: "failed"
  std::string status;           // enhanced status code: "5.1.1"
  std::string diagnostic_code;  // "smtp; 550 5.1.1 user unknown"
};

struct BounceDetail {
  std::string bounce_type;      // "Undetermined", "Permanent" or "Transient"
  std::string bounce_sub_type;  // "General", "NoEmail", "Suppressed", "MailboxFull", ...
  std::vector<BouncedRecipient> bounced_recipients;
  int64_t timestamp_ms = 0;
  std::string feedback_id;
  std::string reporting_mta;  // "dsn; mta.example.com"
  std::string remote_mta_ip;
};

struct ComplaintDetail {
  std::vector<std::string> complained_recipients;  // email addresses
  int64_t timestamp_ms = 0;
  std::string feedback_id;
  // null in the record unless set ("OnAccountSuppressionList").
  std::optional<std::string> complaint_sub_type;
  std::string user_agent;                  // from the feedback report, if any
  std::string complaint_feedback_type;     // ARF Feedback-Type: "abuse", "fraud", ...
  std::optional<int64_t> arrival_date_ms;  // ARF Arrival-Date, if the report gave one
};

struct DeliveryDetail {
  int64_t timestamp_ms = 0;
  int64_t processing_time_millis = 0;  // from acceptance to the receiving MTA's 250
  std::vector<std::string> recipients;
  std::string smtp_response;  // "250 2.6.0 Message received"
  std::string reporting_mta;  // the EHLO name of the egress source
  std::string remote_mta_ip;
};

struct DelayedRecipient {
  std::string email_address;
  std::string status;           // "4.4.7"
  std::string diagnostic_code;  // "smtp; 421 4.4.7 try again later"
};

struct DeliveryDelayDetail {
  int64_t timestamp_ms = 0;
  // "InternalFailure", "General", "MailboxFull", "SpamDetected", "RecipientServerError",
  // "IPFailure", "TransientCommunicationFailure", "Undetermined", ...
  std::string delay_type;
  int64_t expiration_time_ms = 0;  // when delivery will be given up
  std::vector<DelayedRecipient> delayed_recipients;
  std::string reporting_mta;
};

struct SendDetail {};  // the `send` object is empty

struct RejectDetail {
  std::string reason;  // "Bad content"
};

struct RenderingFailureDetail {
  std::string template_name;
  std::string error_message;
};

// The reputation guard paused sending: {"eventType":"Sending Paused","sendingPaused":{...}}.
struct SendingPausedDetail {
  int64_t timestamp_ms = 0;
  std::string configuration_set;  // empty: the whole account was paused
  std::string metric;             // "BOUNCE" or "COMPLAINT": the rate that crossed its threshold
  double rate = 0, threshold = 0;
  uint64_t sent = 0, bounced = 0, complained = 0;  // counts in the window
  int64_t window_ms = 0;
  std::string reason;  // the sentence the log and GetAccount give
};
// The whole record as compact JSON text.
std::string make_sending_paused_event(const SendingPausedDetail& detail);

// The compact JSON text of a whole record: {"eventType":...,"<type object>":{...},"mail":{...}}.
// `mail` is the mail object as built by mail_object(); the mail_json overloads take the stored
// text instead and return an invalid-argument error if it is not a JSON object.
std::string make_send_event(const nlohmann::json& mail);
std::string make_event(const nlohmann::json& mail, const SendDetail& detail);
std::string make_event(const nlohmann::json& mail, const BounceDetail& detail);
std::string make_event(const nlohmann::json& mail, const ComplaintDetail& detail);
std::string make_event(const nlohmann::json& mail, const DeliveryDetail& detail);
std::string make_event(const nlohmann::json& mail, const DeliveryDelayDetail& detail);
std::string make_event(const nlohmann::json& mail, const RejectDetail& detail);
std::string make_event(const nlohmann::json& mail, const RenderingFailureDetail& detail);

Result<std::string> make_send_event(std::string_view mail_json);
Result<std::string> make_event(std::string_view mail_json, const SendDetail& detail);
Result<std::string> make_event(std::string_view mail_json, const BounceDetail& detail);
Result<std::string> make_event(std::string_view mail_json, const ComplaintDetail& detail);
Result<std::string> make_event(std::string_view mail_json, const DeliveryDetail& detail);
Result<std::string> make_event(std::string_view mail_json, const DeliveryDelayDetail& detail);
Result<std::string> make_event(std::string_view mail_json, const RejectDetail& detail);
Result<std::string> make_event(std::string_view mail_json, const RenderingFailureDetail& detail);

// A std::string or a literal converts to both nlohmann::json and std::string_view, which would
// make the calls above ambiguous; text is always the stored mail object.
template <typename Text>
concept MailText = std::is_convertible_v<const Text&, std::string_view> &&
                   !std::is_same_v<std::remove_cvref_t<Text>, nlohmann::json> &&
                   !std::is_same_v<std::remove_cvref_t<Text>, std::string_view>;

template <MailText Text, typename Detail>
Result<std::string> make_event(const Text& mail_json, const Detail& detail) {
  return make_event(std::string_view(mail_json), detail);
}
template <MailText Text>
Result<std::string> make_send_event(const Text& mail_json) {
  return make_send_event(std::string_view(mail_json));
}

}  // namespace magnetic::events
