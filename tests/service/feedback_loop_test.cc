// The feedback loop with its real parts in a temporary folder: the metadata store, the message
// spool, the event outbox and a Publisher over them. Reports are small DSNs and ARF reports
// written here; recipients are matched by VERP tokens made from their spool rows, or by the
// returned message's Message-ID.
#include "service/feedback_loop.h"

#include <gtest/gtest.h>

#include <cstring>

#include <thread>

#include <nlohmann/json.hpp>

#include "events/outbox.h"
#include "events/record.h"
#include "feedback/verp.h"
#include "service/publisher.h"
#include "spool/message_spool.h"
#include "store/store.h"
#include "test_support.h"

namespace magnetic::service {
namespace {

constexpr const char* kKey = "0123456789abcdef0123456789abcdef";
constexpr const char* kRelayDenied =
    "Relaying denied: this server takes only bounces and feedback reports for its own addresses";

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// An RFC 3464 report about one recipient. `to` is the report's own To (our envelope sender);
// `message_id` the returned message's Message-ID without brackets ("" leaves the header out).
std::string dsn(const std::string& to, const std::string& recipient, const std::string& action,
                const std::string& status, const std::string& diagnostic,
                const std::string& message_id) {
  std::string m =
      "From: Mail Delivery System <mailer-daemon@mx.example.net>\n"
      "To: " +
      to +
      "\n"
      "Subject: Delivery Status Notification\n"
      "Date: Mon, 02 Mar 2026 10:00:00 +0000\n"
      "Message-ID: <dsn-1@mx.example.net>\n"
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b-dsn\"\n"
      "\n"
      "--b-dsn\n"
      "Content-Type: text/plain; charset=us-ascii\n"
      "\n"
      "This is the mail system at mx.example.net: a message of yours was not delivered.\n"
      "\n"
      "--b-dsn\n"
      "Content-Type: message/delivery-status\n"
      "\n"
      "Reporting-MTA: dns; mx.example.net\n"
      "Arrival-Date: Mon, 02 Mar 2026 09:59:58 +0000\n"
      "\n"
      "Final-Recipient: rfc822; " +
      recipient +
      "\n"
      "Action: " +
      action +
      "\n"
      "Status: " +
      status +
      "\n"
      "Diagnostic-Code: smtp; " +
      diagnostic +
      "\n"
      "\n"
      "--b-dsn\n"
      "Content-Type: text/rfc822-headers\n"
      "\n"
      "Return-Path: <sender@news.example>\n"
      "From: News <sender@news.example>\n"
      "To: " +
      recipient + "\n";
  if (!message_id.empty()) m += "Message-ID: <" + message_id + ">\n";
  m += "Subject: This week's news\n"
       "\n"
       "--b-dsn--\n";
  return m;
}

// An RFC 5965 report. `rcpt` goes into Original-Rcpt-To ("" leaves it out).
std::string arf(const std::string& to, const std::string& feedback_type, const std::string& rcpt,
                const std::string& message_id) {
  std::string m =
      "From: Feedback Loop <fbl@isp.example>\n"
      "To: " +
      to +
      "\n"
      "Subject: Abuse report\n"
      "Date: Mon, 02 Mar 2026 11:00:00 +0000\n"
      "Message-ID: <arf-1@isp.example>\n"
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/report; report-type=feedback-report; boundary=\"b-arf\"\n"
      "\n"
      "--b-arf\n"
      "Content-Type: text/plain; charset=us-ascii\n"
      "\n"
      "A user of ours marked the attached message.\n"
      "\n"
      "--b-arf\n"
      "Content-Type: message/feedback-report\n"
      "\n"
      "Feedback-Type: " +
      feedback_type +
      "\n"
      "User-Agent: ExampleFBL/2.1\n"
      "Version: 1\n"
      "Original-Mail-From: <sender@news.example>\n";
  if (!rcpt.empty()) m += "Original-Rcpt-To: <" + rcpt + ">\n";
  m += "Reporting-MTA: dns; fbl.isp.example\n"
       "\n"
       "--b-arf\n"
       "Content-Type: text/rfc822-headers\n"
       "\n"
       "Return-Path: <sender@news.example>\n"
       "From: News <sender@news.example>\n"
       "To: undisclosed-recipients:;\n"
       "Message-ID: <" +
       message_id +
       ">\n"
       "Subject: This week's news\n"
       "\n"
       "--b-arf--\n";
  return m;
}

const char* kUserUnknown = "550 5.1.1 <ann@example.com>: user unknown";
const char* kMailboxFull = "552 5.2.2 mailbox full";

class FeedbackLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = dir_.path().string();
    auto st = store::Store::open(dir);
    ASSERT_TRUE(st.is_ok()) << st.status().message();
    store_ = std::move(*st);
    auto sp = spool::MessageSpool::open(dir + "/spool.db");
    ASSERT_TRUE(sp.is_ok()) << sp.status().message();
    spool_ = std::move(*sp);
    auto ob = events::Outbox::open(dir + "/events.db");
    ASSERT_TRUE(ob.is_ok()) << ob.status().message();
    outbox_ = std::move(*ob);
    publisher_ = std::make_unique<Publisher>(*store_, *outbox_, dir + "/events", [] {});

    // "news": every event goes to a file destination; "quiet": suppresses for no reason and
    // has no destination; "plain": no SuppressionOptions, so the account's reasons apply.
    make_set("news", "");
    store::EventDestination d;
    d.configuration_set = "news";
    d.name = "all";
    d.enabled = true;
    d.matching_event_types = {"SEND", "BOUNCE", "COMPLAINT", "DELIVERY", "DELIVERY_DELAY"};
    d.kind = store::EventDestination::Kind::kFile;
    d.target = "news";
    d.definition_json = "{}";
    ASSERT_TRUE(store_->create_event_destination(d).is_ok());
    make_set("quiet", R"({"SuppressedReasons":[]})");
    make_set("plain", "");

    options_.bounce_domain = "bounces.test";
    options_.verp_key = kKey;
    options_.complaint_addresses = {"fbl@bounces.test"};
    options_.soft_bounce_limit = 3;
    options_.reputation.min_sent = 10;
    options_.reporting_mta = "out.news.example";
    make_loop();
  }

  void make_loop() {
    loop_ = std::make_unique<FeedbackLoop>(options_, *store_, *spool_, *publisher_);
  }

  void make_set(const std::string& name, const std::string& suppression_options) {
    store::ConfigurationSet cs;
    cs.name = name;
    cs.suppression_options = suppression_options;
    ASSERT_TRUE(store_->create_configuration_set(cs).is_ok());
  }

  // Accepts one message and returns its recipients' spool records (in envelope order).
  std::vector<spool::RecipientRecord> accept(const std::string& message_id, const std::string& set,
                                             const std::vector<std::string>& to) {
    events::MailInfo mail;
    mail.message_id = message_id;
    mail.timestamp_ms = now_ms();
    mail.source = "sender@news.example";
    mail.destination = to;
    if (!set.empty()) mail.tags["ses:configuration-set"] = {set};
    spool::NewMessage m;
    m.message_id = message_id;
    m.identity = "news.example";
    m.configuration_set = set;
    m.envelope_from = "sender@news.example";
    m.data = "From: sender@news.example\r\nSubject: hi\r\n\r\nhello\r\n";
    m.mail_json = events::mail_json(mail);
    for (const auto& t : to) m.recipients.push_back({t, t.substr(t.find('@') + 1), false});
    EXPECT_TRUE(spool_->accept({m}, now_ms()).is_ok());
    auto listed = spool_->recipients_of_message(message_id);
    EXPECT_TRUE(listed.is_ok());
    if (!listed) return {};
    EXPECT_EQ(listed->size(), to.size());
    return *listed;
  }

  std::string token(const spool::RecipientRecord& r) { return feedback::verp_token(r.row, kKey); }
  std::string verp(const spool::RecipientRecord& r) {
    return feedback::verp_address(r.row, "bounces.test", kKey);
  }

  // Every logged event, parsed.
  std::vector<nlohmann::json> events() {
    std::vector<nlohmann::json> out;
    auto log = outbox_->read_log(0, 1000);
    EXPECT_TRUE(log.is_ok());
    if (!log) return out;
    for (const auto& e : *log) out.push_back(nlohmann::json::parse(e.json));
    return out;
  }

  bool suppressed(const std::string& email) { return store_->get_suppressed(email).is_ok(); }

  Attempt attempt(const spool::RecipientRecord& r, spool::RecipientState state, int code,
                  const std::string& enhanced, const std::string& text, const std::string& stage) {
    Attempt a;
    a.recipient.id = r.row;
    a.recipient.message = r.message;
    a.recipient.message_id = r.message_id;
    a.recipient.email = r.email;
    a.recipient.domain = r.email.substr(r.email.find('@') + 1);
    a.outcome.id = r.row;
    a.outcome.state = state;
    a.outcome.attempts = 1;
    a.reply.code = code;
    a.reply.enhanced = enhanced;
    a.reply.text = text;
    a.reply.stage = stage;
    a.mx = "127.0.0.1:2525";
    a.known = true;
    a.configuration_set = r.configuration_set;
    a.accepted_ms = r.accepted_ms;
    a.mail_json = r.mail_json;
    return a;
  }

  void expect_result(const Result<FeedbackResult>& r, feedback::FeedbackKind kind, size_t matched,
                     size_t unmatched, size_t suppressed) {
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    EXPECT_EQ(r->kind, kind);
    EXPECT_EQ(r->matched, matched);
    EXPECT_EQ(r->unmatched, unmatched);
    EXPECT_EQ(r->suppressed, suppressed);
  }

  magnetic::testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<spool::MessageSpool> spool_;
  std::unique_ptr<events::Outbox> outbox_;
  std::unique_ptr<Publisher> publisher_;
  FeedbackOptions options_;
  std::unique_ptr<FeedbackLoop> loop_;
};

using feedback::FeedbackKind;

void expect_reply(const smtp::Reply& r, int code, const std::string& enhanced,
                  const std::string& text) {
  EXPECT_EQ(r.code, code);
  EXPECT_EQ(r.enhanced, enhanced);
  EXPECT_EQ(r.text, text);
}

// ---- check_recipient ------------------------------------------------------------------------

TEST_F(FeedbackLoopTest, RecipientsTheListenerTakes) {
  auto rs = accept("msg-rcpt", "news", {"ann@example.com"});
  ASSERT_EQ(rs.size(), 1u);
  std::string address = verp(rs[0]);
  EXPECT_EQ(address, "bounce+" + token(rs[0]) + "@bounces.test");

  expect_reply(loop_->check_recipient("", address), 250, "2.1.5", "OK");
  // Some MTAs change the case of the address they return mail to.
  std::string upper = address;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  expect_reply(loop_->check_recipient("mailer-daemon@mx.example.net", upper), 250, "2.1.5", "OK");
  expect_reply(loop_->check_recipient("", "postmaster@bounces.test"), 250, "2.1.5", "OK");
  expect_reply(loop_->check_recipient("", "Postmaster@Bounces.Test"), 250, "2.1.5", "OK");
  expect_reply(loop_->check_recipient("fbl@isp.example", "fbl@bounces.test"), 250, "2.1.5", "OK");
  expect_reply(loop_->check_recipient("fbl@isp.example", "FBL@BOUNCES.TEST"), 250, "2.1.5", "OK");
}

TEST_F(FeedbackLoopTest, RecipientsTheListenerRefuses) {
  auto rs = accept("msg-refuse", "news", {"ann@example.com"});
  ASSERT_EQ(rs.size(), 1u);
  std::string good = token(rs[0]);
  // The same row with another tag, and a tag that belongs to another row.
  std::string forged = good.substr(0, good.size() - 8) + "aaaaaaaa";
  std::string other_row = feedback::verp_token(rs[0].row + 1, kKey);
  std::string swapped = other_row.substr(0, other_row.size() - 8) + good.substr(good.size() - 8);
  for (const std::string& t : {forged, swapped, std::string("zz")}) {
    expect_reply(loop_->check_recipient("", "bounce+" + t + "@bounces.test"), 550, "5.1.1",
                 "No such bounce address");
  }
  // An empty token is no VERP address at all.
  expect_reply(loop_->check_recipient("", "bounce+@bounces.test"), 550, "5.7.1", kRelayDenied);
  // A good token at another domain is not ours, nor are other addresses of the bounce domain.
  expect_reply(loop_->check_recipient("", "bounce+" + good + "@other.test"), 550, "5.7.1",
               kRelayDenied);
  expect_reply(loop_->check_recipient("", "abuse@bounces.test"), 550, "5.7.1", kRelayDenied);
  expect_reply(loop_->check_recipient("", "ann@example.com"), 550, "5.7.1", kRelayDenied);
  expect_reply(loop_->check_recipient("", "postmaster@other.test"), 550, "5.7.1", kRelayDenied);
}

TEST_F(FeedbackLoopTest, WithoutBounceDomainOnlyComplaintAddressesAreTaken) {
  auto rs = accept("msg-noverp", "news", {"ann@example.com"});
  ASSERT_EQ(rs.size(), 1u);
  options_.bounce_domain = "";
  make_loop();
  expect_reply(loop_->check_recipient("", "fbl@bounces.test"), 250, "2.1.5", "OK");
  expect_reply(loop_->check_recipient("", verp(rs[0])), 550, "5.7.1", kRelayDenied);
  expect_reply(loop_->check_recipient("", "postmaster@bounces.test"), 550, "5.7.1", kRelayDenied);
}

// ---- bounces --------------------------------------------------------------------------------

TEST_F(FeedbackLoopTest, HardBounceByTokenSuppressesAndPublishes) {
  auto rs = accept("msg-hard", "news", {"ann@example.com"});
  ASSERT_EQ(rs.size(), 1u);
  auto r = loop_->process(
      dsn(verp(rs[0]), "ann@example.com", "failed", "5.1.1", kUserUnknown, "msg-hard@news.example"),
      token(rs[0]));
  expect_result(r, FeedbackKind::kBounce, 1, 0, 1);

  auto s = store_->get_suppressed("ann@example.com");
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  EXPECT_EQ(s->reason, "BOUNCE");
  EXPECT_EQ(s->message_id, "msg-hard");
  EXPECT_FALSE(s->feedback_id.empty());

  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  const auto& e = ev[0];
  EXPECT_EQ(e["eventType"], "Bounce");
  EXPECT_EQ(e["mail"]["messageId"], "msg-hard");
  EXPECT_EQ(e["bounce"]["bounceType"], "Permanent");
  EXPECT_EQ(e["bounce"]["bounceSubType"], "NoEmail");
  ASSERT_EQ(e["bounce"]["bouncedRecipients"].size(), 1u);
  const auto& br = e["bounce"]["bouncedRecipients"][0];
  EXPECT_EQ(br["emailAddress"], "ann@example.com");
  EXPECT_EQ(br["action"], "failed");
  EXPECT_EQ(br["status"], "5.1.1");
  EXPECT_EQ(br["diagnosticCode"], std::string("smtp; ") + kUserUnknown);
  EXPECT_EQ(e["bounce"]["reportingMTA"], "dns; mx.example.net");
  EXPECT_EQ(e["bounce"]["feedbackId"], s->feedback_id);
  EXPECT_FALSE(e["bounce"].contains("remoteMtaIp"));

  // The hard bounce counts for the reputation of the account and of the set.
  auto acct = store_->reputation_since("", 0, now_ms());
  ASSERT_TRUE(acct.is_ok());
  EXPECT_EQ(acct->bounced, 1u);
  auto set = store_->reputation_since("news", 0, now_ms());
  ASSERT_TRUE(set.is_ok());
  EXPECT_EQ(set->bounced, 1u);
}

TEST_F(FeedbackLoopTest, TokenOnTheReportsOwnToHeaderIsEnough) {
  auto rs = accept("msg-to", "news", {"ann@example.com"});
  ASSERT_EQ(rs.size(), 1u);
  // No Message-ID and a recipient the receiver rewrote (forwarding): the token decides.
  auto r = loop_->process(
      dsn(verp(rs[0]), "ann.forwarded@example.org", "failed", "5.1.1", kUserUnknown, ""), "");
  expect_result(r, FeedbackKind::kBounce, 1, 0, 1);
  EXPECT_TRUE(suppressed("ann@example.com"));
  EXPECT_FALSE(suppressed("ann.forwarded@example.org"));
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["bounce"]["bouncedRecipients"][0]["emailAddress"], "ann@example.com");
}

TEST_F(FeedbackLoopTest, HardBounceByMessageIdMatchesTheNamedRecipientOnly) {
  // Without VERP the Message-ID is all there is: it matches the recipient the report names.
  options_.bounce_domain = "";
  make_loop();
  auto rs = accept("msg-mid", "news", {"ann@example.com", "bob@example.com"});
  ASSERT_EQ(rs.size(), 2u);
  auto r = loop_->process(dsn("sender@news.example", "bob@example.com", "failed", "5.1.1",
                              "550 5.1.1 <bob@example.com>: user unknown", "msg-mid@news.example"),
                          "");
  expect_result(r, FeedbackKind::kBounce, 1, 0, 1);
  EXPECT_FALSE(suppressed("ann@example.com"));
  auto s = store_->get_suppressed("bob@example.com");
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(s->reason, "BOUNCE");
  EXPECT_EQ(s->message_id, "msg-mid");
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["bounce"]["bouncedRecipients"][0]["emailAddress"], "bob@example.com");
  EXPECT_EQ(ev[0]["bounce"]["bouncedRecipients"][0]["diagnosticCode"],
            "smtp; 550 5.1.1 <bob@example.com>: user unknown");
}

// Regression (co_recipient_forges_bounce): a recipient of a message sent to several people
// knows its Message-ID and could mail a made-up bounce naming the others. Under VERP genuine
// reports about such messages come to VERP addresses, so the Message-ID alone matches nothing.
TEST_F(FeedbackLoopTest, CoRecipientForgesBounce) {
  auto rs = accept("msg-co", "news", {"ann@example.com", "bob@example.com"});
  ASSERT_EQ(rs.size(), 2u);
  auto r = loop_->process(dsn("postmaster@bounces.test", "bob@example.com", "failed", "5.1.1",
                              "550 5.1.1 user unknown", "msg-co@news.example"),
                          "");
  // One recipient named, one unmatched (not one for the message and one for the recipient).
  expect_result(r, FeedbackKind::kBounce, 0, 1, 0);
  EXPECT_FALSE(suppressed("bob@example.com"));
  EXPECT_TRUE(events().empty());
  // A one-recipient message is still matched by its Message-ID.
  auto one = accept("msg-one", "news", {"carol@example.com"});
  ASSERT_EQ(one.size(), 1u);
  expect_result(loop_->process(dsn("postmaster@bounces.test", "carol@example.com", "failed",
                                   "5.1.1", "550 5.1.1 user unknown", "msg-one@news.example"),
                               ""),
                FeedbackKind::kBounce, 1, 0, 1);
}

// Regression (replayed_report_counts_again, dsn_repeating_a_recipient): the same report sent
// again, or one report naming a recipient many times, is acted on once.
TEST_F(FeedbackLoopTest, ReplayedReportCountsAgain) {
  auto rs = accept("msg-replay", "news", {"ann@example.com"});
  ASSERT_EQ(rs.size(), 1u);
  std::string report = dsn(verp(rs[0]), "ann@example.com", "failed", "5.1.1",
                           "550 5.1.1 user unknown", "msg-replay@news.example");
  expect_result(loop_->process(report, token(rs[0])), FeedbackKind::kBounce, 1, 0, 1);
  auto again = loop_->process(report, token(rs[0]));
  expect_result(again, FeedbackKind::kBounce, 0, 0, 0);
  EXPECT_EQ(again->repeated, 1u);
  EXPECT_EQ(events().size(), 1u);
  auto acct = store_->reputation_since("", 0, now_ms());
  ASSERT_TRUE(acct.is_ok());
  EXPECT_EQ(acct->bounced, 1u);

  auto other = accept("msg-many", "news", {"bob@example.com"});
  ASSERT_EQ(other.size(), 1u);
  std::string block = dsn("postmaster@bounces.test", "bob@example.com", "failed", "5.1.1",
                          "550 5.1.1 user unknown", "msg-many@news.example");
  std::string per_recipient =
      "\nFinal-Recipient: rfc822; bob@example.com\nAction: failed\nStatus: 5.1.1\n";
  std::string many = block;
  size_t at = many.find("Final-Recipient:");
  ASSERT_NE(at, std::string::npos);
  for (int i = 0; i < 200; ++i) many.insert(at, per_recipient.substr(1) + "\n");
  auto r = loop_->process(many, "");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->matched, 1u);
  EXPECT_EQ(r->suppressed, 1u);
  acct = store_->reputation_since("", 0, now_ms());
  ASSERT_TRUE(acct.is_ok());
  EXPECT_EQ(acct->bounced, 2u);
  EXPECT_EQ(events().size(), 2u);
}

TEST_F(FeedbackLoopTest, ForgedTokenAndUnknownMessageIdMatchNothing) {
  auto rs = accept("msg-forged", "news", {"ann@example.com"});
  ASSERT_EQ(rs.size(), 1u);
  std::string good = token(rs[0]);
  std::string forged = good.substr(0, good.size() - 8) + "aaaaaaaa";
  auto r = loop_->process(dsn("bounce+" + forged + "@bounces.test", "ann@example.com", "failed",
                              "5.1.1", kUserUnknown, "no-such-message@news.example"),
                          forged);
  expect_result(r, FeedbackKind::kBounce, 0, 1, 0);
  EXPECT_FALSE(suppressed("ann@example.com"));
  EXPECT_TRUE(events().empty());
  auto acct = store_->reputation_since("", 0, now_ms());
  ASSERT_TRUE(acct.is_ok());
  EXPECT_EQ(acct->bounced, 0u);
}

TEST_F(FeedbackLoopTest, UnknownMessageIdWithoutTokenMatchesNothing) {
  accept("msg-known", "news", {"ann@example.com"});
  auto r = loop_->process(dsn("sender@news.example", "ann@example.com", "failed", "5.1.1",
                              kUserUnknown, "msg-unknown@news.example"),
                          "");
  expect_result(r, FeedbackKind::kBounce, 0, 1, 0);
  EXPECT_FALSE(suppressed("ann@example.com"));
  EXPECT_TRUE(events().empty());
}

TEST_F(FeedbackLoopTest, ValidTokenOfAMissingRowFallsBackToTheMessageId) {
  auto rs = accept("msg-gone", "news", {"ann@example.com"});
  ASSERT_EQ(rs.size(), 1u);
  std::string missing = feedback::verp_token(rs[0].row + 1000, kKey);
  auto none = loop_->process(dsn("bounce+" + missing + "@bounces.test", "ann@example.com", "failed",
                                 "5.1.1", kUserUnknown, ""),
                             missing);
  expect_result(none, FeedbackKind::kBounce, 0, 1, 0);
  EXPECT_FALSE(suppressed("ann@example.com"));

  auto by_id = loop_->process(dsn("bounce+" + missing + "@bounces.test", "ann@example.com",
                                  "failed", "5.1.1", kUserUnknown, "msg-gone@news.example"),
                              missing);
  expect_result(by_id, FeedbackKind::kBounce, 1, 0, 1);
  EXPECT_TRUE(suppressed("ann@example.com"));
}

TEST_F(FeedbackLoopTest, DelayedDsnIsNotABounce) {
  auto rs = accept("msg-delay", "news", {"ann@example.com"});
  ASSERT_EQ(rs.size(), 1u);
  auto r =
      loop_->process(dsn(verp(rs[0]), "ann@example.com", "delayed", "4.4.7",
                         "451 4.4.7 delivery delayed, will be retried", "msg-delay@news.example"),
                     token(rs[0]));
  expect_result(r, FeedbackKind::kBounce, 0, 0, 0);
  EXPECT_FALSE(suppressed("ann@example.com"));
  EXPECT_TRUE(events().empty());
  // Nor is it the start of a soft bounce run: three of them suppress nothing.
  for (int i = 0; i < 3; ++i) {
    auto again = loop_->process(dsn(verp(rs[0]), "ann@example.com", "delayed", "4.4.7",
                                    "451 4.4.7 delivery delayed, will be retried", ""),
                                token(rs[0]));
    expect_result(again, FeedbackKind::kBounce, 0, 0, 0);
  }
  EXPECT_FALSE(suppressed("ann@example.com"));
}

TEST_F(FeedbackLoopTest, NotAReportIsNothingToDo) {
  auto r = loop_->process(
      "From: someone@example.org\nTo: postmaster@bounces.test\nSubject: hello\n\nhi there\n", "");
  expect_result(r, FeedbackKind::kOther, 0, 0, 0);
  EXPECT_TRUE(events().empty());
}

TEST_F(FeedbackLoopTest, ReceiveTakesTheTokenFromTheEnvelope) {
  auto rs = accept("msg-receive", "news", {"ann@example.com", "bob@example.com"});
  ASSERT_EQ(rs.size(), 2u);
  // The report itself names nobody of ours: only the envelope's VERP address says who it is.
  smtp::SubmissionEnvelope env;
  env.mail_from = "";
  env.rcpt_to = {"postmaster@bounces.test", verp(rs[1])};
  env.data = magnetic::testing::crlf_lines(
      dsn("postmaster@bounces.test", "someone@example.org", "failed", "5.1.1", kUserUnknown, ""));
  expect_reply(loop_->receive(env), 250, "2.0.0", "Feedback recorded: 1 matched, 0 unmatched");
  EXPECT_FALSE(suppressed("ann@example.com"));
  EXPECT_TRUE(suppressed("bob@example.com"));

  smtp::SubmissionEnvelope unknown;
  unknown.rcpt_to = {"postmaster@bounces.test"};
  unknown.data = magnetic::testing::crlf_lines(
      dsn("postmaster@bounces.test", "carol@example.com", "failed", "5.1.1", kUserUnknown, ""));
  expect_reply(loop_->receive(unknown), 250, "2.0.0", "Feedback recorded: 0 matched, 1 unmatched");
}

// Regression (first_rcpt_wins): a report that comes to several bounce addresses at once acts on
// those whose recipient it names, whatever the order of RCPT; naming none of them, it takes none
// on trust.
TEST_F(FeedbackLoopTest, FirstRcptWins) {
  auto rs = accept("msg-two-rcpt", "news", {"ann@example.com", "bob@example.com"});
  ASSERT_EQ(rs.size(), 2u);
  smtp::SubmissionEnvelope env;
  env.rcpt_to = {verp(rs[0]), verp(rs[1])};
  env.data = magnetic::testing::crlf_lines(
      dsn("postmaster@bounces.test", "bob@example.com", "failed", "5.1.1", kUserUnknown, ""));
  expect_reply(loop_->receive(env), 250, "2.0.0", "Feedback recorded: 1 matched, 0 unmatched");
  EXPECT_FALSE(suppressed("ann@example.com"));
  EXPECT_TRUE(suppressed("bob@example.com"));

  auto other = accept("msg-two-rcpt-2", "news", {"cat@example.com", "dan@example.com"});
  ASSERT_EQ(other.size(), 2u);
  smtp::SubmissionEnvelope none;
  none.rcpt_to = {verp(other[0]), verp(other[1])};
  none.data = magnetic::testing::crlf_lines(
      dsn("postmaster@bounces.test", "someone@example.org", "failed", "5.1.1", kUserUnknown, ""));
  expect_reply(loop_->receive(none), 250, "2.0.0", "Feedback recorded: 0 matched, 1 unmatched");
  EXPECT_FALSE(suppressed("cat@example.com"));
  EXPECT_FALSE(suppressed("dan@example.com"));
}

// ---- soft bounces ---------------------------------------------------------------------------

TEST_F(FeedbackLoopTest, RunOfThreeSoftBouncesSuppresses) {
  // Three messages, a soft bounce each.
  for (int i = 0; i < 3; ++i) {
    std::string id = "msg-soft-" + std::to_string(i);
    auto rs = accept(id, "news", {"ann@example.com"});
    ASSERT_EQ(rs.size(), 1u);
    std::string report =
        dsn(verp(rs[0]), "ann@example.com", "failed", "5.2.2", kMailboxFull, id + "@news.example");
    expect_result(loop_->process(report, token(rs[0])), FeedbackKind::kBounce, 1, 0,
                  i == 2 ? 1 : 0);
    EXPECT_EQ(suppressed("ann@example.com"), i == 2) << "after soft bounce " << i + 1;
  }
  auto s = store_->get_suppressed("ann@example.com");
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(s->reason, "BOUNCE");
  EXPECT_EQ(s->message_id, "msg-soft-2");

  auto ev = events();
  ASSERT_EQ(ev.size(), 3u);
  for (const auto& e : ev) {
    EXPECT_EQ(e["eventType"], "Bounce");
    EXPECT_EQ(e["bounce"]["bounceType"], "Transient");
    EXPECT_EQ(e["bounce"]["bounceSubType"], "MailboxFull");
    EXPECT_EQ(e["bounce"]["bouncedRecipients"][0]["status"], "5.2.2");
    EXPECT_EQ(e["bounce"]["bouncedRecipients"][0]["diagnosticCode"],
              std::string("smtp; ") + kMailboxFull);
  }
  // Soft bounces do not count as bounces for the reputation.
  auto acct = store_->reputation_since("", 0, now_ms());
  ASSERT_TRUE(acct.is_ok());
  EXPECT_EQ(acct->bounced, 0u);
}

// Regression (sender_side_soft_bounces_suppress): refusals that are about us (our IP on a block
// list, rate limits) never make a run that suppresses the reader.
TEST_F(FeedbackLoopTest, SenderSideSoftBouncesSuppress) {
  for (int i = 0; i < 5; ++i) {
    auto rs = accept("msg-blocked-" + std::to_string(i), "news", {"ceo@example.com"});
    ASSERT_EQ(rs.size(), 1u);
    loop_->on_attempts({attempt(rs[0], spool::RecipientState::kBounced, 550, "5.7.1",
                                "Service unavailable; client host [192.0.2.1] blocked using "
                                "zen.spamhaus.org",
                                "rcpt")});
  }
  EXPECT_FALSE(suppressed("ceo@example.com"));
}

// Regression (soft_run_reset_by_handoff): each message is handed off (250) before its own
// mailbox-full DSN comes back, so a handoff must not end the run, or the limit never applies.
TEST_F(FeedbackLoopTest, SoftRunResetByHandoff) {
  for (int i = 0; i < 3; ++i) {
    std::string id = "msg-handoff-" + std::to_string(i);
    auto rs = accept(id, "news", {"ann@example.com"});
    ASSERT_EQ(rs.size(), 1u);
    loop_->on_attempts(
        {attempt(rs[0], spool::RecipientState::kDelivered, 250, "2.0.0", "OK", "dot")});
    std::string report = dsn(verp(rs[0]), "ann@example.com", "failed", "4.2.2", kMailboxFull, "");
    expect_result(loop_->process(report, token(rs[0])), FeedbackKind::kBounce, 1, 0,
                  i == 2 ? 1 : 0);
  }
  EXPECT_TRUE(suppressed("ann@example.com"));
}

// Regression (soft_run_survives_restart): the run is kept by the store, so it goes on across a
// restart of the service.
TEST_F(FeedbackLoopTest, SoftRunSurvivesRestart) {
  std::vector<spool::RecipientRecord> rows;
  for (int i = 0; i < 3; ++i) {
    auto rs = accept("msg-restart-" + std::to_string(i), "news", {"ann@example.com"});
    ASSERT_EQ(rs.size(), 1u);
    rows.push_back(rs[0]);
  }
  for (int i = 0; i < 3; ++i) {
    if (i == 2) make_loop();  // `magnetic serve` restarted: same store and spool
    std::string report = dsn(verp(rows[i]), "ann@example.com", "failed", "5.2.2", kMailboxFull, "");
    expect_result(loop_->process(report, token(rows[i])), FeedbackKind::kBounce, 1, 0,
                  i == 2 ? 1 : 0);
  }
  EXPECT_TRUE(suppressed("ann@example.com"));
}

// Regression (harmless_report_blocks_complaint): a not-spam or auth-failure report does not
// mark the recipient, so a real complaint about the same message afterwards still counts.
TEST_F(FeedbackLoopTest, HarmlessReportBlocksComplaint) {
  auto rs = accept("msg-harmless", "news", {"ann@example.com"});
  ASSERT_EQ(rs.size(), 1u);
  for (const char* type : {"auth-failure", "not-spam"}) {
    expect_result(loop_->process(arf(verp(rs[0]), type, "ann@example.com", ""), token(rs[0])),
                  FeedbackKind::kComplaint, 1, 0, 0);
  }
  expect_result(loop_->process(arf(verp(rs[0]), "abuse", "ann@example.com", ""), token(rs[0])),
                FeedbackKind::kComplaint, 1, 0, 1);
  EXPECT_TRUE(suppressed("ann@example.com"));
}

TEST_F(FeedbackLoopTest, SoftBounceLimitZeroNeverSuppresses) {
  options_.soft_bounce_limit = 0;
  make_loop();
  for (int i = 0; i < 5; ++i) {
    auto rs = accept("msg-nolimit-" + std::to_string(i), "news", {"ann@example.com"});
    ASSERT_EQ(rs.size(), 1u);
    std::string report = dsn(verp(rs[0]), "ann@example.com", "failed", "5.2.2", kMailboxFull, "");
    expect_result(loop_->process(report, token(rs[0])), FeedbackKind::kBounce, 1, 0, 0);
  }
  EXPECT_FALSE(suppressed("ann@example.com"));
}

// ---- suppression options --------------------------------------------------------------------

TEST_F(FeedbackLoopTest, SetWithNoSuppressedReasonsSuppressesNothing) {
  auto quiet = accept("msg-quiet", "quiet", {"ann@example.com"});
  auto plain = accept("msg-plain", "plain", {"bob@example.com"});
  ASSERT_EQ(quiet.size(), 1u);
  ASSERT_EQ(plain.size(), 1u);

  expect_result(
      loop_->process(dsn(verp(quiet[0]), "ann@example.com", "failed", "5.1.1", kUserUnknown, ""),
                     token(quiet[0])),
      FeedbackKind::kBounce, 1, 0, 0);
  expect_result(loop_->process(arf("fbl@bounces.test", "abuse", "", "msg-quiet@news.example"), ""),
                FeedbackKind::kComplaint, 1, 0, 0);
  EXPECT_FALSE(suppressed("ann@example.com"));

  // The account's default (BOUNCE, COMPLAINT) applies to a set without SuppressionOptions.
  expect_result(loop_->process(dsn(verp(plain[0]), "bob@example.com", "failed", "5.1.1",
                                   "550 5.1.1 user unknown", ""),
                               token(plain[0])),
                FeedbackKind::kBounce, 1, 0, 1);
  auto s = store_->get_suppressed("bob@example.com");
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(s->reason, "BOUNCE");
  EXPECT_EQ(s->message_id, "msg-plain");
  // Neither set has event destinations.
  EXPECT_TRUE(events().empty());
}

TEST_F(FeedbackLoopTest, SetReasonsOverrideTheAccountsBothWays) {
  make_set("complaints-only", R"({"SuppressedReasons":["COMPLAINT"]})");
  auto account = store_->account();
  ASSERT_TRUE(account.is_ok());
  account->suppressed_reasons = {};
  ASSERT_TRUE(store_->put_account(*account).is_ok());

  auto co = accept("msg-co", "complaints-only", {"ann@example.com"});
  auto plain = accept("msg-acct", "plain", {"bob@example.com"});
  ASSERT_EQ(co.size(), 1u);
  ASSERT_EQ(plain.size(), 1u);

  // The set suppresses complaints even though the account suppresses nothing, not bounces.
  expect_result(
      loop_->process(dsn(verp(co[0]), "ann@example.com", "failed", "5.1.1", kUserUnknown, ""),
                     token(co[0])),
      FeedbackKind::kBounce, 1, 0, 0);
  EXPECT_FALSE(suppressed("ann@example.com"));
  expect_result(loop_->process(arf(verp(co[0]), "abuse", "", "msg-co@news.example"), token(co[0])),
                FeedbackKind::kComplaint, 1, 0, 1);
  auto s = store_->get_suppressed("ann@example.com");
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(s->reason, "COMPLAINT");

  // A set without options follows the account, which now suppresses nothing.
  expect_result(loop_->process(dsn(verp(plain[0]), "bob@example.com", "failed", "5.1.1",
                                   "550 5.1.1 user unknown", ""),
                               token(plain[0])),
                FeedbackKind::kBounce, 1, 0, 0);
  EXPECT_FALSE(suppressed("bob@example.com"));
}

TEST_F(FeedbackLoopTest, EffectiveSuppressedReasons) {
  store::Account account;
  EXPECT_EQ(effective_suppressed_reasons(account, std::nullopt),
            (std::vector<std::string>{"BOUNCE", "COMPLAINT"}));
  store::ConfigurationSet cs;
  cs.name = "x";
  EXPECT_EQ(effective_suppressed_reasons(account, cs),
            (std::vector<std::string>{"BOUNCE", "COMPLAINT"}));
  cs.suppression_options = R"({"SuppressedReasons":[]})";
  EXPECT_EQ(effective_suppressed_reasons(account, cs), std::vector<std::string>{});
  cs.suppression_options = R"({"SuppressedReasons":["BOUNCE"]})";
  EXPECT_EQ(effective_suppressed_reasons(account, cs), std::vector<std::string>{"BOUNCE"});
  // Options without the field leave the account's reasons.
  cs.suppression_options = R"({})";
  EXPECT_EQ(effective_suppressed_reasons(account, cs),
            (std::vector<std::string>{"BOUNCE", "COMPLAINT"}));
}

// ---- complaints -----------------------------------------------------------------------------

TEST_F(FeedbackLoopTest, ComplaintByTokenSuppressesAndPublishes) {
  auto rs = accept("msg-abuse", "news", {"ann@example.com", "bob@example.com"});
  ASSERT_EQ(rs.size(), 2u);
  auto r = loop_->process(arf(verp(rs[1]), "abuse", "", "msg-abuse@news.example"), token(rs[1]));
  expect_result(r, FeedbackKind::kComplaint, 1, 0, 1);
  EXPECT_FALSE(suppressed("ann@example.com"));
  auto s = store_->get_suppressed("bob@example.com");
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(s->reason, "COMPLAINT");
  EXPECT_EQ(s->message_id, "msg-abuse");

  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  const auto& e = ev[0];
  EXPECT_EQ(e["eventType"], "Complaint");
  EXPECT_EQ(e["mail"]["messageId"], "msg-abuse");
  ASSERT_EQ(e["complaint"]["complainedRecipients"].size(), 1u);
  EXPECT_EQ(e["complaint"]["complainedRecipients"][0]["emailAddress"], "bob@example.com");
  EXPECT_EQ(e["complaint"]["complaintFeedbackType"], "abuse");
  EXPECT_EQ(e["complaint"]["userAgent"], "ExampleFBL/2.1");
  EXPECT_EQ(e["complaint"]["feedbackId"], s->feedback_id);
  EXPECT_TRUE(e["complaint"]["complaintSubType"].is_null());

  auto acct = store_->reputation_since("", 0, now_ms());
  ASSERT_TRUE(acct.is_ok());
  EXPECT_EQ(acct->complained, 1u);
  auto set = store_->reputation_since("news", 0, now_ms());
  ASSERT_TRUE(set.is_ok());
  EXPECT_EQ(set->complained, 1u);
}

TEST_F(FeedbackLoopTest, ComplaintByMessageIdAndOriginalRcptTo) {
  options_.bounce_domain = "";  // without VERP
  make_loop();
  auto rs = accept("msg-rcptto", "news", {"ann@example.com", "bob@example.com"});
  ASSERT_EQ(rs.size(), 2u);
  auto r = loop_->process(
      arf("fbl@bounces.test", "abuse", "ann@example.com", "msg-rcptto@news.example"), "");
  expect_result(r, FeedbackKind::kComplaint, 1, 0, 1);
  EXPECT_TRUE(suppressed("ann@example.com"));
  EXPECT_FALSE(suppressed("bob@example.com"));
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["complaint"]["complainedRecipients"],
            nlohmann::json::parse(R"([{"emailAddress":"ann@example.com"}])"));
  // The same complaint again is not counted again.
  auto again = loop_->process(
      arf("fbl@bounces.test", "abuse", "ann@example.com", "msg-rcptto@news.example"), "");
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->repeated, 1u);
  EXPECT_EQ(events().size(), 1u);
}

// Regression (complaint_naming_nobody_suppresses_everyone): without VERP, a redacted report
// about a message of several recipients cannot say which one complained; none is suppressed.
// About a message of one recipient, it is that recipient.
TEST_F(FeedbackLoopTest, ComplaintNamingNobodyIsAboutTheOneRecipientOnly) {
  options_.bounce_domain = "";
  make_loop();
  auto rs = accept("msg-redacted", "news", {"ann@example.com", "bob@example.com"});
  ASSERT_EQ(rs.size(), 2u);
  auto r = loop_->process(arf("fbl@bounces.test", "abuse", "", "msg-redacted@news.example"), "");
  expect_result(r, FeedbackKind::kComplaint, 0, 1, 0);
  EXPECT_FALSE(suppressed("ann@example.com"));
  EXPECT_FALSE(suppressed("bob@example.com"));
  EXPECT_TRUE(events().empty());

  rs = accept("msg-single", "news", {"cat@example.com"});
  ASSERT_EQ(rs.size(), 1u);
  r = loop_->process(arf("fbl@bounces.test", "abuse", "", "msg-single@news.example"), "");
  expect_result(r, FeedbackKind::kComplaint, 1, 0, 1);
  EXPECT_TRUE(suppressed("cat@example.com"));
}

// Regression (returned_to_names_the_wrong_recipient): the returned message's To is not who the
// report is about when the message had several recipients (Bcc, Cc, lists): a complaint or a
// bounce that only it names acts on nobody.
TEST_F(FeedbackLoopTest, ReturnedToOfAMessageOfSeveralIsNotTheRecipient) {
  options_.bounce_domain = "";
  make_loop();
  auto rs = accept("msg-bcc", "news", {"ann@example.com", "bob@example.com"});
  ASSERT_EQ(rs.size(), 2u);
  // A complaint about bob's copy (Bcc): its To says ann.
  std::string report = arf("fbl@bounces.test", "abuse", "", "msg-bcc@news.example");
  size_t to = report.find("To: undisclosed-recipients:;");
  ASSERT_NE(to, std::string::npos);
  report.replace(to, std::strlen("To: undisclosed-recipients:;"), "To: ann@example.com");
  auto r = loop_->process(report, "");
  expect_result(r, FeedbackKind::kComplaint, 0, 1, 0);
  EXPECT_FALSE(suppressed("ann@example.com"));

  // A DSN whose Final-Recipient is refused: the returned To's first address is not bounced.
  std::string bounce = dsn("mailer@bounces.test", "Bob <bob@example.com>", "failed", "5.1.1",
                           "550 5.1.1 user unknown", "msg-bcc@news.example");
  size_t returned = bounce.rfind("To: Bob <bob@example.com>");
  ASSERT_NE(returned, std::string::npos);
  bounce.replace(returned, std::strlen("To: Bob <bob@example.com>"),
                 "To: ann@example.com, bob@example.com");
  r = loop_->process(bounce, "");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->matched, 0u);
  EXPECT_FALSE(suppressed("ann@example.com"));
  EXPECT_FALSE(suppressed("bob@example.com"));
  EXPECT_TRUE(events().empty());
}

// Regression (unreadable_rcpt_to_suppresses_everyone): a report whose Original-Rcpt-To cannot be
// read named somebody; it is not a report that names nobody, so it suppresses no one.
TEST_F(FeedbackLoopTest, UnreadableOriginalRcptToSuppressesNobody) {
  options_.bounce_domain = "";
  make_loop();
  auto rs = accept("msg-unreadable", "news", {"ann@example.com", "bob@example.com"});
  ASSERT_EQ(rs.size(), 2u);
  auto r = loop_->process(
      arf("fbl@bounces.test", "abuse", "x;bob@example.com", "msg-unreadable@news.example"), "");
  expect_result(r, FeedbackKind::kComplaint, 0, 1, 0);
  EXPECT_FALSE(suppressed("ann@example.com"));
  EXPECT_FALSE(suppressed("bob@example.com"));
  EXPECT_TRUE(events().empty());
}

// Regression (redacted_complaint_suppresses_everyone): under VERP a redacted report that names
// a message of several recipients only by Message-ID suppresses none of them.
TEST_F(FeedbackLoopTest, RedactedComplaintSuppressesEveryone) {
  auto rs = accept("msg-redacted2", "news", {"ann@example.com", "bob@example.com"});
  ASSERT_EQ(rs.size(), 2u);
  auto r = loop_->process(arf("fbl@bounces.test", "abuse", "", "msg-redacted2@news.example"), "");
  expect_result(r, FeedbackKind::kComplaint, 0, 1, 0);
  EXPECT_FALSE(suppressed("ann@example.com"));
}

// Regression (auth_failure_report_suppresses): an RFC 6591 authentication failure report is
// about our DKIM/SPF, not the reader's wish.
TEST_F(FeedbackLoopTest, AuthFailureReportSuppresses) {
  auto rs = accept("msg-auth", "news", {"ann@example.com"});
  ASSERT_EQ(rs.size(), 1u);
  auto r = loop_->process(
      arf(verp(rs[0]), "auth-failure", "ann@example.com", "msg-auth@news.example"), token(rs[0]));
  expect_result(r, FeedbackKind::kComplaint, 1, 0, 0);
  EXPECT_FALSE(suppressed("ann@example.com"));
  auto acct = store_->reputation_since("", 0, now_ms());
  ASSERT_TRUE(acct.is_ok());
  EXPECT_EQ(acct->complained, 0u);
}

TEST_F(FeedbackLoopTest, ComplaintAboutAnUnknownMessageIsUnmatched) {
  accept("msg-c-known", "news", {"ann@example.com"});
  expect_result(loop_->process(arf("fbl@bounces.test", "abuse", "", "nope@news.example"), ""),
                FeedbackKind::kComplaint, 0, 1, 0);
  expect_result(
      loop_->process(
          arf("fbl@bounces.test", "abuse", "carol@example.com", "msg-c-known@news.example"), ""),
      FeedbackKind::kComplaint, 0, 1, 0);
  EXPECT_FALSE(suppressed("ann@example.com"));
  EXPECT_FALSE(suppressed("carol@example.com"));
  EXPECT_TRUE(events().empty());
}

TEST_F(FeedbackLoopTest, NotSpamNeverSuppresses) {
  auto rs = accept("msg-notspam", "news", {"ann@example.com"});
  ASSERT_EQ(rs.size(), 1u);
  auto r =
      loop_->process(arf(verp(rs[0]), "not-spam", "", "msg-notspam@news.example"), token(rs[0]));
  expect_result(r, FeedbackKind::kComplaint, 1, 0, 0);
  EXPECT_FALSE(suppressed("ann@example.com"));
  auto acct = store_->reputation_since("", 0, now_ms());
  ASSERT_TRUE(acct.is_ok());
  EXPECT_EQ(acct->complained, 0u);
  // It is still reported, with its type, as SES reports it.
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["eventType"], "Complaint");
  EXPECT_EQ(ev[0]["complaint"]["complaintFeedbackType"], "not-spam");
}

// ---- delivery attempts and accepted messages ------------------------------------------------

TEST_F(FeedbackLoopTest, AttemptsBecomeDeliveryDelayAndBounceEvents) {
  auto rs = accept("msg-att", "news", {"ann@example.com", "bob@example.com", "cat@example.com"});
  ASSERT_EQ(rs.size(), 3u);
  Attempt deferred = attempt(rs[1], spool::RecipientState::kDeferred, 451, "4.7.1",
                             "greylisted, try later", "rcpt");
  deferred.accepted_ms = 1772445600000;               // 2026-03-02T10:00:00Z
  deferred.outcome.first_attempt_ms = 1772449200000;  // an hour later
  loop_->on_attempts({
      attempt(rs[0], spool::RecipientState::kDelivered, 250, "2.0.0", "OK", "dot"),
      deferred,
      attempt(rs[2], spool::RecipientState::kBounced, 550, "5.1.1", "user unknown", "rcpt"),
  });

  auto ev = events();
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0]["eventType"], "Delivery");
  EXPECT_EQ(ev[0]["mail"]["messageId"], "msg-att");
  EXPECT_EQ(ev[0]["delivery"]["recipients"], nlohmann::json::parse(R"(["ann@example.com"])"));
  EXPECT_EQ(ev[0]["delivery"]["smtpResponse"], "250 2.0.0 OK");
  EXPECT_EQ(ev[0]["delivery"]["reportingMTA"], "out.news.example");
  EXPECT_EQ(ev[0]["delivery"]["remoteMtaIp"], "127.0.0.1");

  EXPECT_EQ(ev[1]["eventType"], "DeliveryDelay");
  EXPECT_EQ(ev[1]["deliveryDelay"]["delayType"], "RecipientServerError");
  // The message's acceptance plus max_age (24 hours), not the first attempt's.
  EXPECT_EQ(ev[1]["deliveryDelay"]["expirationTime"], "2026-03-03T10:00:00.000Z");
  EXPECT_EQ(ev[1]["deliveryDelay"]["reportingMTA"], "out.news.example");
  ASSERT_EQ(ev[1]["deliveryDelay"]["delayedRecipients"].size(), 1u);
  EXPECT_EQ(ev[1]["deliveryDelay"]["delayedRecipients"][0]["emailAddress"], "bob@example.com");
  EXPECT_EQ(ev[1]["deliveryDelay"]["delayedRecipients"][0]["status"], "4.7.1");
  EXPECT_EQ(ev[1]["deliveryDelay"]["delayedRecipients"][0]["diagnosticCode"],
            "smtp; 451 4.7.1 greylisted, try later");

  EXPECT_EQ(ev[2]["eventType"], "Bounce");
  EXPECT_EQ(ev[2]["bounce"]["bounceType"], "Permanent");
  EXPECT_EQ(ev[2]["bounce"]["bounceSubType"], "NoEmail");
  const auto& br = ev[2]["bounce"]["bouncedRecipients"][0];
  EXPECT_EQ(br["emailAddress"], "cat@example.com");
  EXPECT_EQ(br["action"], "failed");
  EXPECT_EQ(br["status"], "5.1.1");
  EXPECT_EQ(br["diagnosticCode"], "smtp; 550 5.1.1 user unknown");
  EXPECT_EQ(ev[2]["bounce"]["reportingMTA"], "dns; out.news.example");
  EXPECT_EQ(ev[2]["bounce"]["remoteMtaIp"], "127.0.0.1");

  // The synchronous hard bounce suppresses; the others do not.
  EXPECT_FALSE(suppressed("ann@example.com"));
  EXPECT_FALSE(suppressed("bob@example.com"));
  auto s = store_->get_suppressed("cat@example.com");
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(s->reason, "BOUNCE");
  EXPECT_EQ(s->message_id, "msg-att");
  EXPECT_EQ(s->feedback_id, ev[2]["bounce"]["feedbackId"]);
}

TEST_F(FeedbackLoopTest, ExpiredAttemptsAreSoftBouncesThatCountTowardsTheRun) {
  auto rs = accept("msg-expired", "news", {"ann@example.com"});
  ASSERT_EQ(rs.size(), 1u);
  for (int i = 0; i < 2; ++i) {
    loop_->on_attempts({attempt(rs[0], spool::RecipientState::kExpired, 451, "4.4.1",
                                "connection timed out", "connect")});
    EXPECT_FALSE(suppressed("ann@example.com")) << "after expiry " << i + 1;
  }
  loop_->on_attempts({attempt(rs[0], spool::RecipientState::kExpired, 451, "4.4.1",
                              "connection timed out", "connect")});
  EXPECT_TRUE(suppressed("ann@example.com"));
  auto ev = events();
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0]["eventType"], "Bounce");
  EXPECT_EQ(ev[0]["bounce"]["bounceType"], "Transient");
  EXPECT_EQ(ev[0]["bounce"]["bounceSubType"], "General");
  EXPECT_EQ(ev[0]["bounce"]["bouncedRecipients"][0]["status"], "4.4.1");
  EXPECT_EQ(ev[0]["bounce"]["bouncedRecipients"][0]["diagnosticCode"],
            "smtp; 451 4.4.1 connection timed out");
  auto acct = store_->reputation_since("", 0, now_ms());
  ASSERT_TRUE(acct.is_ok());
  EXPECT_EQ(acct->bounced, 0u);
}

// Regression (transient_bounce_with_permanent_status): a recipient whose last try got a
// permanent refusal of our egress source (deferred, not bounced) and then expired is a Transient
// bounce with a transient status; the diagnostic keeps the refusal.
TEST_F(FeedbackLoopTest, ExpiryAfterAPermanentRefusalOfOurSourceHasATransientStatus) {
  auto rs = accept("msg-expired-5xx", "news", {"ann@example.com"});
  ASSERT_EQ(rs.size(), 1u);
  loop_->on_attempts({attempt(rs[0], spool::RecipientState::kExpired, 554, "5.7.1",
                              "client host [127.0.0.1] blocked using a block list", "rcpt")});
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["bounce"]["bounceType"], "Transient");
  EXPECT_EQ(ev[0]["bounce"]["bouncedRecipients"][0]["status"], "4.4.7");
  EXPECT_EQ(ev[0]["bounce"]["bouncedRecipients"][0]["diagnosticCode"],
            "smtp; 554 5.7.1 client host [127.0.0.1] blocked using a block list");
}

TEST_F(FeedbackLoopTest, AttemptWithoutKnownMessageIsReadFromTheSpool) {
  auto rs = accept("msg-unknown-att", "news", {"ann@example.com"});
  ASSERT_EQ(rs.size(), 1u);
  Attempt a = attempt(rs[0], spool::RecipientState::kBounced, 550, "5.1.1", "user unknown", "rcpt");
  a.known = false;
  a.configuration_set.clear();
  a.mail_json.clear();
  loop_->on_attempts({a});
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["eventType"], "Bounce");
  EXPECT_EQ(ev[0]["mail"]["messageId"], "msg-unknown-att");
  EXPECT_TRUE(suppressed("ann@example.com"));
}

TEST_F(FeedbackLoopTest, AcceptedMessagesPublishSendAndCountSent) {
  auto a = accept("msg-send-1", "news", {"ann@example.com", "bob@example.com"});
  auto b = accept("msg-send-2", "plain", {"cat@example.com"});
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 1u);
  loop_->on_accepted(
      {{"msg-send-1", "news", a[0].mail_json, 2}, {"msg-send-2", "plain", b[0].mail_json, 1}});
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);  // "plain" has no event destination
  EXPECT_EQ(ev[0]["eventType"], "Send");
  EXPECT_EQ(ev[0]["mail"]["messageId"], "msg-send-1");
  EXPECT_EQ(ev[0]["send"], nlohmann::json::object());

  int64_t now = now_ms();
  auto acct = store_->reputation_since("", 0, now);
  auto news = store_->reputation_since("news", 0, now);
  auto plain = store_->reputation_since("plain", 0, now);
  ASSERT_TRUE(acct.is_ok() && news.is_ok() && plain.is_ok());
  EXPECT_EQ(acct->sent, 3u);
  EXPECT_EQ(news->sent, 2u);
  EXPECT_EQ(plain->sent, 1u);
}

// A recipient not sent to because it is suppressed is published as SES does: a Permanent bounce
// of subtype OnAccountSuppressionList, after the message's Send, and not counted as sent or as a
// bounce by the reputation guard.
TEST_F(FeedbackLoopTest, SuppressedRecipientsPublishOnAccountSuppressionListBounce) {
  auto a = accept("msg-supp-1", "news", {"ann@example.com"});
  ASSERT_EQ(a.size(), 1u);
  FeedbackLoop::Accepted msg{"msg-supp-1", "news", a[0].mail_json, 1, {"zed@example.com"}};
  loop_->on_accepted({msg});
  auto ev = events();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0]["eventType"], "Send");
  EXPECT_EQ(ev[1]["eventType"], "Bounce");
  EXPECT_EQ(ev[1]["mail"]["messageId"], "msg-supp-1");
  EXPECT_EQ(ev[1]["bounce"]["bounceType"], "Permanent");
  EXPECT_EQ(ev[1]["bounce"]["bounceSubType"], "OnAccountSuppressionList");
  ASSERT_EQ(ev[1]["bounce"]["bouncedRecipients"].size(), 1u);
  EXPECT_EQ(ev[1]["bounce"]["bouncedRecipients"][0]["emailAddress"], "zed@example.com");
  EXPECT_EQ(ev[1]["bounce"]["bouncedRecipients"][0]["status"], "5.1.1");
  auto acct = store_->reputation_since("", 0, now_ms());
  ASSERT_TRUE(acct.is_ok());
  EXPECT_EQ(acct->sent, 1u);
  EXPECT_EQ(acct->bounced, 0u);
}

// ---- reputation guard -----------------------------------------------------------------------

// Sends `sent` recipients with a set (on_accepted) and hard-bounces the first `bounces` of them
// through DSNs.
class FeedbackLoopReputationTest : public FeedbackLoopTest {
 protected:
  std::vector<spool::RecipientRecord> send(const std::string& id, const std::string& set,
                                           int sent) {
    std::vector<std::string> to;
    for (int i = 0; i < sent; ++i)
      to.push_back("r" + std::to_string(i) + "." + id + "@example.com");
    auto rs = accept(id, set, to);
    EXPECT_EQ(rs.size(), to.size());
    if (rs.empty()) return rs;
    loop_->on_accepted({{id, set, rs[0].mail_json, static_cast<uint64_t>(sent)}});
    return rs;
  }
  void bounce(const spool::RecipientRecord& r) {
    auto res = loop_->process(
        dsn(verp(r), r.email, "failed", "5.1.1", "550 5.1.1 user unknown", ""), token(r));
    ASSERT_TRUE(res.is_ok());
    EXPECT_EQ(res->matched, 1u);
  }
  store::Account account() {
    auto a = store_->account();
    EXPECT_TRUE(a.is_ok());
    return a.is_ok() ? *a : store::Account{};
  }
  std::string sending_options(const std::string& set) {
    auto cs = store_->get_configuration_set(set);
    EXPECT_TRUE(cs.is_ok());
    return cs.is_ok() ? cs->sending_options : "?";
  }
};

TEST_F(FeedbackLoopReputationTest, BounceRateAtThePauseThresholdPausesAccountAndSet) {
  auto rs = send("rep-pause", "news", 10);
  ASSERT_EQ(rs.size(), 10u);
  bounce(rs[0]);  // 1 in 10: 10%, the pause threshold

  store::Account a = account();
  EXPECT_FALSE(a.sending_enabled);
  EXPECT_EQ(a.enforcement_status, "SHUTDOWN");
  EXPECT_EQ(a.sending_paused_reason,
            "bounce rate 10.00% (1 of 10 recipients) reached the pause threshold 10.00%");
  EXPECT_EQ(nlohmann::json::parse(sending_options("news")),
            nlohmann::json::parse(R"({"SendingEnabled":false})"));
  // Another group does not write the pause again.
  loop_->check_reputation("news");
  EXPECT_EQ(account().sending_paused_reason, a.sending_paused_reason);
}

// The pause is published as a Sending Paused event: the account's to every set with a
// destination that matches SENDING_PAUSED, a set's to its own; with none, it is still logged.
TEST_F(FeedbackLoopReputationTest, PausePublishesSendingPausedEvents) {
  store::EventDestination d;
  d.configuration_set = "plain";
  d.name = "ops";
  d.enabled = true;
  d.matching_event_types = {"SENDING_PAUSED"};
  d.kind = store::EventDestination::Kind::kFile;
  d.target = "ops";
  d.definition_json = "{}";
  ASSERT_TRUE(store_->create_event_destination(d).is_ok());

  auto rs = send("rep-event", "news", 10);
  ASSERT_EQ(rs.size(), 10u);
  bounce(rs[0]);

  auto log = outbox_->read_log(0, 1000, {events::EventType::kSendingPaused, "", ""});
  ASSERT_TRUE(log.is_ok());
  ASSERT_EQ(log->size(), 2u);
  EXPECT_EQ((*log)[0].configuration_set, "plain");  // the account's pause, to the set that asks
  EXPECT_EQ((*log)[0].message_id, "");
  EXPECT_EQ((*log)[1].configuration_set, "news");  // the set's pause: logged, no destination
  auto account = nlohmann::json::parse((*log)[0].json);
  EXPECT_EQ(account["eventType"], "Sending Paused");
  EXPECT_FALSE(account.contains("mail"));
  const auto& p = account["sendingPaused"];
  EXPECT_EQ(p["scope"], "ACCOUNT");
  EXPECT_FALSE(p.contains("configurationSet"));
  EXPECT_EQ(p["metric"], "BOUNCE");
  EXPECT_EQ(p["rate"], 0.1);
  EXPECT_EQ(p["threshold"], 0.1);
  EXPECT_EQ(p["sent"], 10);
  EXPECT_EQ(p["bounced"], 1);
  EXPECT_EQ(p["complained"], 0);
  EXPECT_EQ(p["windowMillis"], 86400000);
  EXPECT_EQ(p["reason"],
            "bounce rate 10.00% (1 of 10 recipients) reached the pause threshold 10.00%");
  auto set = nlohmann::json::parse((*log)[1].json)["sendingPaused"];
  EXPECT_EQ(set["scope"], "CONFIGURATION_SET");
  EXPECT_EQ(set["configurationSet"], "news");

  // A second judgement of the same pause publishes nothing more.
  loop_->check_reputation("news");
  auto again = outbox_->read_log(0, 1000, {events::EventType::kSendingPaused, "", ""});
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->size(), 2u);
}

// Regression (old_bounce_pauses_after_resume): after a resume, a bounce or complaint about mail
// accepted before it does not count, so what was sent before the fresh start cannot pause again.
TEST_F(FeedbackLoopReputationTest, OldBouncePausesAfterResume) {
  auto before = send("rep-old", "news", 10);
  ASSERT_EQ(before.size(), 10u);
  bounce(before[0]);
  ASSERT_FALSE(account().sending_enabled);

  // What the API does on resume: the account's and the set's fresh starts, counters cleared.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  store::Account a = account();
  a.sending_enabled = true;
  a.enforcement_status = "HEALTHY";
  a.reputation_reset_ms = now_ms();
  ASSERT_TRUE(store_->put_account(a).is_ok());
  ASSERT_TRUE(store_->clear_reputation("").is_ok());
  auto cs = store_->get_configuration_set("news");
  ASSERT_TRUE(cs.is_ok());
  cs->sending_options = R"({"SendingEnabled":true})";
  cs->reputation_options =
      nlohmann::json{{"LastFreshStart", static_cast<double>(now_ms()) / 1000}}.dump();
  ASSERT_TRUE(store_->update_configuration_set(*cs).is_ok());
  ASSERT_TRUE(store_->clear_reputation("news").is_ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));

  auto after = send("rep-new", "news", 10);
  ASSERT_EQ(after.size(), 10u);
  bounce(before[1]);  // about a message of the earlier window
  ASSERT_TRUE(
      loop_->process(arf(verp(before[2]), "abuse", before[2].email, ""), token(before[2])).is_ok());
  EXPECT_TRUE(account().sending_enabled);
  EXPECT_EQ(account().enforcement_status, "HEALTHY");
  EXPECT_EQ(nlohmann::json::parse(sending_options("news"))["SendingEnabled"], true);
  auto counts = store_->reputation_since("", 0, now_ms());
  ASSERT_TRUE(counts.is_ok());
  EXPECT_EQ(counts->sent, 10u);
  EXPECT_EQ(counts->bounced, 0u);
  EXPECT_EQ(counts->complained, 0u);

  bounce(after[0]);  // about new mail: it counts, and 1 in 10 pauses again
  EXPECT_FALSE(account().sending_enabled);
}

// Regression (complaint_rate_inf_with_min_sent_0): with nothing sent in the window there is no
// rate to judge, whatever min_sent says.
TEST_F(FeedbackLoopReputationTest, ComplaintRateInfWithMinSent0) {
  options_.reputation.min_sent = 0;
  make_loop();
  auto rs = accept("rep-zero", "news", {"ann@example.com"});  // accepted, not counted as sent
  ASSERT_EQ(rs.size(), 1u);
  ASSERT_TRUE(
      loop_->process(arf(verp(rs[0]), "abuse", "ann@example.com", ""), token(rs[0])).is_ok());
  EXPECT_TRUE(account().sending_enabled);
  auto log = outbox_->read_log(0, 1000, {events::EventType::kSendingPaused, "", ""});
  ASSERT_TRUE(log.is_ok());
  EXPECT_TRUE(log->empty());
}

TEST_F(FeedbackLoopReputationTest, BelowMinSentNothingIsJudged) {
  auto rs = send("rep-few", "news", 9);
  ASSERT_EQ(rs.size(), 9u);
  bounce(rs[0]);
  bounce(rs[1]);  // 2 in 9, but too few to judge
  loop_->check_reputation("news");
  store::Account a = account();
  EXPECT_TRUE(a.sending_enabled);
  EXPECT_EQ(a.enforcement_status, "HEALTHY");
  EXPECT_EQ(a.sending_paused_reason, "");
  EXPECT_EQ(sending_options("news"), "");
}

TEST_F(FeedbackLoopReputationTest, BounceRateAtTheReviewThresholdIsProbation) {
  auto rs = send("rep-review", "news", 20);
  ASSERT_EQ(rs.size(), 20u);
  bounce(rs[0]);  // 1 in 20: 5%, the review threshold
  store::Account a = account();
  EXPECT_TRUE(a.sending_enabled);
  EXPECT_EQ(a.enforcement_status, "PROBATION");
  EXPECT_EQ(a.sending_paused_reason, "");
  EXPECT_EQ(sending_options("news"), "");
}

TEST_F(FeedbackLoopReputationTest, BelowTheReviewThresholdStaysHealthy) {
  auto rs = send("rep-healthy", "news", 21);
  ASSERT_EQ(rs.size(), 21u);
  bounce(rs[0]);  // 1 in 21: just under 5%
  store::Account a = account();
  EXPECT_TRUE(a.sending_enabled);
  EXPECT_EQ(a.enforcement_status, "HEALTHY");
}

TEST_F(FeedbackLoopReputationTest, OneBadSetPausesOnlyItself) {
  auto good = send("rep-good", "plain", 90);
  auto bad = send("rep-bad", "news", 10);
  ASSERT_EQ(bad.size(), 10u);
  bounce(bad[0]);  // the set: 1 in 10; the account: 1 in 100
  store::Account a = account();
  EXPECT_TRUE(a.sending_enabled);
  EXPECT_EQ(a.enforcement_status, "HEALTHY");
  EXPECT_EQ(nlohmann::json::parse(sending_options("news")),
            nlohmann::json::parse(R"({"SendingEnabled":false})"));
  EXPECT_EQ(sending_options("plain"), "");
}

TEST_F(FeedbackLoopReputationTest, PausingASetKeepsItsOtherSendingOptions) {
  auto cs = store_->get_configuration_set("news");
  ASSERT_TRUE(cs.is_ok());
  cs->sending_options = R"({"SendingEnabled":true})";
  ASSERT_TRUE(store_->update_configuration_set(*cs).is_ok());
  send("rep-fill", "plain", 90);
  auto rs = send("rep-opts", "news", 10);
  ASSERT_EQ(rs.size(), 10u);
  bounce(rs[0]);
  EXPECT_EQ(nlohmann::json::parse(sending_options("news")),
            nlohmann::json::parse(R"({"SendingEnabled":false})"));
}

TEST_F(FeedbackLoopReputationTest, ComplaintRateAtThePauseThresholdPauses) {
  auto rs = send("rep-complaint", "news", 10);
  ASSERT_EQ(rs.size(), 10u);
  auto r = loop_->process(arf(verp(rs[0]), "abuse", "", ""), token(rs[0]));
  expect_result(r, FeedbackKind::kComplaint, 1, 0, 1);
  store::Account a = account();
  EXPECT_FALSE(a.sending_enabled);
  EXPECT_EQ(a.enforcement_status, "SHUTDOWN");
  EXPECT_EQ(a.sending_paused_reason,
            "complaint rate 10.00% (1 of 10 recipients) reached the pause threshold 0.50%");
  EXPECT_EQ(nlohmann::json::parse(sending_options("news")),
            nlohmann::json::parse(R"({"SendingEnabled":false})"));
}

TEST_F(FeedbackLoopReputationTest, GuardOffJudgesNothing) {
  options_.reputation.enabled = false;
  make_loop();
  auto rs = send("rep-off", "news", 10);
  ASSERT_EQ(rs.size(), 10u);
  bounce(rs[0]);
  bounce(rs[1]);
  loop_->check_reputation("news");
  store::Account a = account();
  EXPECT_TRUE(a.sending_enabled);
  EXPECT_EQ(a.enforcement_status, "HEALTHY");
  EXPECT_EQ(sending_options("news"), "");
  auto acct = store_->reputation_since("", 0, now_ms());
  ASSERT_TRUE(acct.is_ok());
  EXPECT_EQ(acct->sent, 0u);
}

}  // namespace
}  // namespace magnetic::service
