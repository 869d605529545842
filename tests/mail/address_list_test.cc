#include "mail/address_list.h"

#include <gtest/gtest.h>

namespace magnetic::mail {
namespace {

std::vector<std::string> addresses(std::string_view value) {
  auto r = parse_address_list(value);
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  std::vector<std::string> out;
  if (!r) return out;
  for (const Mailbox& m : *r) out.push_back(m.display_name + "|" + m.address());
  return out;
}

TEST(ParseAddressList, MailboxesNamesAndComments) {
  EXPECT_EQ(addresses("a@example.com"), std::vector<std::string>{"|a@example.com"});
  EXPECT_EQ(addresses("a@example.com, Bob <bob@example.com>,\"Last, First\" <f@example.com>"),
            (std::vector<std::string>{"|a@example.com", "Bob|bob@example.com",
                                      "Last, First|f@example.com"}));
  EXPECT_EQ(addresses("c@example.com (Carol, (nested) comment)"),
            std::vector<std::string>{"|c@example.com"});
  EXPECT_EQ(addresses("=?UTF-8?Q?J=C3=B6rg?= <j@example.de>"),
            std::vector<std::string>{"J\xc3\xb6rg|j@example.de"});
}

TEST(ParseAddressList, FoldedValue) {
  EXPECT_EQ(addresses("a@example.com,\r\n b@example.com"),
            (std::vector<std::string>{"|a@example.com", "|b@example.com"}));
}

TEST(ParseAddressList, Groups) {
  EXPECT_EQ(addresses("Team: a@example.com, b@example.com;, c@example.com"),
            (std::vector<std::string>{"|a@example.com", "|b@example.com", "|c@example.com"}));
  EXPECT_TRUE(addresses("undisclosed-recipients:;").empty());
}

TEST(ParseAddressList, Errors) {
  auto r = parse_address_list("a@example.com, not an address");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message().substr(0, 30), "mailbox 2 ('not an address'): ");
  EXPECT_EQ(parse_address_list("\"open").status().message(), "unterminated quoted string");
  EXPECT_EQ(parse_address_list("a@example.com (x").status().message(), "unterminated comment");
  EXPECT_EQ(parse_address_list("<a@example.com").status().message(), "unterminated angle bracket");
}

}  // namespace
}  // namespace magnetic::mail
