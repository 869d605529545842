#include "smtp/reply.h"

#include <gtest/gtest.h>

namespace magnetic::smtp {
namespace {

Reply parsed(std::string_view text) {
  Reply r;
  EXPECT_TRUE(parse_reply(text, r)) << text;
  return r;
}

bool parses(std::string_view text) {
  Reply r;
  return parse_reply(text, r);
}

TEST(ReplyTest, single_line) {
  Reply r = parsed("250 OK\r\n");
  EXPECT_EQ(r.code, 250);
  EXPECT_EQ(r.enhanced, "");
  EXPECT_EQ(r.text, "OK");
  EXPECT_TRUE(r.positive());
}

TEST(ReplyTest, multi_line_joins_text_with_newlines) {
  Reply r = parsed("250-sink.test greets x\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
  EXPECT_EQ(r.code, 250);
  EXPECT_EQ(r.enhanced, "");
  EXPECT_EQ(r.text, "sink.test greets x\nPIPELINING\n8BITMIME");
}

TEST(ReplyTest, enhanced_code_taken_from_first_line) {
  Reply r = parsed("550 5.1.1 <nobody@example.com>: user unknown\r\n");
  EXPECT_EQ(r.code, 550);
  EXPECT_EQ(r.enhanced, "5.1.1");
  EXPECT_EQ(r.text, "<nobody@example.com>: user unknown");
  EXPECT_TRUE(r.permanent());
}

TEST(ReplyTest, enhanced_code_repeated_on_every_line_is_stripped) {
  Reply r = parsed("550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 third\r\n");
  EXPECT_EQ(r.enhanced, "5.7.1");
  EXPECT_EQ(r.text, "first\nsecond\nthird");
}

TEST(ReplyTest, enhanced_code_of_wrong_class_is_kept_in_text) {
  Reply r = parsed("451 5.1.1 try again later\r\n");
  EXPECT_EQ(r.code, 451);
  EXPECT_EQ(r.enhanced, "");
  EXPECT_EQ(r.text, "5.1.1 try again later");
  EXPECT_TRUE(r.transient());

  r = parsed("250 5.0.0 Ok\r\n");
  EXPECT_EQ(r.enhanced, "");
  EXPECT_EQ(r.text, "5.0.0 Ok");
}

TEST(ReplyTest, success_enhanced_code) {
  Reply r = parsed("250 2.0.0 Ok: queued as 1234\r\n");
  EXPECT_EQ(r.enhanced, "2.0.0");
  EXPECT_EQ(r.text, "Ok: queued as 1234");

  r = parsed("250 2.0.0\r\n");
  EXPECT_EQ(r.enhanced, "2.0.0");
  EXPECT_EQ(r.text, "");
}

TEST(ReplyTest, malformed_enhanced_codes_are_kept_in_text) {
  EXPECT_EQ(parsed("550 5.01.1 x\r\n").text, "5.01.1 x");
  EXPECT_EQ(parsed("550 5.1000.1 x\r\n").text, "5.1000.1 x");
  EXPECT_EQ(parsed("550 5.1 x\r\n").text, "5.1 x");
  EXPECT_EQ(parsed("550 5.1.1x\r\n").text, "5.1.1x");
  EXPECT_EQ(parsed("550 5.1.1x\r\n").enhanced, "");
}

TEST(ReplyTest, bare_code_and_missing_line_ending) {
  Reply r = parsed("250\r\n");
  EXPECT_EQ(r.code, 250);
  EXPECT_EQ(r.text, "");
  r = parsed("221 Bye");
  EXPECT_EQ(r.code, 221);
  EXPECT_EQ(r.text, "Bye");
  r = parsed("250-a\n250 b\n");
  EXPECT_EQ(r.text, "a\nb");
  r = parsed("250 \r\n");  // smtp-sink ends its EHLO reply like this
  EXPECT_EQ(r.text, "");
}

TEST(ReplyTest, junk_is_rejected) {
  EXPECT_FALSE(parses(""));
  EXPECT_FALSE(parses("hello\r\n"));
  EXPECT_FALSE(parses("25 short\r\n"));
  EXPECT_FALSE(parses("2500 x\r\n"));
  EXPECT_FALSE(parses("650 no such class\r\n"));
  EXPECT_FALSE(parses("260 bad second digit\r\n"));
  EXPECT_FALSE(parses("250-a\r\n251 b\r\n"));  // codes differ
  EXPECT_FALSE(parses("250-a\r\n"));           // no last line
  EXPECT_FALSE(parses("250 a\r\n250 b\r\n"));  // a line after the last
  EXPECT_FALSE(parses("250-a\r\nxyz b\r\n"));
}

TEST(ReplyTest, parse_failure_leaves_no_code_behind) {
  Reply r;
  r.code = 250;
  r.enhanced = "2.0.0";
  EXPECT_FALSE(parse_reply("junk", r));
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.enhanced, "");
}

TEST(ReplyTest, valid_enhanced_code) {
  EXPECT_TRUE(valid_enhanced_code("5.1.1", 550));
  EXPECT_TRUE(valid_enhanced_code("2.0.0", 250));
  EXPECT_TRUE(valid_enhanced_code("4.7.0", 421));
  EXPECT_TRUE(valid_enhanced_code("5.999.999", 554));
  EXPECT_TRUE(valid_enhanced_code("4.10.0", 450));
  EXPECT_FALSE(valid_enhanced_code("5.1.1", 450));  // class disagrees with the reply
  EXPECT_FALSE(valid_enhanced_code("2.0.0", 550));
  EXPECT_FALSE(valid_enhanced_code("3.0.0", 354));  // no class 3
  EXPECT_FALSE(valid_enhanced_code("5.1", 550));
  EXPECT_FALSE(valid_enhanced_code("5.1.1.1", 550));
  EXPECT_FALSE(valid_enhanced_code("5.1000.1", 550));
  EXPECT_FALSE(valid_enhanced_code("5.1.1000", 550));
  EXPECT_FALSE(valid_enhanced_code("5.01.1", 550));
  EXPECT_FALSE(valid_enhanced_code("5.1.01", 550));
  EXPECT_FALSE(valid_enhanced_code("05.1.1", 550));
  EXPECT_FALSE(valid_enhanced_code("5..1", 550));
  EXPECT_FALSE(valid_enhanced_code("5.a.1", 550));
  EXPECT_FALSE(valid_enhanced_code("", 550));
  EXPECT_FALSE(valid_enhanced_code("5.1.1 ", 550));
  EXPECT_FALSE(valid_enhanced_code("5.1.1", 0));
}

TEST(ReplyTest, to_string) {
  Reply r;
  r.code = 550;
  r.enhanced = "5.1.1";
  r.text = "user unknown\nsecond line";
  EXPECT_EQ(r.to_string(), "550 5.1.1 user unknown second line");

  Reply ok;
  ok.code = 250;
  ok.text = "OK";
  EXPECT_EQ(ok.to_string(), "250 OK");

  Reply none;
  none.stage = "dot";
  none.text = "timeout";
  EXPECT_EQ(none.to_string(), "no reply at dot: timeout");
  EXPECT_TRUE(none.no_reply());
}

}  // namespace
}  // namespace magnetic::smtp
