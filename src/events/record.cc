#include "events/record.h"

#include <ctime>

namespace magnetic::events {
namespace {

using Ordered = nlohmann::ordered_json;

// Header values and diagnostic codes come from peers and may hold any bytes; invalid UTF-8 is
// replaced rather than failing the whole record.
std::string dump(const Ordered& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void put_if(Ordered& j, const char* key, const std::string& value) {
  if (!value.empty()) j[key] = value;
}

void put_if(Ordered& j, const char* key, const std::vector<std::string>& values) {
  if (!values.empty()) j[key] = values;
}

Ordered build_mail(const MailInfo& m) {
  Ordered j;
  j["timestamp"] = format_timestamp(m.timestamp_ms);
  j["source"] = m.source;
  j["sourceArn"] = m.source_arn;
  j["sendingAccountId"] = m.sending_account_id;
  j["messageId"] = m.message_id;
  j["destination"] = m.destination;
  j["headersTruncated"] = m.headers_truncated;
  Ordered headers = Ordered::array();
  for (const auto& [name, value] : m.headers) headers.push_back({{"name", name}, {"value", value}});
  j["headers"] = std::move(headers);

  const CommonHeaders& c = m.common_headers;
  Ordered common = Ordered::object();
  put_if(common, "from", c.from);
  put_if(common, "replyTo", c.reply_to);
  put_if(common, "to", c.to);
  put_if(common, "cc", c.cc);
  put_if(common, "bcc", c.bcc);
  put_if(common, "sender", c.sender);
  put_if(common, "returnPath", c.return_path);
  put_if(common, "date", c.date);
  put_if(common, "messageId", c.message_id);
  put_if(common, "subject", c.subject);
  j["commonHeaders"] = std::move(common);

  Ordered tags = Ordered::object();
  for (const auto& [name, values] : m.tags) tags[name] = values;
  j["tags"] = std::move(tags);
  return j;
}

Ordered detail_object(const BounceDetail& d) {
  Ordered j;
  j["bounceType"] = d.bounce_type;
  j["bounceSubType"] = d.bounce_sub_type;
  Ordered recipients = Ordered::array();
  for (const auto& r : d.bounced_recipients) {
    Ordered o;
    o["emailAddress"] = r.email_address;
    put_if(o, "action", r.action);
    put_if(o, "status", r.status);
    put_if(o, "diagnosticCode", r.diagnostic_code);
    recipients.push_back(std::move(o));
  }
  j["bouncedRecipients"] = std::move(recipients);
  j["timestamp"] = format_timestamp(d.timestamp_ms);
  j["feedbackId"] = d.feedback_id;
  put_if(j, "reportingMTA", d.reporting_mta);
  put_if(j, "remoteMtaIp", d.remote_mta_ip);
  return j;
}

Ordered detail_object(const ComplaintDetail& d) {
  Ordered j;
  Ordered recipients = Ordered::array();
  for (const auto& r : d.complained_recipients) recipients.push_back({{"emailAddress", r}});
  j["complainedRecipients"] = std::move(recipients);
  j["timestamp"] = format_timestamp(d.timestamp_ms);
  j["feedbackId"] = d.feedback_id;
  // SES always writes complaintSubType, as null when there is none.
  j["complaintSubType"] = d.complaint_sub_type ? Ordered(*d.complaint_sub_type) : Ordered();
  put_if(j, "userAgent", d.user_agent);
  put_if(j, "complaintFeedbackType", d.complaint_feedback_type);
  if (d.arrival_date_ms) j["arrivalDate"] = format_timestamp(*d.arrival_date_ms);
  return j;
}

Ordered detail_object(const DeliveryDetail& d) {
  Ordered j;
  j["timestamp"] = format_timestamp(d.timestamp_ms);
  j["processingTimeMillis"] = d.processing_time_millis;
  j["recipients"] = d.recipients;
  j["smtpResponse"] = d.smtp_response;
  j["reportingMTA"] = d.reporting_mta;
  put_if(j, "remoteMtaIp", d.remote_mta_ip);
  return j;
}

Ordered detail_object(const DeliveryDelayDetail& d) {
  Ordered j;
  j["timestamp"] = format_timestamp(d.timestamp_ms);
  j["delayType"] = d.delay_type;
  j["expirationTime"] = format_timestamp(d.expiration_time_ms);
  Ordered recipients = Ordered::array();
  for (const auto& r : d.delayed_recipients) {
    Ordered o;
    o["emailAddress"] = r.email_address;
    put_if(o, "status", r.status);
    put_if(o, "diagnosticCode", r.diagnostic_code);
    recipients.push_back(std::move(o));
  }
  j["delayedRecipients"] = std::move(recipients);
  put_if(j, "reportingMTA", d.reporting_mta);
  return j;
}

Ordered detail_object(const SendDetail&) { return Ordered::object(); }

Ordered detail_object(const RejectDetail& d) { return {{"reason", d.reason}}; }

Ordered detail_object(const RenderingFailureDetail& d) {
  Ordered j;
  j["errorMessage"] = d.error_message;
  j["templateName"] = d.template_name;
  return j;
}

const char* detail_key(const BounceDetail&) { return "bounce"; }
const char* detail_key(const ComplaintDetail&) { return "complaint"; }
const char* detail_key(const DeliveryDetail&) { return "delivery"; }
const char* detail_key(const DeliveryDelayDetail&) { return "deliveryDelay"; }
const char* detail_key(const SendDetail&) { return "send"; }
const char* detail_key(const RejectDetail&) { return "reject"; }
const char* detail_key(const RenderingFailureDetail&) { return "failure"; }

EventType detail_type(const BounceDetail&) { return EventType::kBounce; }
EventType detail_type(const ComplaintDetail&) { return EventType::kComplaint; }
EventType detail_type(const DeliveryDetail&) { return EventType::kDelivery; }
EventType detail_type(const DeliveryDelayDetail&) { return EventType::kDeliveryDelay; }
EventType detail_type(const SendDetail&) { return EventType::kSend; }
EventType detail_type(const RejectDetail&) { return EventType::kReject; }
EventType detail_type(const RenderingFailureDetail&) { return EventType::kRenderingFailure; }

// The record is put together as text so that the mail object, already serialized when the
// message was accepted, is not parsed and written again for every event.
template <typename Detail>
std::string assemble(std::string_view mail_text, const Detail& detail) {
  std::string out = "{\"eventType\":\"";
  out += event_type_record_name(detail_type(detail));
  out += "\",\"";
  out += detail_key(detail);
  out += "\":";
  out += dump(detail_object(detail));
  out += ",\"mail\":";
  out += mail_text;
  out += '}';
  return out;
}

template <typename Detail>
Result<std::string> assemble_checked(std::string_view mail_text, const Detail& detail) {
  size_t first = mail_text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || mail_text[first] != '{' ||
      !nlohmann::json::accept(mail_text)) {
    return Status::invalid("events: the stored mail object is not a JSON object");
  }
  return assemble(mail_text, detail);
}

std::string dump_mail(const nlohmann::json& mail) {
  return mail.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

struct TypeNames {
  EventType type;
  const char* api;
  const char* record;
};

constexpr TypeNames kTypeNames[] = {
    {EventType::kSend, "SEND", "Send"},
    {EventType::kReject, "REJECT", "Reject"},
    {EventType::kBounce, "BOUNCE", "Bounce"},
    {EventType::kComplaint, "COMPLAINT", "Complaint"},
    {EventType::kDelivery, "DELIVERY", "Delivery"},
    {EventType::kOpen, "OPEN", "Open"},
    {EventType::kClick, "CLICK", "Click"},
    {EventType::kRenderingFailure, "RENDERING_FAILURE", "Rendering Failure"},
    {EventType::kDeliveryDelay, "DELIVERY_DELAY", "DeliveryDelay"},
    {EventType::kSubscription, "SUBSCRIPTION", "Subscription"},
    {EventType::kSendingPaused, "SENDING_PAUSED", "Sending Paused"},
};

}  // namespace

const char* event_type_api_name(EventType type) {
  for (const auto& t : kTypeNames) {
    if (t.type == type) return t.api;
  }
  std::abort();  // every enumerator is in the table
}

const char* event_type_record_name(EventType type) {
  for (const auto& t : kTypeNames) {
    if (t.type == type) return t.record;
  }
  std::abort();
}

Result<EventType> event_type_from_api_name(std::string_view name) {
  for (const auto& t : kTypeNames) {
    if (name == t.api) return t.type;
  }
  return Status::invalid("unknown event type '" + std::string(name) +
                         "': expected SEND, REJECT, BOUNCE, COMPLAINT, DELIVERY, OPEN, CLICK, "
                         "RENDERING_FAILURE, DELIVERY_DELAY, SUBSCRIPTION or SENDING_PAUSED");
}

std::string format_timestamp(int64_t ms) {
  if (ms < 0) ms = 0;
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[40];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

nlohmann::json mail_object(const MailInfo& mail) {
  // Through the text, so that both forms carry exactly the same fields.
  return nlohmann::json::parse(mail_json(mail));
}

std::string mail_json(const MailInfo& mail) { return dump(build_mail(mail)); }

std::string make_sending_paused_event(const SendingPausedDetail& d) {
  Ordered j;
  j["timestamp"] = format_timestamp(d.timestamp_ms);
  j["scope"] = d.configuration_set.empty() ? "ACCOUNT" : "CONFIGURATION_SET";
  put_if(j, "configurationSet", d.configuration_set);
  j["metric"] = d.metric;
  j["rate"] = d.rate;
  j["threshold"] = d.threshold;
  j["sent"] = d.sent;
  j["bounced"] = d.bounced;
  j["complained"] = d.complained;
  j["windowMillis"] = d.window_ms;
  j["reason"] = d.reason;
  Ordered record;
  record["eventType"] = event_type_record_name(EventType::kSendingPaused);
  record["sendingPaused"] = std::move(j);
  return dump(record);
}

std::string make_send_event(const nlohmann::json& mail) {
  return assemble(dump_mail(mail), SendDetail{});
}
std::string make_event(const nlohmann::json& mail, const SendDetail& d) {
  return assemble(dump_mail(mail), d);
}
std::string make_event(const nlohmann::json& mail, const BounceDetail& d) {
  return assemble(dump_mail(mail), d);
}
std::string make_event(const nlohmann::json& mail, const ComplaintDetail& d) {
  return assemble(dump_mail(mail), d);
}
std::string make_event(const nlohmann::json& mail, const DeliveryDetail& d) {
  return assemble(dump_mail(mail), d);
}
std::string make_event(const nlohmann::json& mail, const DeliveryDelayDetail& d) {
  return assemble(dump_mail(mail), d);
}
std::string make_event(const nlohmann::json& mail, const RejectDetail& d) {
  return assemble(dump_mail(mail), d);
}
std::string make_event(const nlohmann::json& mail, const RenderingFailureDetail& d) {
  return assemble(dump_mail(mail), d);
}

Result<std::string> make_send_event(std::string_view mail_json) {
  return assemble_checked(mail_json, SendDetail{});
}
Result<std::string> make_event(std::string_view mail_json, const SendDetail& d) {
  return assemble_checked(mail_json, d);
}
Result<std::string> make_event(std::string_view mail_json, const BounceDetail& d) {
  return assemble_checked(mail_json, d);
}
Result<std::string> make_event(std::string_view mail_json, const ComplaintDetail& d) {
  return assemble_checked(mail_json, d);
}
Result<std::string> make_event(std::string_view mail_json, const DeliveryDetail& d) {
  return assemble_checked(mail_json, d);
}
Result<std::string> make_event(std::string_view mail_json, const DeliveryDelayDetail& d) {
  return assemble_checked(mail_json, d);
}
Result<std::string> make_event(std::string_view mail_json, const RejectDetail& d) {
  return assemble_checked(mail_json, d);
}
Result<std::string> make_event(std::string_view mail_json, const RenderingFailureDetail& d) {
  return assemble_checked(mail_json, d);
}

}  // namespace magnetic::events
