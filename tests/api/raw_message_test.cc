// The rules for a message handed over whole: SES Raw content and SMTP submission alike.
#include <gtest/gtest.h>

#include "api/content.h"

namespace magnetic::api {
namespace {

Result<RawMessage> prepare(const std::string& m) {
  return prepare_raw_message(m, "message", "ID1", std::chrono::system_clock::time_point{});
}

// Regression (smtp_bare_cr_smuggling): a bare CR before a dot line was forwarded as is, so a
// receiver that ends lines at CR saw the end of the data and a second, smuggled transaction.
TEST(RawMessageTest, BareCarriageReturnsBecomeLineEnds) {
  auto r = prepare(
      "From: a@news.example\r\nMessage-ID: <x@y>\r\nDate: d\r\n\r\nbody\r.\rMAIL "
      "FROM:<e@evil.example>"
      "\r\n");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_NE(r->data.find("body\r\n.\r\nMAIL FROM:<e@evil.example>\r\n"), std::string::npos);
  for (size_t i = 0; i < r->data.size(); ++i) {
    if (r->data[i] == '\r') {
      ASSERT_LT(i + 1, r->data.size());
      EXPECT_EQ(r->data[i + 1], '\n') << "bare CR at " << i;
    }
  }
}

// Regression (raw_duplicate_from_spoofing): a second From, a From list or a group let one
// verified address front for another.
TEST(RawMessageTest, FieldsAllowedOnceAreRefusedTwice) {
  struct Case {
    std::string message, error;
  };
  for (const Case& c : std::vector<Case>{
           {"From: a@news.example\r\nFrom: x@evil.example\r\n\r\nx\r\n",
            "message: the message has 2 From fields; at most one is allowed."},
           {"From: a@news.example\r\nSubject: a\r\nsubject: b\r\n\r\nx\r\n",
            "message: the message has 2 Subject fields; at most one is allowed."},
           {"From: a@news.example\r\nMessage-ID: <a@b>\r\nMessage-Id: <c@d>\r\n\r\nx\r\n",
            "message: the message has 2 Message-ID fields; at most one is allowed."},
           {"From: a@news.example\r\nContent-Type: text/plain\r\nContent-Type: "
            "text/html\r\n\r\nx\r\n",
            "message: the message has 2 Content-Type fields; at most one is allowed."},
           {"From: a@news.example, x@evil.example\r\n\r\nx\r\n",
            "message: the From field must name exactly one mailbox (it names 2)."},
           {"From: grp: a@news.example, x@evil.example;\r\n\r\nx\r\n",
            "message: the From field must name exactly one mailbox (it names 2)."},
           {"From: a@news.example\r\nSender: a@news.example, b@news.example\r\n\r\nx\r\n",
            "message: the Sender field must name exactly one mailbox."},
       }) {
    auto r = prepare(c.message);
    ASSERT_FALSE(r.is_ok()) << c.message;
    EXPECT_EQ(r.status().message(), c.error);
  }
}

TEST(RawMessageTest, TheSenderFieldIsReported) {
  auto r = prepare("From: a@news.example\r\nSender: Ops <ops@evil.example>\r\n\r\nx\r\n");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ASSERT_TRUE(r->sender.has_value());
  EXPECT_EQ(r->sender->address(), "ops@evil.example");
}

}  // namespace
}  // namespace magnetic::api
