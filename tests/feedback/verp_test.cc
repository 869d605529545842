#include "feedback/verp.h"

#include <gtest/gtest.h>

namespace magnetic::feedback {
namespace {

constexpr std::string_view kKey = "0123456789abcdef0123456789abcdef";

TEST(Verp, AddressNamesTheRowAndCarriesATag) {
  std::string a = verp_address(12345, "bounces.test", kKey);
  ASSERT_TRUE(a.starts_with("bounce+9ix-")) << a;  // 12345 in base 36 is 9ix
  EXPECT_TRUE(a.ends_with("@bounces.test")) << a;
  EXPECT_EQ(a.size(), std::string("bounce+9ix-12345678@bounces.test").size());
  std::string token = verp_token_of(a, "bounces.test");
  EXPECT_EQ(token, verp_token(12345, kKey));
  EXPECT_EQ(verp_row(token, kKey), 12345);
}

TEST(Verp, AnyCaseIsAccepted) {
  std::string token = verp_token(777, kKey);
  std::string upper;
  for (char c : token) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(verp_row(upper, kKey), 777);
  EXPECT_EQ(verp_token_of("BOUNCE+" + upper + "@Bounces.TEST", "bounces.test"), upper);
}

TEST(Verp, ForgedOrDamagedTokensAreRefused) {
  std::string token = verp_token(42, kKey);
  EXPECT_EQ(verp_row(token, "another key of thirty-two bytes!"), std::nullopt);
  std::string other_row = verp_token(43, kKey);
  // The tag of one row on another row.
  EXPECT_EQ(
      verp_row(other_row.substr(0, other_row.find('-')) + token.substr(token.find('-')), kKey),
      std::nullopt);
  for (const std::string& bad :
       {std::string(""), std::string("-"), std::string("16-"), token + "x", token.substr(1),
        std::string("0-aaaaaaaa"), std::string("016-") + token.substr(token.find('-') + 1),
        std::string("zzzzzzzzzzzzzz-aaaaaaaa"), std::string("1_-aaaaaaaa")}) {
    EXPECT_EQ(verp_row(bad, kKey), std::nullopt) << bad;
  }
}

TEST(Verp, OnlyOurDomainAndPrefix) {
  EXPECT_EQ(verp_token_of("bounce+1-abc@elsewhere.test", "bounces.test"), "");
  EXPECT_EQ(verp_token_of("other+1-abc@bounces.test", "bounces.test"), "");
  EXPECT_EQ(verp_token_of("bounce@bounces.test", "bounces.test"), "");
  EXPECT_EQ(verp_token_of("bounce+1-abc@bounces.test.evil", "bounces.test"), "");
  EXPECT_EQ(verp_token_of("bounce+1-abc@bounces.test", "bounces.test"), "1-abc");
}

}  // namespace
}  // namespace magnetic::feedback
