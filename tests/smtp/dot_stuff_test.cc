#include <gtest/gtest.h>

#include "smtp/client.h"

namespace magnetic::smtp {
namespace {

std::string stuffed(std::string_view message) {
  std::string out;
  dot_stuff(message, out);
  return out;
}

TEST(DotStuffTest, dot_stuffing_at_line_start) {
  EXPECT_EQ(stuffed("a\r\n.b\r\n"), "a\r\n..b\r\n.\r\n");
}

TEST(DotStuffTest, dot_stuffing_at_message_start) { EXPECT_EQ(stuffed(".x\r\n"), "..x\r\n.\r\n"); }

TEST(DotStuffTest, line_that_is_only_a_dot) {
  EXPECT_EQ(stuffed("a\r\n.\r\nb\r\n"), "a\r\n..\r\nb\r\n.\r\n");
}

TEST(DotStuffTest, line_of_two_dots) { EXPECT_EQ(stuffed("..\r\n"), "...\r\n.\r\n"); }

TEST(DotStuffTest, dot_inside_a_line_is_untouched) {
  EXPECT_EQ(stuffed("a.b\r\n x.\r\n"), "a.b\r\n x.\r\n.\r\n");
}

TEST(DotStuffTest, message_without_final_crlf) { EXPECT_EQ(stuffed("a\r\nb"), "a\r\nb\r\n.\r\n"); }

TEST(DotStuffTest, message_without_final_crlf_ending_in_a_dot_line) {
  EXPECT_EQ(stuffed("a\r\n."), "a\r\n..\r\n.\r\n");
}

TEST(DotStuffTest, message_ending_in_bare_cr) { EXPECT_EQ(stuffed("a\r"), "a\r\r\n.\r\n"); }

TEST(DotStuffTest, empty_message) {
  EXPECT_EQ(stuffed(""), "\r\n.\r\n");
  EXPECT_EQ(stuffed("\r\n"), "\r\n.\r\n");
}

TEST(DotStuffTest, appends_to_what_is_there) {
  std::string out = "DATA\r\n";
  dot_stuff("x\r\n", out);
  EXPECT_EQ(out, "DATA\r\nx\r\n.\r\n");
}

}  // namespace
}  // namespace magnetic::smtp
