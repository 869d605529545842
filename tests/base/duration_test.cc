#include "base/duration.h"

#include <gtest/gtest.h>

#include "base/ids.h"

namespace magnetic {

TEST(Duration, UnitsAndBareSeconds) {
  EXPECT_EQ(parse_duration("30s")->count(), 30'000);
  EXPECT_EQ(parse_duration("5m")->count(), 300'000);
  EXPECT_EQ(parse_duration("4h")->count(), 14'400'000);
  EXPECT_EQ(parse_duration("2d")->count(), 172'800'000);
  EXPECT_EQ(parse_duration("1500ms")->count(), 1'500);
  EXPECT_EQ(parse_duration("7")->count(), 7'000);
  EXPECT_FALSE(parse_duration("").is_ok());
  EXPECT_FALSE(parse_duration("5 parsecs").is_ok());
  EXPECT_FALSE(parse_duration("-3s").is_ok());
  // huge_duration_is_refused_not_wrapped
  EXPECT_EQ(parse_duration("99999999999999999999h").status().message(),
            "duration '99999999999999999999h' is longer than 100 years");
  EXPECT_EQ(parse_duration("36500d")->count(), 36500LL * 86'400'000);
}

TEST(Rate, PeriodsWithAndWithoutCount) {
  auto r = parse_rate("100/s");
  ASSERT_TRUE(r.is_ok());
  EXPECT_DOUBLE_EQ(r->per_second(), 100.0);
  EXPECT_DOUBLE_EQ(parse_rate("20000/h")->per_second(), 20000.0 / 3600.0);
  EXPECT_DOUBLE_EQ(parse_rate("5/30s")->per_second(), 5.0 / 30.0);
  EXPECT_FALSE(parse_rate("100").is_ok());
  EXPECT_FALSE(parse_rate("0/s").is_ok());
  EXPECT_FALSE(parse_rate("x/s").is_ok());
  EXPECT_EQ(parse_rate("abc/s").status().message(),
            "bad rate 'abc/s': count must be a positive number");
}

TEST(Ids, SortableUniqueAndUrlSafe) {
  auto a = new_id();
  auto b = new_id();
  EXPECT_EQ(a.size(), 26u);
  EXPECT_NE(a, b);
  for (char c : a + random_token())
    EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')) << c;
  EXPECT_EQ(random_token(10).size(), 16u);
}

}  // namespace magnetic
