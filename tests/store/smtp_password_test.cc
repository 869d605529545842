#include <gtest/gtest.h>

#include "store/store.h"

namespace magnetic::store {
namespace {

// Expected values were computed once, apart from this code, with Python's hmac and hashlib:
// the key starts as "AWS4" + secret and is replaced by HMAC-SHA256(key, step) for each step
// "11111111", region, "ses", "aws4_request", "SendRawEmail"; the password is base64 of the
// byte 0x04 followed by the last HMAC.
constexpr const char* kSecret = "Zq8+example/SECRET/value0123456789abcdEF";

TEST(SmtpPassword, UsEast1) {
  EXPECT_EQ(smtp_password(kSecret, "us-east-1"), "BIpU2DGzGzCw8tmb1pKj2pbvM585soV7RMc5m7QX6OeB");
}

TEST(SmtpPassword, EuWest1) {
  EXPECT_EQ(smtp_password(kSecret, "eu-west-1"), "BClaWXOGK2lM/Pu72GEMifVjcCUYTa4ictlL7XABsYNq");
}

TEST(SmtpPassword, IsFortyFourCharactersStartingWithTheVersionByte) {
  std::string p = smtp_password("another secret", "ap-south-1");
  EXPECT_EQ(p.size(), 44u);        // 33 bytes in base64
  EXPECT_EQ(p.substr(0, 1), "B");  // 0x04 in the first six bits: 000001
}

}  // namespace
}  // namespace magnetic::store
