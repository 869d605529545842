#include "feedback/bounce_rules.h"

#include <gtest/gtest.h>

namespace magnetic::feedback {
namespace {

TEST(BounceRules, DefaultTableParses) {
  auto rules = BounceRules::parse(default_bounce_rules_text(), "bounce_rules.tsv");
  ASSERT_TRUE(rules.is_ok()) << rules.status().message();
}

TEST(BounceRules, UserRulesComeFirstAndClassLinesReplace) {
  auto rules = BounceRules::parse(default_bounce_rules_text(), "bounce_rules.tsv");
  ASSERT_TRUE(rules.is_ok());
  FailureFacts facts{"5.7.1", 550, "rejected by acme-guard: user unknown", true, false};
  EXPECT_EQ(rules->classify(facts).reason, "userunknown");
  ASSERT_TRUE(rules
                  ->extend("text\tspamdetected\tacme-guard\n"
                           "class\tspamdetected\thard\tPermanent\tGeneral\n",
                           "user.tsv")
                  .is_ok());
  BounceClass c = rules->classify(facts);
  EXPECT_EQ(c.reason, "spamdetected");
  EXPECT_TRUE(c.hard);
  EXPECT_EQ(c.bounce_type, "Permanent");
}

TEST(BounceRules, BadLinesAreRejectedWithTheirLineNumber) {
  auto r = BounceRules::parse("class\tx\thard\tPermanent\tGeneral\ntext\tnosuchclass\tfoo\n", "u");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "u: no class nosuchclass");
  auto r2 = BounceRules::parse("# c\nbogus\tx\ty\n", "u");
  ASSERT_FALSE(r2.is_ok());
  EXPECT_EQ(r2.status().message(), "u:2: unknown kind 'bogus'");
}

TEST(BounceRules, GlobMatchesAcrossFoldedText) {
  EXPECT_TRUE(glob_find(normalize_diagnostic("Mailbox\r\n  FULL"), "mailbox full"));
  EXPECT_TRUE(glob_find("could not be delivered for 5 days", "could not be delivered for * days"));
  EXPECT_FALSE(glob_find("could not be delivered", "could not be delivered for * days"));
}

TEST(BounceRules, NothingToJudgeIsOnholdAndUnknownWordingUndefined) {
  EXPECT_EQ(bounce_rules().classify({}).reason, "onhold");
  EXPECT_EQ(bounce_rules().classify({"", 554, "xyzzy", true, false}).reason, "undefined");
}

}  // namespace
}  // namespace magnetic::feedback
