// SendEmail through the HTTP server: the exact message handed to the Submitter, its envelope,
// and every way a request is refused.
#include <gtest/gtest.h>

#include <regex>

#include "api/json_reader.h"
#include "test_server.h"

namespace magnetic::api::testing {
namespace {

using nlohmann::json;
using service::Refusal;
using TagList = std::vector<std::pair<std::string, std::string>>;

void add_identity(TestServer& server, const std::string& name) {
  store::Identity id;
  id.name = name;
  id.is_domain = name.find('@') == std::string::npos;
  ASSERT_TRUE(server.store().create_identity(id).is_ok());
}

json simple(const std::string& subject, const std::string& text) {
  return {{"Simple", {{"Subject", {{"Data", subject}}}, {"Body", {{"Text", {{"Data", text}}}}}}}};
}

json minimal() {
  return {{"FromEmailAddress", "sender@example.com"},
          {"Destination", {{"ToAddresses", {"to@example.net"}}}},
          {"Content", simple("Hi", "Hello")}};
}

std::string boundary_of(const std::string& message) {
  std::smatch m;
  if (std::regex_search(message, m, std::regex("boundary=\"([^\"]+)\""))) return m[1];
  return "";
}

TEST(SendEmail, SimpleExactMessageAndEnvelope) {
  TestServer server;
  add_identity(server, "example.com");
  json request = {{"FromEmailAddress", "Sender <sender@example.com>"},
                  {"Destination",
                   {{"ToAddresses", {"to@example.net", "Second <second@example.net>"}},
                    {"CcAddresses", {"cc@example.net"}},
                    {"BccAddresses", {"bcc@example.net", "TO@example.net"}}}},
                  {"ReplyToAddresses", {"reply@example.com"}},
                  {"FeedbackForwardingEmailAddress", "bounces@example.com"},
                  {"ConfigurationSetName", "marketing"},
                  {"EmailTags", {{{"Name", "campaign"}, {"Value", "spring-26"}}}},
                  {"Content",
                   {{"Simple",
                     {{"Subject", {{"Data", "Hi"}, {"Charset", "UTF-8"}}},
                      {"Body", {{"Text", {{"Data", "Hello\nthere"}}}}},
                      {"Headers", {{{"Name", "X-Campaign"}, {"Value", "spring"}}}}}}}}};
  Response r = server.post("/v2/email/outbound-emails", request);
  ASSERT_EQ(r.status, 200) << r.body;
  std::string id = r.json()["MessageId"];
  ASSERT_EQ(id.size(), 26u);
  EXPECT_EQ(r.json(), json({{"MessageId", id}}));

  ASSERT_EQ(server.submitter.received.size(), 1u);
  const service::OutboundMessage& m = server.submitter.received[0];
  EXPECT_EQ(m.message_id, id);
  EXPECT_EQ(m.from, "sender@example.com");
  EXPECT_EQ(m.envelope_from, "bounces@example.com");
  // To, Cc, Bcc; a second spelling of an address is one recipient.
  EXPECT_EQ(m.recipients, (std::vector<std::string>{"to@example.net", "second@example.net",
                                                    "cc@example.net", "bcc@example.net"}));
  EXPECT_EQ(m.configuration_set, "marketing");
  EXPECT_EQ(m.tags, (TagList{{"campaign", "spring-26"}}));
  EXPECT_EQ(m.source, "api");
  EXPECT_EQ(m.data,
            "Date: Sat, 14 Mar 2026 15:09:26 +0000\r\n"
            "From: Sender <sender@example.com>\r\n"
            "To: to@example.net, Second <second@example.net>\r\n"
            "Cc: cc@example.net\r\n"
            "Reply-To: reply@example.com\r\n"
            "Subject: Hi\r\n"
            "Message-ID: <" +
                id +
                "@example.com>\r\n"
                "MIME-Version: 1.0\r\n"
                "X-Campaign: spring\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 7bit\r\n"
                "\r\n"
                "Hello\r\nthere\r\n");
}

TEST(SendEmail, NonAsciiHeadersAreEncoded) {
  TestServer server;
  json request = minimal();
  request["FromEmailAddress"] = "J\xc3\xb6rg <sender@example.com>";
  request["Content"] = simple(
      "Gr\xc3\xbc\xc3\x9f"
      "e",
      "x");
  Response r = server.post("/v2/email/outbound-emails", request);
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string& data = server.submitter.received[0].data;
  EXPECT_NE(data.find("From: =?UTF-8?B?SsO2cmc=?= <sender@example.com>\r\n"), std::string::npos)
      << data;
  EXPECT_NE(data.find("Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n"), std::string::npos) << data;
}

TEST(SendEmail, TextAndHtmlWithAttachment) {
  TestServer server;
  std::string pdf = std::string("%PDF\x00\x01\xff", 7);
  json request = minimal();
  request["Content"] = {
      {"Simple",
       {{"Subject", {{"Data", "Report"}}},
        {"Body", {{"Text", {{"Data", "See attached"}}}, {"Html", {{"Data", "<p>See</p>"}}}}},
        {"Attachments",
         {{{"FileName", "r.pdf"}, {"RawContent", base64_encode(pdf)}},
          {{"FileName", "logo.png"},
           {"RawContent", base64_encode("png")},
           {"ContentDisposition", "INLINE"},
           {"ContentId", "logo1"},
           {"ContentType", "image/png"},
           {"ContentDescription", "Logo"},
           {"ContentTransferEncoding", "QUOTED_PRINTABLE"}}}}}}};
  Response r = server.post("/v2/email/outbound-emails", request);
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string& data = server.submitter.received[0].data;
  EXPECT_NE(data.find("Content-Type: multipart/mixed; boundary="), std::string::npos);
  EXPECT_NE(data.find("Content-Type: multipart/related; boundary="), std::string::npos);
  EXPECT_NE(data.find("Content-Type: application/pdf; name=\"r.pdf\"\r\n"
                      "Content-Disposition: attachment; filename=\"r.pdf\"\r\n"
                      "Content-Transfer-Encoding: base64\r\n\r\n" +
                      base64_encode(pdf) + "\r\n"),
            std::string::npos)
      << data;
  EXPECT_NE(data.find("Content-Type: image/png; name=\"logo.png\"\r\n"
                      "Content-Disposition: inline; filename=\"logo.png\"\r\n"
                      "Content-ID: <logo1>\r\n"
                      "Content-Description: Logo\r\n"
                      "Content-Transfer-Encoding: quoted-printable\r\n\r\npng\r\n"),
            std::string::npos)
      << data;
}

TEST(SendEmail, StoredTemplateRendersWithEscaping) {
  TestServer server;
  store::EmailTemplate t{"welcome", "Hi {{name}}", "Text {{name}}", "<b>{{name}}</b>", "", ""};
  ASSERT_TRUE(server.store().create_template(t).is_ok());
  json request = minimal();
  request["Content"] = {{"Template",
                         {{"TemplateName", "welcome"},
                          {"TemplateData", R"({"name":"A&B"})"},
                          {"Headers", {{{"Name", "List-Id"}, {"Value", "<news.example.com>"}}}}}}};
  Response r = server.post("/v2/email/outbound-emails", request);
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string& data = server.submitter.received[0].data;
  std::string b = boundary_of(data);
  EXPECT_NE(data.find("Subject: Hi A&B\r\n"), std::string::npos) << data;
  EXPECT_NE(data.find("List-Id: <news.example.com>\r\n"), std::string::npos) << data;
  EXPECT_NE(data.find("\r\n\r\nText A&B\r\n--" + b), std::string::npos) << data;
  EXPECT_NE(data.find("\r\n\r\n<b>A&amp;B</b>\r\n--" + b + "--"), std::string::npos) << data;
}

TEST(SendEmail, InlineTemplateContent) {
  TestServer server;
  json request = minimal();
  request["Content"] = {{"Template",
                         {{"TemplateContent", {{"Subject", "S {{x}}"}, {"Text", "T {{x}}"}}},
                          {"TemplateData", R"({"x":"1"})"}}}};
  Response r = server.post("/v2/email/outbound-emails", request);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(server.submitter.received[0].data.find("Subject: S 1\r\n"), std::string::npos);
  EXPECT_NE(server.submitter.received[0].data.find("\r\n\r\nT 1\r\n"), std::string::npos);
}

TEST(SendEmail, TemplateErrors) {
  TestServer server;
  store::EmailTemplate t{"welcome", "Hi {{name}}", "Text", "", "", ""};
  ASSERT_TRUE(server.store().create_template(t).is_ok());
  json request = minimal();

  request["Content"] = {{"Template", {{"TemplateName", "missing"}, {"TemplateData", "{}"}}}};
  Response r = server.post("/v2/email/outbound-emails", request);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.error_type(), "NotFoundException");
  EXPECT_EQ(r.message(), "Template missing does not exist.");

  request["Content"] = {{"Template", {{"TemplateName", "welcome"}, {"TemplateData", "{}"}}}};
  r = server.post("/v2/email/outbound-emails", request);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.message(),
            "Content.Template.TemplateData does not render the template: welcome.Subject: line 1, "
            "column 6: \"name\" is not defined (strict mode)");

  request["Content"] = {{"Template", {{"TemplateName", "welcome"}, {"TemplateData", "{\"a\":"}}}};
  r = server.post("/v2/email/outbound-emails", request);
  EXPECT_EQ(r.message(),
            "Content.Template.TemplateData must be a JSON object in a string, e.g. "
            "\"{\\\"name\\\":\\\"Alice\\\"}\".");

  request["Content"] = {{"Template",
                         {{"TemplateName", "welcome"},
                          {"TemplateContent", {{"Text", "x"}}},
                          {"TemplateData", "{}"}}}};
  r = server.post("/v2/email/outbound-emails", request);
  EXPECT_EQ(r.message(), "Content.Template must have TemplateName or TemplateContent, not both.");

  request["Content"] = {{"Template", {{"TemplateArn", "arn:aws:ses:x"}}}};
  r = server.post("/v2/email/outbound-emails", request);
  EXPECT_EQ(r.message(), "Content.Template.TemplateArn is not supported by this service.");

  request["Content"] = {{"Template",
                         {{"TemplateName", "welcome"},
                          {"TemplateData", R"({"name":"x\r\nBcc: victim@example.org"})"}}}};
  r = server.post("/v2/email/outbound-emails", request);
  EXPECT_EQ(r.message(), "Content.Template: the rendered Subject contains CR or LF.");
  EXPECT_TRUE(server.submitter.received.empty());
}

std::string raw_message() {
  return "From: Raw Sender <raw@example.com>\n"
         "To: a@example.net, B <b@example.net>\n"
         "Cc: c@example.net\n"
         "Bcc: hidden@example.net\n"
         "X-SES-CONFIGURATION-SET: transactional\n"
         "X-SES-MESSAGE-TAGS: kind=receipt, shop=eu-1\n"
         "Subject: Raw\n"
         "\n"
         "Body line\n";
}

TEST(SendEmail, RawFromHeadersWithBccAndSesFieldsRemoved) {
  TestServer server;
  json request = {{"Content", {{"Raw", {{"Data", base64_encode(raw_message())}}}}},
                  {"EmailTags", {{{"Name", "shop"}, {"Value", "us-2"}}}}};
  Response r = server.post("/v2/email/outbound-emails", request);
  ASSERT_EQ(r.status, 200) << r.body;
  std::string id = r.json()["MessageId"];
  const service::OutboundMessage& m = server.submitter.received[0];
  EXPECT_EQ(m.from, "raw@example.com");
  EXPECT_EQ(m.envelope_from, "");
  EXPECT_EQ(m.recipients, (std::vector<std::string>{"a@example.net", "b@example.net",
                                                    "c@example.net", "hidden@example.net"}));
  EXPECT_EQ(m.configuration_set, "transactional");
  EXPECT_EQ(m.tags, (TagList{{"kind", "receipt"}, {"shop", "us-2"}}));
  EXPECT_EQ(m.data,
            "Date: Sat, 14 Mar 2026 15:09:26 +0000\r\n"
            "Message-ID: <" +
                id +
                "@example.com>\r\n"
                "From: Raw Sender <raw@example.com>\r\n"
                "To: a@example.net, B <b@example.net>\r\n"
                "Cc: c@example.net\r\n"
                "Subject: Raw\r\n"
                "\r\n"
                "Body line\r\n");
}

TEST(SendEmail, RawKeepsItsOwnIdAndDateAndUsesDestination) {
  TestServer server;
  add_identity(server, "example.com");
  std::string message =
      "Message-ID: <own@example.com>\r\nDate: Fri, 13 Mar 2026 10:00:00 +0000\r\n"
      "From: raw@example.com\r\nTo: a@example.net\r\nSubject: x\r\n\r\nbody\r\n";
  json request = {{"Content", {{"Raw", {{"Data", base64_encode(message)}}}}},
                  {"FromEmailAddress", "envelope@example.com"},
                  {"Destination", {{"BccAddresses", {"only@example.org"}}}}};
  Response r = server.post("/v2/email/outbound-emails", request);
  ASSERT_EQ(r.status, 200) << r.body;
  const service::OutboundMessage& m = server.submitter.received[0];
  EXPECT_EQ(m.data, message);
  EXPECT_EQ(m.recipients, std::vector<std::string>{"only@example.org"});
  EXPECT_EQ(m.from, "raw@example.com");
  EXPECT_EQ(m.envelope_from, "envelope@example.com");
}

TEST(SendEmail, RawErrors) {
  TestServer server;
  auto send_raw = [&](const std::string& message) {
    return server.post("/v2/email/outbound-emails",
                       {{"Content", {{"Raw", {{"Data", base64_encode(message)}}}}}});
  };
  Response r = send_raw("To: a@example.net\r\nSubject: x\r\n\r\nbody\r\n");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.message(), "Content.Raw.Data: the message has no From field.");
  r = send_raw("From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n");
  EXPECT_EQ(r.message(),
            "Content.Raw.Data has no To, Cc or Bcc field and the request no "
            "Destination: the message has no recipients.");
  r = send_raw("no header here");
  EXPECT_EQ(r.message(),
            "Content.Raw.Data: the message must have header fields, then an empty "
            "line, then the body.");
  r = send_raw("From: a@example.com\r\nbroken line\r\n\r\nbody\r\n");
  EXPECT_EQ(r.message(), "Content.Raw.Data: header line 2 is not a 'Name: value' field.");
  r = send_raw("From: a@example.com\r\nTo: a@example.net\r\n\r\n" + std::string(999, 'x'));
  EXPECT_EQ(r.message(), "Content.Raw.Data: line 4 is longer than 998 characters.");
  r = send_raw("From: a@example.com\r\nTo: not an address\r\n\r\nbody\r\n");
  EXPECT_EQ(r.message().substr(0, 56), "Content.Raw.Data: the To field: mailbox 1 ('not an addre");
  r = server.post("/v2/email/outbound-emails", {{"Content", {{"Raw", {{"Data", "%%%"}}}}}});
  EXPECT_EQ(r.message(), "Content.Raw.Data is not valid base64.");
  r = server.post("/v2/email/outbound-emails",
                  {{"Content", {{"Raw", {{"Data", base64_encode(raw_message())}}}}},
                   {"ReplyToAddresses", {"r@example.com"}}});
  EXPECT_EQ(r.message(),
            "ReplyToAddresses cannot be used with Content.Raw; put a Reply-To field "
            "in the message.");
  EXPECT_TRUE(server.submitter.received.empty());
}

TEST(SendEmail, RequestErrorsNameTheField) {
  TestServer server;
  struct Case {
    std::function<void(json&)> change;
    std::string message;
  };
  std::vector<Case> cases = {
      {[](json& j) { j.erase("Content"); }, "Missing required field Content."},
      {[](json& j) { j["Content"] = json::object(); },
       "Content must have exactly one of Simple, Raw or Template."},
      {[](json& j) {
         j["Content"]["Raw"] = {{"Data", "eA=="}};
       },
       "Content must have exactly one of Simple, Raw or Template; it has 2."},
      {[](json& j) { j.erase("FromEmailAddress"); }, "Missing required field FromEmailAddress."},
      {[](json& j) { j.erase("Destination"); }, "Missing required field Destination."},
      {[](json& j) { j["Destination"] = json::object(); },
       "Destination must have at least one address in ToAddresses, CcAddresses or "
       "BccAddresses."},
      {[](json& j) {
         j["Destination"]["ToAddresses"] = {"ok@example.net", "bad"};
       },
       "Destination.ToAddresses[1] is not a valid email address ('bad'): address has no @ and "
       "domain"},
      {[](json& j) { j["Destination"]["ToAddresses"] = "a@example.net"; },
       "Destination.ToAddresses must be a list, not a string."},
      {[](json& j) { j["Destination"]["To"] = {"a@example.net"}; },
       "Unknown field Destination.To."},
      {[](json& j) {
         j["Destination"]["ToAddresses"] = json::array();
         for (int i = 0; i < 51; ++i) {
           j["Destination"]["ToAddresses"].push_back("r" + std::to_string(i) + "@example.net");
         }
       },
       "Destination has 51 addresses; a message may have at most 50 recipients (To, Cc and Bcc "
       "together)."},
      {[](json& j) { j["FromEmailAddress"] = "Evil\r\nBcc: x@example.org <a@example.com>"; },
       "FromEmailAddress must not contain CR or LF."},
      {[](json& j) { j["Content"]["Simple"]["Subject"]["Data"] = "a\r\nBcc: x@example.org"; },
       "Content.Simple.Subject.Data must not contain CR or LF."},
      {[](json& j) {
         j["Content"]["Simple"]["Headers"] = {{{"Name", "X-A"}, {"Value", "v\r\nBcc: x@e.org"}}};
       },
       "Content.Simple.Headers[0].Value must not contain CR or LF."},
      {[](json& j) {
         j["Content"]["Simple"]["Headers"] = {{{"Name", "X-A\nB"}, {"Value", "v"}}};
       },
       "Content.Simple.Headers[0].Name must not contain CR or LF."},
      {[](json& j) {
         j["Content"]["Simple"]["Headers"] = {{{"Name", "X:A"}, {"Value", "v"}}};
       },
       "Content.Simple.Headers[0].Name must be printable ASCII without spaces or ':'; got 'X:A'."},
      {[](json& j) {
         j["Content"]["Simple"]["Headers"] = {{{"Name", "bcc"}, {"Value", "v"}}};
       },
       "Content.Simple.Headers[0].Name 'bcc' is set by the service and cannot be given as a "
       "header."},
      {[](json& j) {
         j["Content"]["Simple"]["Headers"] = {{{"Name", "X-A"}, {"Value", "caf\xc3\xa9"}}};
       },
       "Content.Simple.Headers[0].Value must be printable ASCII (encode other text with RFC "
       "2047)."},
      {[](json& j) {
         j["Content"]["Simple"]["Headers"] = json::array();
         for (int i = 0; i < 16; ++i) {
           j["Content"]["Simple"]["Headers"].push_back({{"Name", "X-A"}, {"Value", "v"}});
         }
       },
       "Content.Simple.Headers must have at most 15 items; got 16."},
      {[](json& j) { j["Content"]["Simple"]["Subject"]["Charset"] = "ISO-8859-1"; },
       "Content.Simple.Subject.Charset 'ISO-8859-1' is not supported: this service writes UTF-8 "
       "(give UTF-8 or leave Charset out)."},
      {[](json& j) { j["Content"]["Simple"]["Body"] = json::object(); },
       "Content.Simple.Body must have Text or Html."},
      {[](json& j) { j["Content"]["Simple"].erase("Subject"); },
       "Missing required field Content.Simple.Subject."},
      {[](json& j) {
         j["Content"]["Simple"]["Attachments"] = {{{"FileName", "a.txt"}, {"RawContent", "!!"}}};
       },
       "Content.Simple.Attachments[0].RawContent is not valid base64."},
      {[](json& j) {
         j["Content"]["Simple"]["Attachments"] = {{{"RawContent", "eA=="}}};
       },
       "Missing required field Content.Simple.Attachments[0].FileName."},
      {[](json& j) {
         j["Content"]["Simple"]["Attachments"] = {
             {{"FileName", "a\r\n.txt"}, {"RawContent", "eA=="}}};
       },
       "Content.Simple.Attachments[0].FileName must not contain control characters."},
      {[](json& j) {
         j["Content"]["Simple"]["Attachments"] = {
             {{"FileName", "a.txt"}, {"RawContent", "eA=="}, {"ContentType", "text"}}};
       },
       "Content.Simple.Attachments[0].ContentType must be a media type such as application/pdf; "
       "got 'text'."},
      {[](json& j) {
         j["Content"]["Simple"]["Attachments"] = {
             {{"FileName", "a.txt"}, {"RawContent", "eA=="}, {"ContentDisposition", "HIDDEN"}}};
       },
       "Content.Simple.Attachments[0].ContentDisposition must be one of ATTACHMENT, INLINE; got "
       "'HIDDEN'."},
      {[](json& j) {
         j["Content"]["Simple"]["Attachments"] = {{{"FileName", "a.txt"},
                                                   {"RawContent", base64_encode("caf\xc3\xa9")},
                                                   {"ContentTransferEncoding", "SEVEN_BIT"}}};
       },
       "Content.Simple.Attachments[0].RawContent cannot be sent as SEVEN_BIT: byte 3 is not "
       "ASCII."},
      {[](json& j) {
         j["EmailTags"] = {{{"Name", "a b"}, {"Value", "v"}}};
       },
       "EmailTags[0].Name may only contain ASCII letters, digits, '_' and '-'; got 'a b'."},
      {[](json& j) {
         j["ListManagementOptions"] = {{"ContactListName", "x"}};
       },
       "ListManagementOptions is not supported by this service."},
      {[](json& j) { j["Destnation"] = 1; }, "Unknown field Destnation."},
      {[](json& j) { j["FeedbackForwardingEmailAddress"] = "bounce@unverified.example"; },
       "FeedbackForwardingEmailAddress bounce@unverified.example is not a verified identity "
       "(neither the address nor its domain)."},
  };
  for (const Case& c : cases) {
    json request = minimal();
    c.change(request);
    Response r = server.post("/v2/email/outbound-emails", request);
    EXPECT_EQ(r.status, 400) << c.message;
    EXPECT_EQ(r.message(), c.message);
    EXPECT_TRUE(r.error_type() == "BadRequestException" || r.error_type() == "MessageRejected")
        << r.error_type();
  }
  EXPECT_TRUE(server.submitter.received.empty());
}

TEST(SendEmail, RefusalsBecomeSesErrors) {
  struct Case {
    Refusal refusal;
    int status;
    std::string type;
  };
  std::vector<Case> cases = {
      {Refusal::kMessageRejected, 400, "MessageRejected"},
      {Refusal::kFromDomainNotVerified, 400, "MailFromDomainNotVerifiedException"},
      {Refusal::kConfigurationSetNotFound, 404, "NotFoundException"},
      {Refusal::kConfigurationSetPaused, 400, "SendingPausedException"},
      {Refusal::kAccountPaused, 400, "SendingPausedException"},
      {Refusal::kDailyQuotaExceeded, 400, "LimitExceededException"},
      {Refusal::kThrottled, 429, "TooManyRequestsException"},
      {Refusal::kInvalidParameter, 400, "BadRequestException"},
      {Refusal::kTemporary, 500, "InternalServiceErrorException"},
  };
  TestServer server;
  for (const Case& c : cases) {
    server.submitter.judge = [&](const service::OutboundMessage&) {
      return service::SubmitResult{c.refusal, "why " + c.type, "", {}};
    };
    Response r = server.post("/v2/email/outbound-emails", minimal());
    EXPECT_EQ(r.status, c.status) << c.type;
    EXPECT_EQ(r.error_type(), c.type);
    EXPECT_EQ(r.message(), "why " + c.type);
  }
}

TEST(SendEmail, SuppressedRecipientsAreStillAccepted) {
  TestServer server;
  server.submitter.judge = [](const service::OutboundMessage& m) {
    return service::SubmitResult{Refusal::kNone, "", "", {m.recipients[0]}};
  };
  Response r = server.post("/v2/email/outbound-emails", minimal());
  EXPECT_EQ(r.status, 200) << r.body;
}

}  // namespace
}  // namespace magnetic::api::testing
