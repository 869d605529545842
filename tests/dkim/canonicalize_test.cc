#include <gtest/gtest.h>
#include "dkim/signer.h"
namespace magnetic::dkim {
TEST(Canon, Smoke) { EXPECT_EQ(canonicalize_body_relaxed("a  b \r\n\r\n"), "a b\r\n"); }
}
