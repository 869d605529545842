#include "events/record.h"

#include <gtest/gtest.h>

namespace magnetic::events {
namespace {

// 2026-12-04T05:06:07.123Z
constexpr int64_t kT0 = 1796360767123;

MailInfo sample_mail() {
  MailInfo m;
  m.message_id = "01jexample0000000000000000";
  m.timestamp_ms = kT0;
  m.source = "sender@example.com";
  m.source_arn = "arn:aws:ses:us-east-1:000000000000:identity/example.com";
  m.sending_account_id = "000000000000";
  m.destination = {"rcpt@example.net"};
  m.headers = {
      {"From", "Sender <sender@example.com>"}, {"To", "rcpt@example.net"}, {"Subject", "Hello"}};
  m.common_headers.from = {"Sender <sender@example.com>"};
  m.common_headers.to = {"rcpt@example.net"};
  m.common_headers.message_id = "<abc@example.com>";
  m.common_headers.date = "Fri, 04 Dec 2026 05:06:07 +0000";
  m.common_headers.subject = "Hello";
  m.tags = {{"campaign", {"spring"}}, {"ses:configuration-set", {"marketing"}}};
  return m;
}

const std::string kMail =
    R"({"timestamp":"2026-12-04T05:06:07.123Z","source":"sender@example.com",)"
    R"("sourceArn":"arn:aws:ses:us-east-1:000000000000:identity/example.com",)"
    R"("sendingAccountId":"000000000000","messageId":"01jexample0000000000000000",)"
    R"("destination":["rcpt@example.net"],"headersTruncated":false,)"
    R"("headers":[{"name":"From","value":"Sender <sender@example.com>"},)"
    R"({"name":"To","value":"rcpt@example.net"},{"name":"Subject","value":"Hello"}],)"
    R"("commonHeaders":{"from":["Sender <sender@example.com>"],"to":["rcpt@example.net"],)"
    R"("date":"Fri, 04 Dec 2026 05:06:07 +0000","messageId":"<abc@example.com>",)"
    R"("subject":"Hello"},"tags":{"campaign":["spring"],"ses:configuration-set":["marketing"]}})";

TEST(RecordTest, TimestampsAreUtcWithMilliseconds) {
  EXPECT_EQ(format_timestamp(kT0), "2026-12-04T05:06:07.123Z");
  EXPECT_EQ(format_timestamp(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_timestamp(1000), "1970-01-01T00:00:01.000Z");
  EXPECT_EQ(format_timestamp(-5), "1970-01-01T00:00:00.000Z");
}

TEST(RecordTest, MailJsonKeepsSesFieldOrder) { EXPECT_EQ(mail_json(sample_mail()), kMail); }

TEST(RecordTest, MailObjectHasTheSameFields) {
  nlohmann::json j = mail_object(sample_mail());
  EXPECT_EQ(j, nlohmann::json::parse(kMail));
  EXPECT_EQ(j["commonHeaders"]["messageId"], "<abc@example.com>");
  EXPECT_EQ(j["tags"]["ses:configuration-set"][0], "marketing");
}

TEST(RecordTest, EmptyCommonHeadersAndTagsAreEmptyObjects) {
  MailInfo m;
  m.message_id = "m1";
  EXPECT_EQ(mail_json(m),
            R"({"timestamp":"1970-01-01T00:00:00.000Z","source":"","sourceArn":"",)"
            R"("sendingAccountId":"","messageId":"m1","destination":[],"headersTruncated":false,)"
            R"("headers":[],"commonHeaders":{},"tags":{}})");
}

TEST(RecordTest, InvalidUtf8InHeadersIsReplaced) {
  MailInfo m;
  m.headers = {{"Subject", "caf\xe9"}};
  std::string text = mail_json(m);
  EXPECT_NE(text.find("{\"name\":\"Subject\",\"value\":\"caf\xef\xbf\xbd\"}"), std::string::npos)
      << text;
}

TEST(RecordTest, Send) {
  EXPECT_EQ(make_send_event(mail_object(sample_mail())),
            R"({"eventType":"Send","send":{},"mail":)" + nlohmann::json::parse(kMail).dump() + "}");
  auto from_text = make_send_event(kMail);
  ASSERT_TRUE(from_text) << from_text.status().message();
  EXPECT_EQ(*from_text, R"({"eventType":"Send","send":{},"mail":)" + kMail + "}");
  auto with_detail = make_event(kMail, SendDetail{});
  ASSERT_TRUE(with_detail);
  EXPECT_EQ(*with_detail, *from_text);
}

TEST(RecordTest, Bounce) {
  BounceDetail d;
  d.bounce_type = "Permanent";
  d.bounce_sub_type = "General";
  d.bounced_recipients = {{"rcpt@example.net", "failed", "5.1.1", "smtp; 550 5.1.1 user unknown"}};
  d.timestamp_ms = kT0 + 1000;
  d.feedback_id = "01jfeedback";
  d.reporting_mta = "dsn; mx.example.net";
  d.remote_mta_ip = "192.0.2.7";
  auto r = make_event(kMail, d);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r,
            R"({"eventType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General",)"
            R"("bouncedRecipients":[{"emailAddress":"rcpt@example.net","action":"failed",)"
            R"("status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}],)"
            R"("timestamp":"2026-12-04T05:06:08.123Z","feedbackId":"01jfeedback",)"
            R"("reportingMTA":"dsn; mx.example.net","remoteMtaIp":"192.0.2.7"},"mail":)" +
                kMail + "}");
}

TEST(RecordTest, BounceLeavesOutUnknownOptionalFields) {
  BounceDetail d;
  d.bounce_type = "Transient";
  d.bounce_sub_type = "MailboxFull";
  d.bounced_recipients = {{"rcpt@example.net", "", "", ""}};
  d.timestamp_ms = kT0;
  d.feedback_id = "f";
  auto r = make_event(R"({"messageId":"m"})", d);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, R"({"eventType":"Bounce","bounce":{"bounceType":"Transient",)"
                R"("bounceSubType":"MailboxFull","bouncedRecipients":[{"emailAddress":)"
                R"("rcpt@example.net"}],"timestamp":"2026-12-04T05:06:07.123Z","feedbackId":"f"},)"
                R"("mail":{"messageId":"m"}})");
}

TEST(RecordTest, Complaint) {
  ComplaintDetail d;
  d.complained_recipients = {"rcpt@example.net"};
  d.timestamp_ms = kT0;
  d.feedback_id = "f1";
  d.user_agent = "ExampleFBL/1.0";
  d.complaint_feedback_type = "abuse";
  d.arrival_date_ms = kT0 - 7;
  auto r = make_event(std::string(kMail), d);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, R"({"eventType":"Complaint","complaint":{"complainedRecipients":[{"emailAddress":)"
                R"("rcpt@example.net"}],"timestamp":"2026-12-04T05:06:07.123Z","feedbackId":"f1",)"
                R"("complaintSubType":null,"userAgent":"ExampleFBL/1.0",)"
                R"("complaintFeedbackType":"abuse","arrivalDate":"2026-12-04T05:06:07.116Z"},)"
                R"("mail":)" +
                    kMail + "}");

  ComplaintDetail suppressed;
  suppressed.complained_recipients = {"rcpt@example.net"};
  suppressed.timestamp_ms = kT0;
  suppressed.feedback_id = "f2";
  suppressed.complaint_sub_type = "OnAccountSuppressionList";
  auto s = make_event(R"({})", suppressed);
  ASSERT_TRUE(s);
  EXPECT_EQ(*s, R"({"eventType":"Complaint","complaint":{"complainedRecipients":[{"emailAddress":)"
                R"("rcpt@example.net"}],"timestamp":"2026-12-04T05:06:07.123Z","feedbackId":"f2",)"
                R"("complaintSubType":"OnAccountSuppressionList"},"mail":{}})");
}

TEST(RecordTest, Delivery) {
  DeliveryDetail d;
  d.timestamp_ms = kT0 + 250;
  d.processing_time_millis = 250;
  d.recipients = {"rcpt@example.net"};
  d.smtp_response = "250 2.0.0 OK queued";
  d.reporting_mta = "out1.example.com";
  d.remote_mta_ip = "192.0.2.9";
  EXPECT_EQ(make_event(nlohmann::json::object(), d),
            R"({"eventType":"Delivery","delivery":{"timestamp":"2026-12-04T05:06:07.373Z",)"
            R"("processingTimeMillis":250,"recipients":["rcpt@example.net"],)"
            R"("smtpResponse":"250 2.0.0 OK queued","reportingMTA":"out1.example.com",)"
            R"("remoteMtaIp":"192.0.2.9"},"mail":{}})");
}

TEST(RecordTest, DeliveryDelay) {
  DeliveryDelayDetail d;
  d.timestamp_ms = kT0;
  d.delay_type = "TransientCommunicationFailure";
  d.expiration_time_ms = kT0 + 4 * 3600 * 1000;
  d.delayed_recipients = {{"rcpt@example.net", "4.4.7", "smtp; 421 4.4.7 try later"}};
  d.reporting_mta = "out1.example.com";
  auto r = make_event(R"({"messageId":"m"})", d);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r,
            R"({"eventType":"DeliveryDelay","deliveryDelay":{"timestamp":)"
            R"("2026-12-04T05:06:07.123Z","delayType":"TransientCommunicationFailure",)"
            R"("expirationTime":"2026-12-04T09:06:07.123Z","delayedRecipients":[{"emailAddress":)"
            R"("rcpt@example.net","status":"4.4.7","diagnosticCode":"smtp; 421 4.4.7 try later"}],)"
            R"("reportingMTA":"out1.example.com"},"mail":{"messageId":"m"}})");
}

TEST(RecordTest, Reject) {
  auto r = make_event(R"({"messageId":"m"})", RejectDetail{"Bad content"});
  ASSERT_TRUE(r);
  EXPECT_EQ(*r,
            R"({"eventType":"Reject","reject":{"reason":"Bad content"},"mail":{"messageId":"m"}})");
}

TEST(RecordTest, RenderingFailure) {
  RenderingFailureDetail d{"welcome", "Attribute 'name' is not present in the rendering data."};
  auto r = make_event(R"({"messageId":"m"})", d);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r,
            R"({"eventType":"Rendering Failure","failure":{"errorMessage":)"
            R"("Attribute 'name' is not present in the rendering data.","templateName":"welcome"},)"
            R"("mail":{"messageId":"m"}})");
}

TEST(RecordTest, StoredMailThatIsNotAnObjectIsRefused) {
  for (const char* bad : {"", "[]", "\"x\"", "{", "{\"a\":1} trailing", "null"}) {
    auto r = make_event(std::string_view(bad), RejectDetail{"Bad content"});
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message(), "events: the stored mail object is not a JSON object");
  }
}

TEST(RecordTest, EventTypeNames) {
  struct Case {
    EventType type;
    const char* api;
    const char* record;
  };
  const Case cases[] = {
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
  for (const auto& c : cases) {
    EXPECT_STREQ(event_type_api_name(c.type), c.api);
    EXPECT_STREQ(event_type_record_name(c.type), c.record);
    auto back = event_type_from_api_name(c.api);
    ASSERT_TRUE(back) << c.api;
    EXPECT_EQ(*back, c.type);
  }
  auto bad = event_type_from_api_name("Bounce");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().message(),
            "unknown event type 'Bounce': expected SEND, REJECT, BOUNCE, COMPLAINT, DELIVERY, "
            "OPEN, CLICK, RENDERING_FAILURE, DELIVERY_DELAY, SUBSCRIPTION or SENDING_PAUSED");
}

TEST(EventRecord, SendingPausedRecord) {
  SendingPausedDetail d;
  d.timestamp_ms = 1764806400123;
  d.configuration_set = "news";
  d.metric = "BOUNCE";
  d.rate = 0.125;
  d.threshold = 0.1;
  d.sent = 8;
  d.bounced = 1;
  d.window_ms = 86400000;
  d.reason = "bounce rate 12.50% (1 of 8 recipients) reached the pause threshold 10.00%";
  EXPECT_EQ(
      make_sending_paused_event(d),
      R"({"eventType":"Sending Paused","sendingPaused":{"timestamp":"2025-12-04T00:00:00.123Z",)"
      R"("scope":"CONFIGURATION_SET","configurationSet":"news","metric":"BOUNCE","rate":0.125,)"
      R"("threshold":0.1,"sent":8,"bounced":1,"complained":0,"windowMillis":86400000,)"
      R"("reason":"bounce rate 12.50% (1 of 8 recipients) reached the pause threshold 10.00%"}})");
  d.configuration_set.clear();
  auto account = nlohmann::json::parse(make_sending_paused_event(d));
  EXPECT_EQ(account["sendingPaused"]["scope"], "ACCOUNT");
  EXPECT_FALSE(account["sendingPaused"].contains("configurationSet"));
}

}  // namespace
}  // namespace magnetic::events
