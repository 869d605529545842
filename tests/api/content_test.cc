// The pieces under the routes: raw message preparation, merging, the JSON reader's checks and
// time parsing.
#include "api/content.h"

#include <gtest/gtest.h>

#include "api/handler.h"
#include "api/json_reader.h"
#include "fake_store.h"

namespace magnetic::api {
namespace {

using std::chrono::sys_days;
using namespace std::chrono;

const system_clock::time_point kWhen = sys_days(year(2026) / 3 / 14) + 15h + 9min + 26s;

TEST(PrepareRawMessage, FoldedFieldsAndLineEnds) {
  std::string in =
      "From: \"Last, First\" <f@example.com>\n"
      "To: a@example.net,\n"
      "  B <b@example.net>\r"
      "Bcc: x@example.net,\r\n"
      " y@example.net\r\n"
      "Subject: s\r\n"
      "\r\n"
      "line\rnext\n";
  auto r = prepare_raw_message(in, "Data", "ID", kWhen);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->data,
            "Date: Sat, 14 Mar 2026 15:09:26 +0000\r\n"
            "Message-ID: <ID@example.com>\r\n"
            "From: \"Last, First\" <f@example.com>\r\n"
            "To: a@example.net,\r\n"
            "  B <b@example.net>\r\n"
            "Subject: s\r\n"
            "\r\n"
            "line\r\nnext\r\n");
  EXPECT_EQ(r->from->display_name, "Last, First");
  ASSERT_EQ(r->header_recipients.to.size(), 2u);
  EXPECT_EQ(r->header_recipients.to[1].address(), "b@example.net");
  ASSERT_EQ(r->header_recipients.bcc.size(), 2u);
  EXPECT_EQ(r->header_recipients.bcc[1].address(), "y@example.net");
}

TEST(PrepareRawMessage, SesFieldsAreReadAndRemoved) {
  auto r = prepare_raw_message(
      "x-ses-configuration-set:  cs-1 \r\nX-SES-MESSAGE-TAGS: a=1,b=two\r\nFrom: f@example.com\r\n"
      "Message-ID: <m@example.com>\r\nDate: x\r\n\r\n",
      "Data", "ID", kWhen);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->configuration_set, "cs-1");
  EXPECT_EQ(r->tags, (TagList{{"a", "1"}, {"b", "two"}}));
  EXPECT_EQ(r->data, "From: f@example.com\r\nMessage-ID: <m@example.com>\r\nDate: x\r\n\r\n");
}

TEST(PrepareRawMessage, Refusals) {
  auto why = [](const std::string& in) {
    auto r = prepare_raw_message(in, "Data", "ID", kWhen);
    return r.is_ok() ? std::string("ok") : r.status().message();
  };
  EXPECT_EQ(why(" folded first\r\nFrom: f@example.com\r\n\r\n"),
            "Data: the message starts with a continuation line.");
  EXPECT_EQ(why("\r\nbody only"),
            "Data: the message must have header fields, then an empty line, then the body.");
  EXPECT_EQ(why("From: f@example.com\r\n: no name\r\n\r\n"),
            "Data: header line 2 is not a 'Name: value' field.");
  EXPECT_EQ(why("From: f@example.com\r\nX-\xc3\xa9: v\r\n\r\n"),
            "Data: header line 2 is not a 'Name: value' field.");
  EXPECT_EQ(why("From: f@example.com\r\nX-SES-MESSAGE-TAGS: a b=c\r\n\r\n"),
            "Data: X-SES-MESSAGE-TAGS must be name=value pairs of ASCII letters, digits, '_' and "
            "'-'; got 'a b=c'.");
  EXPECT_EQ(why("From: f@example.com\r\nX: " + std::string(1000, 'v') + "\r\n\r\n"),
            "Data: header line 2 is longer than 998 characters.");
  EXPECT_EQ(why("From: <f@example.com\r\n\r\n"),
            "Data: the From field: unterminated angle bracket");
  EXPECT_EQ(why("Subject: x\r\n\r\n"), "Data: the message has no From field.");
}

TEST(Merge, HeadersByNameWithoutCaseTagsByName) {
  EXPECT_EQ(merge_headers({{"X-A", "1"}, {"X-B", "2"}}, {{"x-a", "3"}, {"X-C", "4"}}),
            (HeaderList{{"X-B", "2"}, {"x-a", "3"}, {"X-C", "4"}}));
  EXPECT_EQ(merge_tags({{"a", "1"}, {"A", "2"}}, {{"a", "3"}}), (TagList{{"A", "2"}, {"a", "3"}}));
}

TEST(JsonReader, Base64IsStrict) {
  EXPECT_EQ(base64_decode("aGVsbG8="), "hello");
  EXPECT_EQ(base64_decode("aGVsbG8"), "hello");
  EXPECT_EQ(base64_decode(""), "");
  EXPECT_FALSE(base64_decode("aGVs bG8=").has_value());
  EXPECT_FALSE(base64_decode("aGVsbG8-").has_value());
  EXPECT_FALSE(base64_decode("a").has_value());
  EXPECT_FALSE(base64_decode(std::string("aGVs\0bG8=", 9)).has_value());
  EXPECT_EQ(base64_encode("hello"), "aGVsbG8=");
  EXPECT_EQ(base64_encode(""), "");
}

TEST(JsonReader, Utf8) {
  EXPECT_TRUE(valid_utf8("caf\xc3\xa9 \xf0\x9f\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xc3"));              // cut short
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // beyond U+10FFFF
}

TEST(JsonReader, FirstErrorWinsAndUnknownFieldsAreNamed) {
  nlohmann::json body = {{"A", 1}, {"B", "x"}, {"C", {{"D", true}}}, {"Z", 0}};
  JsonObject o(&body, "", std::make_shared<ReadState>());
  EXPECT_FALSE(o.string("A").has_value());
  EXPECT_FALSE(o.string("B").has_value());  // after an error nothing more is read
  o.finish();
  EXPECT_EQ(o.state()->error->message, "A must be a string, not a number.");

  JsonObject p(&body, "", std::make_shared<ReadState>());
  (void)p.integer("A", Need::kRequired, 0, 5);
  (void)p.string("B");
  if (auto c = p.object("C")) {
    (void)c->boolean("D");
    c->finish();
  }
  p.finish();
  EXPECT_EQ(p.state()->error->message, "Unknown field Z.");

  nlohmann::json big = {{"N", 18446744073709551615ull}, {"T", -1}};
  JsonObject q(&big, "X", std::make_shared<ReadState>());
  (void)q.integer("N", Need::kRequired, 0, 10);
  EXPECT_EQ(q.state()->error->message, "X.N must be at most 10.");
  JsonObject t(&big, "", std::make_shared<ReadState>());
  (void)t.timestamp_ms("T");
  EXPECT_EQ(t.state()->error->message, "T is not a timestamp between 1970 and 9999.");
}

TEST(Time, Iso8601) {
  int64_t base = duration_cast<milliseconds>(kWhen.time_since_epoch()).count();
  EXPECT_EQ(parse_iso8601_ms("2026-03-14T15:09:26Z"), base);
  EXPECT_EQ(parse_iso8601_ms("2026-03-14T15:09:26.5Z"), base + 500);
  EXPECT_EQ(parse_iso8601_ms("2026-03-14T15:09:26.123456Z"), base + 123);
  EXPECT_EQ(parse_iso8601_ms("2026-03-14T17:09:26+02:00"), base);
  EXPECT_EQ(parse_iso8601_ms("2026-03-14 15:09:26z"), base);
  EXPECT_FALSE(parse_iso8601_ms("2026-03-14T15:09:26").has_value());
  EXPECT_FALSE(parse_iso8601_ms("2026-02-30T15:09:26Z").has_value());
  EXPECT_FALSE(parse_iso8601_ms("2026-03-14T25:09:26Z").has_value());
  EXPECT_FALSE(parse_iso8601_ms("2026-03-14T15:09:26.Z").has_value());
  EXPECT_EQ(rfc3339(kWhen), "2026-03-14T15:09:26Z");
  EXPECT_EQ(epoch_seconds(std::string("2026-03-14T15:09:26Z")), static_cast<double>(base) / 1000);
  EXPECT_EQ(epoch_seconds(std::string("bad")), 0);
}

TEST(ApiServer, RefusesAnInvalidSelectorPrefix) {
  boost::asio::io_context io;
  ApiOptions options;
  options.dkim_selector_prefix = "bad_prefix";
  struct NoSubmit : service::Submitter {
    std::vector<service::SubmitResult> submit(std::vector<service::OutboundMessage>) override {
      return {};
    }
  } submitter;
  testing::FakeStore store;
  auto r = ApiServer::start(io, options, store, submitter);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(),
            "dkim_selector_prefix must be at most 55 letters, digits and hyphens, not starting "
            "with a hyphen; got 'bad_prefix'");
}

}  // namespace
}  // namespace magnetic::api
