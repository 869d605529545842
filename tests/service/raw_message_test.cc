#include "service/raw_message.h"

#include <gtest/gtest.h>

namespace magnetic::service {
namespace {

TEST(PrepareSubmittedTest, ControlFieldsAndBccAreRemovedAndReported) {
  std::string in =
      "From: \"News\" <news@example.com>\r\n"
      "To: a@x.example, \"B, b\" <b@y.example>\r\n"
      "Cc: c@x.example (Cee)\r\n"
      "Bcc: hidden@z.example\r\n"
      "X-SES-CONFIGURATION-SET: marketing\r\n"
      "X-SES-MESSAGE-TAGS: campaign=spring, tier=gold\r\n"
      "Subject: Hello\r\n"
      "\tthere\r\n"
      "Message-ID: <given@example.com>\r\n"
      "Date: Thu, 03 Dec 2026 22:24:09 +0000\r\n"
      "\r\n"
      "Body line\r\n"
      ".dot\r\n";
  auto out = prepare_submitted(in, "ID1", "example.com");
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(out->from, "news@example.com");
  EXPECT_EQ(out->configuration_set, "marketing");
  ASSERT_EQ(out->tags.size(), 2u);
  EXPECT_EQ(out->tags[1], (std::pair<std::string, std::string>{"tier", "gold"}));
  EXPECT_EQ(out->to, (std::vector<std::string>{"a@x.example", "b@y.example"}));
  EXPECT_EQ(out->cc, (std::vector<std::string>{"c@x.example"}));
  EXPECT_EQ(out->bcc, (std::vector<std::string>{"hidden@z.example"}));
  EXPECT_EQ(out->data,
            "From: \"News\" <news@example.com>\r\n"
            "To: a@x.example, \"B, b\" <b@y.example>\r\n"
            "Cc: c@x.example (Cee)\r\n"
            "Subject: Hello\r\n"
            "\tthere\r\n"
            "Message-ID: <given@example.com>\r\n"
            "Date: Thu, 03 Dec 2026 22:24:09 +0000\r\n"
            "\r\n"
            "Body line\r\n"
            ".dot\r\n");
}

TEST(PrepareSubmittedTest, MissingMessageIdAndDateAreAdded) {
  auto out = prepare_submitted("From: a@example.com\nSubject: x\n\nbody\n", "ID1", "example.com");
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(out->data.substr(0, 6), "Date: ");
  auto id_at = out->data.find("\r\nMessage-ID: <ID1@example.com>\r\nFrom: a@example.com\r\n"
                              "Subject: x\r\n\r\nbody\r\n");
  EXPECT_NE(id_at, std::string::npos) << out->data;
}

TEST(PrepareSubmittedTest, TwoFromFieldsAreRefused) {
  auto out = prepare_submitted("From: a@example.com\r\nFrom: b@example.com\r\n\r\nx\r\n", "I", "d");
  ASSERT_FALSE(out.is_ok());
  EXPECT_EQ(out.status().message(), "the message has 2 From fields");
}

TEST(PrepareSubmittedTest, AFromListIsRefused) {
  auto out = prepare_submitted("From: a@example.com, b@example.com\r\n\r\nx\r\n", "I", "d");
  ASSERT_FALSE(out.is_ok());
  EXPECT_EQ(out.status().message(), "the From field must hold exactly one address (it holds 2)");
}

TEST(PrepareSubmittedTest, GarbageIsAnErrorNotACrash) {
  for (std::string in : {std::string(""), std::string("\r\n\r\n"), std::string("no colon here\r\n"),
                         std::string(" folded first: x\r\n"), std::string("\0\0\0", 3),
                         std::string("Bad Name: x\r\n\r\n")}) {
    auto out = prepare_submitted(in, "I", "d");
    EXPECT_FALSE(out.is_ok()) << in;
  }
}

TEST(PrepareSubmittedTest, BareLineFeedsInTheBodyBecomeCrlf) {
  auto out = prepare_submitted("From: a@example.com\r\nMessage-ID: <x@y>\r\nDate: d\r\n\r\na\nb\r\nc",
                               "I", "d");
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(out->data, "From: a@example.com\r\nMessage-ID: <x@y>\r\nDate: d\r\n\r\na\r\nb\r\nc\r\n");
}

}  // namespace
}  // namespace magnetic::service
