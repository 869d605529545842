#include "feedback/reply_policy.h"

#include <gtest/gtest.h>

namespace magnetic::feedback {
namespace {

smtp::Reply reply(int code, std::string enhanced, std::string text) {
  return smtp::Reply{code, std::move(enhanced), std::move(text), "rcpt"};
}

struct Case {
  int code;
  const char* enhanced;
  const char* text;
  Action action;
  const char* reason;
  bool hard;
};

TEST(ReplyPolicy, ProviderRepliesGetTheirClassAndAction) {
  const Case cases[] = {
      {250, "2.0.0", "OK queued", Action::kDelivered, "delivered", false},
      {550, "5.1.1", "The email account that you tried to reach does not exist.", Action::kBounce,
       "userunknown", true},
      {552, "5.2.2", "The email account that you tried to reach is over quota.", Action::kBounce,
       "mailboxfull", false},
      {452, "4.2.2", "The email account that you tried to reach is over quota.", Action::kRetry,
       "mailboxfull", false},
      {421, "4.7.0", "Try again later, closing connection.", Action::kRetryAndThrottle, "speeding",
       false},
      {451, "4.7.1", "Temporarily deferred due to unexpected volume or user complaints",
       Action::kRetryAndThrottle, "speeding", false},
      {550, "5.7.1", "Our system has detected that this message is likely unsolicited mail (spam).",
       Action::kBounce, "spamdetected", false},
      {550, "5.7.1", "Service unavailable; client host blocked using Spamhaus",
       Action::kSuspendSource, "blocked", false},
      // Microsoft's 5.7.606 is about the sending IP (a banned address), not our security.
      {550, "5.7.606", "Access denied, banned sending IP. To request removal from this list",
       Action::kSuspendSource, "blocked", false},
      {554, "5.7.9", "Message not accepted for policy reasons.", Action::kBounce, "policyviolation",
       false},
      {550, "", "Requested action not taken: mailbox unavailable", Action::kBounce, "userunknown",
       true},
      {554, "5.3.4", "Message too big for system", Action::kBounce, "mesgtoobig", false},
      {550, "5.1.2", "Host unknown", Action::kBounce, "hostunknown", true},
      {450, "", "", Action::kRetry, "undefined", false},
      {554, "", "", Action::kBounce, "undefined", false},
      {421, "", "Too many concurrent SMTP connections", Action::kRetryAndThrottle, "toomanyconn",
       false},
      {553, "5.1.8", "Sender address rejected: Domain not found", Action::kBounce, "rejected",
       false},
  };
  for (const auto& c : cases) {
    Verdict v = classify_reply(reply(c.code, c.enhanced, c.text));
    EXPECT_EQ(v.action, c.action) << c.code << " " << c.text;
    EXPECT_EQ(v.reason, c.reason) << c.code << " " << c.text;
    EXPECT_EQ(v.hard, c.hard) << c.code << " " << c.text;
  }
}

// A block list's name contains "spam"; the reply is about the client's address, not content.
TEST(ReplyPolicy, spamhaus_listing_is_blocked_not_spamdetected) {
  EXPECT_EQ(
      classify_reply(
          reply(554, "5.7.1", "rejected because 192.0.2.1 is in a black list at zen.spamhaus.org"))
          .reason,
      "blocked");
}

TEST(ReplyPolicy, NoReplyIsANetworkErrorThatClosesTheSession) {
  Verdict v = classify_reply(reply(0, "", "Connection refused"));
  EXPECT_EQ(v.action, Action::kRetry);
  EXPECT_EQ(v.reason, "networkerror");
  EXPECT_TRUE(v.close_connection);
}

// A refusal of our sending IP or host is not the recipient's fault and not final for the mail:
// the egress source is suspended toward the destination and the recipient deferred, whether the
// receiver said it with a 4xx or a 5xx. A 4xx about reputation is a rate limit: slow the path.
TEST(ReplyPolicy, RefusalOfTheEgressSourceSuspendsIt) {
  struct Case {
    int code;
    const char* enhanced;
    const char* text;
    Action action;
    const char* reason;
  } cases[] = {
      {554, "5.7.1", "Service unavailable; Client host [192.0.2.1] blocked using a block list",
       Action::kSuspendSource, "blocked"},
      {450, "4.7.1", "Client host rejected: cannot find your reverse hostname, [192.0.2.1]",
       Action::kSuspendSource, "requireptr"},
      {550, "5.7.1", "Mail from IP 192.0.2.1 refused: poor IP reputation", Action::kSuspendSource,
       "badreputation"},
      {451, "4.7.650",
       "The mail server [192.0.2.1] has been temporarily rate limited due to IP "
       "reputation.",
       Action::kRetryAndThrottle, "badreputation"},
  };
  for (const auto& c : cases) {
    Verdict v = classify_reply(reply(c.code, c.enhanced, c.text));
    EXPECT_EQ(v.reason, c.reason) << c.text;
    EXPECT_EQ(v.action, c.action) << c.text;
    EXPECT_FALSE(v.hard) << c.text;
    EXPECT_EQ(v.close_connection, c.action == Action::kSuspendSource) << c.text;
  }
  EXPECT_STREQ(action_name(Action::kSuspendSource), "suspend the egress source");
}

// Regression (address_words_suspend_domain): words inside an address ("unblocked.news@",
// "@marblehead.example") are not wording about us, and an addressing status (X.1.Y) is about the
// recipient: such a reply bounces the recipient (hard) and never suspends the destination.
TEST(ReplyPolicy, AddressWordsSuspendDomain) {
  for (const char* local : {"blocked", "unblocked.news", "marble.arch", "spamhaus", "rbl", "dnsbl",
                            "banned", "reputation", "blacklisted.user"}) {
    std::string text = std::string("<") + local +
                       "@example.com>: Recipient address rejected: User unknown in virtual "
                       "mailbox table";
    Verdict v = classify_reply(reply(550, "5.1.1", text));
    EXPECT_EQ(v.reason, "userunknown") << text;
    EXPECT_EQ(v.action, Action::kBounce) << text;
    EXPECT_TRUE(v.hard) << text;
  }
  Verdict v = classify_reply(reply(550, "5.1.1", "<user@marblehead.example>: user unknown"));
  EXPECT_EQ(v.action, Action::kBounce);
  EXPECT_TRUE(v.hard);
  v = classify_reply(reply(550, "5.1.10",
                           "RESOLVER.ADR.RecipientNotFound; Recipient rbl.admin@contoso.example "
                           "not found by SMTP address lookup"));
  EXPECT_EQ(v.action, Action::kBounce);
  EXPECT_TRUE(v.hard);
  // Whatever the text, an addressing status does not suspend.
  v = classify_reply(reply(550, "5.1.8", "Sender address blocked using a block list"));
  EXPECT_NE(v.action, Action::kSuspendSource);
  // The words still count where they are wording.
  v = classify_reply(reply(554, "5.7.1",
                           "Service unavailable; Client host [192.0.2.1] blocked "
                           "using zen.spamhaus.org; for user@example.com"));
  EXPECT_EQ(v.action, Action::kSuspendSource);
}

TEST(ReplyPolicy, Code421ClosesTheConnection) {
  EXPECT_TRUE(classify_reply(reply(421, "4.3.2", "shutting down")).close_connection);
  EXPECT_FALSE(classify_reply(reply(451, "4.3.0", "local error")).close_connection);
}

}  // namespace
}  // namespace magnetic::feedback
