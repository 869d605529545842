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

// Regression (status_rule_that_never_matches): a status pattern no code can match was taken
// silently.
TEST(BounceRules, StatusPatternMustBeAnEnhancedCode) {
  for (const char* bad :
       {"9.9.9.9", "9.1.1", "5.1", "5.1.1.", "5..1", "55.1.1", "5.1234.1", "a.b.c", "5.1.x", ""}) {
    auto r = BounceRules::parse(std::string("status\tuserunknown\t") + bad + "\n", "u");
    ASSERT_FALSE(r.is_ok()) << bad;
    EXPECT_EQ(r.status().message(),
              std::string("u:1: status pattern '") + bad +
                  "' must be CLASS.SUBJECT.DETAIL: class 2, 4, 5 or *, then 1 to 3 digits or * "
                  "each (RFC 3463)");
  }
  for (const char* good : {"5.1.1", "*.2.2", "4.*.*", "5.7.26", "2.0.0"}) {
    auto r = BounceRules::parse(std::string("class\tuserunknown\thard\tPermanent\tNoEmail\n") +
                                    "status\tuserunknown\t" + good + "\n",
                                "u");
    EXPECT_TRUE(r.is_ok()) << good << ": " << r.status().message();
  }
}

// Regression (code_rule_messages): a reply code out of range is named as such, a code that is
// not three digits is refused, and a data/mail line must turn a reason into a known class.
TEST(BounceRules, CodeAndTurnLinesAreChecked) {
  for (const char* bad : {"650", "5xx", "55", "1234", "199"}) {
    auto r = BounceRules::parse(std::string("code\tuserunknown\t") + bad + "\n", "u");
    ASSERT_FALSE(r.is_ok()) << bad;
    EXPECT_EQ(r.status().message(),
              std::string("u:1: code '") + bad + "' must be a reply code from 200 to 599");
  }
  auto r = BounceRules::parse(
      "class\tuserunknown\thard\tPermanent\tNoEmail\n"
      "data\tuserunknown\tnosuch\n",
      "u");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "u: no class nosuch");
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

BounceClass classify(std::string_view status, int code, std::string_view text, bool permanent) {
  return bounce_rules().classify({status, code, text, permanent, false});
}

// Regression (multi_line_reply_prefixes_split_wording): a multi-line reply folded into one line
// repeats "550 5.7.1" where each line began, in the middle of the words a rule looks for.
TEST(BounceRules, MultiLineReplyPrefixesDoNotSplitWording) {
  EXPECT_EQ(join_reply_lines("550-5.7.1 several addresses in 550 5.7.1 one field"),
            "550-5.7.1 several addresses in one field");
  EXPECT_EQ(join_reply_lines("421-try later 421 please"), "421-try later please");
  // Another code is another reply, and text that opens with no code is left alone.
  EXPECT_EQ(join_reply_lines("550-5.7.1 a 451 4.3.0 b"), "550-5.7.1 a 451 4.3.0 b");
  EXPECT_EQ(join_reply_lines("host said: 550 5.1.1 x"), "host said: 550 5.1.1 x");
  BounceClass c = classify("5.7.1", 550,
                           "550-5.7.1 [192.0.2.1] Messages with multiple\n"
                           "550 5.7.1 addresses in From: header are not accepted.",
                           true);
  EXPECT_EQ(c.reason, "notcompliantrfc");
  EXPECT_FALSE(c.hard);
}

TEST(BounceRules, ProviderRepliesWithAMeaningOfTheirOwn) {
  // Amazon SES sends only as identities verified in the account: a relaying refusal.
  EXPECT_EQ(classify("", 554,
                     "554 Message rejected: Email address is not verified. The following "
                     "identities failed the check in region EU-WEST-1: news@example.com",
                     true)
                .reason,
            "norelaying");
  // SES receiving's refusal of a message it cannot take, against Barracuda's spam verdict.
  EXPECT_EQ(classify("5.6.1", 500, "500 5.6.1 Message content rejected", true).reason,
            "contenterror");
  EXPECT_EQ(
      classify("5.7.1", 550, "550 5.7.1 Message content rejected, UBE, id=1-2-3", true).reason,
      "spamdetected");
  // Postfix's cleanup failing to write the queue file is the receiver's system failing.
  EXPECT_EQ(classify("4.3.0", 451, "451 4.3.0 Error: queue file write error", false).reason,
            "systemerror");
}

TEST(BounceRules, DomainsWithoutAUsableMailExchangerDoNotAcceptMail) {
  // A null MX ("0 .") as Postfix without RFC 7505 support reports it.
  BounceClass c = classify("5.4.4", 0,
                           "Name service error for name=example.com type=MX: Malformed or "
                           "unexpected name server reply",
                           true);
  EXPECT_EQ(c.reason, "notaccept");
  EXPECT_TRUE(c.hard);
  // OpenSMTPD's delay notice: the same class, soft while it is only temporary.
  c = classify("4.0.0", 0, "No MX found for domain", false);
  EXPECT_EQ(c.reason, "notaccept");
  EXPECT_FALSE(c.hard);
}

TEST(BounceRules, SendingHostNameCheckedAgainstItsAddressIsRequirePtr) {
  // The deferral's "delivery attempts will continue" does not hide the cause it names.
  BounceClass c = classify("", 450,
                           "450 service permits 2 unverifyable sending IPs - mx.example.com is "
                           "not 192.0.2.9 No action is required on your part. Delivery attempts "
                           "will continue to be made for 5 days.",
                           false);
  EXPECT_EQ(c.reason, "requireptr");
  EXPECT_FALSE(c.hard);
}

TEST(BounceRules, AccessDeniedIsJudgedByWhatItRefused) {
  // An access table's bare refusal, quoting the envelope sender: the sender is refused.
  EXPECT_EQ(classify("5.7.1", 550, "550 5.7.1 <news@example.com>... Access denied", true).reason,
            "rejected");
  EXPECT_EQ(classify("5.7.1", 554,
                     "554 5.7.1 <news@example.com>: Sender address rejected: Access denied", true)
                .reason,
            "rejected");
  // At the greeting, or of the HELO name, it is the connecting host.
  EXPECT_EQ(classify("", 550,
                     "SMTP error from remote mail server after initial connection: 550 Access "
                     "denied",
                     true)
                .reason,
            "blocked");
  EXPECT_EQ(classify("5.7.1", 554,
                     "554 5.7.1 <mx.example.net>: Helo command rejected: Access denied", true)
                .reason,
            "blocked");
  EXPECT_EQ(classify("5.7.1", 554,
                     "554 5.7.1 <client.example.net[192.0.2.1]>: Client host "
                     "rejected: Access denied",
                     true)
                .reason,
            "blocked");
  // The recipient's own refusal keeps its class.
  EXPECT_EQ(
      classify("5.4.1", 550, "550 5.4.1 Recipient address rejected: Access denied", true).reason,
      "userunknown");
}

TEST(BounceRules, AttemptsCountedUntilTheSenderGaveUpAreExpired) {
  EXPECT_EQ(classify("", 0, "Delivery failed 12 attempts: someone@example.com", true).reason,
            "expired");
  // A cause named before "no further delivery attempts" is that cause.
  EXPECT_EQ(classify("", 550,
                     "Delivery failed for the following reason: 550 <someone@example.com> No "
                     "such user here. No further delivery attempts will be made.",
                     true)
                .reason,
            "userunknown");
}

TEST(BounceRules, MaskAddressesReplacesEachAddress) {
  EXPECT_EQ(mask_addresses("<blocked.news@example.com>: user unknown"), "<address>: user unknown");
  EXPECT_EQ(mask_addresses("to a@b.test, c.d@e.test and @ alone; x@ and @y"),
            "to address, address and @ alone; x@ and @y");
  EXPECT_EQ(mask_addresses("rcpt=\"q@r.test\" (s@t.test)"), "rcpt=\"address\" (address)");
  EXPECT_EQ(mask_addresses("no address here"), "no address here");
  EXPECT_EQ(mask_addresses(""), "");
}

}  // namespace
}  // namespace magnetic::feedback
