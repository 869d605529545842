// classify_reply on replies as the big mailbox providers document them in their postmaster
// pages (Gmail's SMTP error reference, Yahoo's error codes, Microsoft's NDR reference). Each
// case asserts the exact class and action delivery takes.
#include <gtest/gtest.h>

#include "feedback/reply_policy.h"
#include "smtp/reply.h"

namespace magnetic::feedback {
namespace {

struct Case {
  const char* reply;  // the reply as it arrives, one or more lines
  const char* reason;
  Action action;
  bool hard;
};

Verdict classify(const char* text) {
  smtp::Reply r;
  EXPECT_TRUE(smtp::parse_reply(text, r)) << text;
  r.stage = "rcpt";
  return classify_reply(r);
}

TEST(ProviderReplies, GmailYahooMicrosoftRepliesGetTheirClassAndAction) {
  const Case cases[] = {
      // Gmail
      {"550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n"
       "550 5.1.1 double-checking the recipient's email address for typos or\r\n",
       "userunknown", Action::kBounce, true},
      {"421-4.7.28 Our system has detected an unusual rate of unsolicited mail originating\r\n"
       "421 4.7.28 from your IP address. To protect our users from spam, mail sent from your "
       "IP\r\n",
       "speeding", Action::kRetryAndThrottle, false},
      {"452-4.2.2 The recipient's inbox is out of storage space. Please direct the recipient\r\n"
       "452 4.2.2 to\r\n",
       "mailboxfull", Action::kRetry, false},
      {"550-5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail\r\n"
       "550 5.7.26 requires all senders to authenticate with either SPF or DKIM.\r\n",
       "authfailure", Action::kBounce, false},
      {"550-5.2.1 The email account that you tried to reach is disabled.\r\n"
       "550 5.2.1 gsmtp\r\n",
       "suspend", Action::kBounce, false},
      {"552-5.2.3 Your message exceeded Google's message size limits.\r\n"
       "552 5.2.3 gsmtp\r\n",
       "mesgtoobig", Action::kBounce, false},
      {"550-5.7.1 Our system has detected that this message is likely unsolicited mail.\r\n"
       "550 5.7.1 To reduce the amount of spam sent to Gmail, this message has been blocked.\r\n",
       "spamdetected", Action::kBounce, false},
      // Yahoo
      {"421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected "
       "volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes\r\n",
       "speeding", Action::kRetryAndThrottle, false},
      {"554 5.7.9 Message not accepted for policy reasons.  See "
       "https://postmaster.yahooinc.com/error-codes\r\n",
       "policyviolation", Action::kBounce, false},
      {"553 5.7.2 [TSS09] All messages from 192.0.2.1 will be permanently deferred; Retrying "
       "will NOT succeed. See https://postmaster.yahooinc.com/error-codes\r\n",
       "blocked", Action::kSuspendSource, false},
      {"552 1 Requested mail action aborted, mailbox not found\r\n", "userunknown", Action::kBounce,
       true},
      // Microsoft
      {"550 5.5.0 Requested action not taken: mailbox unavailable\r\n", "userunknown",
       Action::kBounce, true},
      {"550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup\r\n",
       "userunknown", Action::kBounce, true},
      {"451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP "
       "reputation.\r\n",
       "badreputation", Action::kRetryAndThrottle, false},
      {"550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your "
       "Internet service provider since part of their network is on our block list (S3150).\r\n",
       "blocked", Action::kSuspendSource, false},
  };
  for (const auto& c : cases) {
    Verdict v = classify(c.reply);
    EXPECT_EQ(v.reason, c.reason) << c.reply;
    EXPECT_EQ(v.action, c.action) << c.reply;
    EXPECT_EQ(v.hard, c.hard) << c.reply;
  }
}

// "User unknown" answered to the final dot: the address was accepted at RCPT, so the refusal
// is the recipient's filter, not a missing mailbox, and the address is not suppressed.
TEST(ProviderReplies, user_unknown_after_data_is_filtered_not_hard) {
  smtp::Reply r;
  ASSERT_TRUE(smtp::parse_reply("550 5.1.1 <a@example.com>: user unknown\r\n", r));
  r.stage = "dot";
  Verdict v = classify_reply(r);
  EXPECT_EQ(v.reason, "filtered");
  EXPECT_FALSE(v.hard);
  r.stage = "rcpt";
  EXPECT_EQ(classify_reply(r).reason, "userunknown");
  EXPECT_TRUE(classify_reply(r).hard);
}

}  // namespace
}  // namespace magnetic::feedback
