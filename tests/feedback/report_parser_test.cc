#include "feedback/report_parser.h"

#include <gtest/gtest.h>

#include <cstring>

#include <algorithm>
#include <string>
#include <vector>

namespace magnetic::feedback {
namespace {

// A DSN as RFC 3464 lays it out, written for this test with reserved names.
constexpr const char* kDsn =
    "From: MAILER-DAEMON@mx.example.net\r\n"
    "To: bounce+tok123@sender.example\r\n"
    "Subject: Undelivered Mail Returned to Sender\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n"
    "\r\n"
    "--B\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "I could not deliver your message.\r\n"
    "--B\r\n"
    "Content-Type: message/delivery-status\r\n"
    "\r\n"
    "Reporting-MTA: dns; mx.example.net\r\n"
    "Arrival-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    "\r\n"
    "Final-Recipient: rfc822; Gone@Example.com\r\n"
    "Original-Recipient: rfc822; gone@example.com\r\n"
    "Action: failed\r\n"
    "Status: 5.1.1\r\n"
    "Remote-MTA: dns; in.example.com\r\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <gone@example.com>: Recipient address\r\n"
    " rejected: User unknown in local recipient table\r\n"
    "\r\n"
    "Final-Recipient: rfc822; full@example.com\r\n"
    "Action: failed\r\n"
    "Status: 5.2.2\r\n"
    "Diagnostic-Code: smtp; 552 5.2.2 Mailbox full\r\n"
    "--B\r\n"
    "Content-Type: text/rfc822-headers\r\n"
    "\r\n"
    "Return-Path: <bounce+tok123@sender.example>\r\n"
    "Message-ID: <m1@sender.example>\r\n"
    "From: news@sender.example\r\n"
    "--B--\r\n";

TEST(ReportParser, DsnIsReadFieldByField) {
  auto r = parse_feedback(kDsn);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->kind, FeedbackKind::kBounce);
  EXPECT_EQ(r->reporting_mta, "mx.example.net");
  EXPECT_EQ(r->original_message_id, "m1@sender.example");
  EXPECT_EQ(r->verp_token, "tok123");
  ASSERT_EQ(r->entries.size(), 2u);
  const auto& a = r->entries[0];
  EXPECT_EQ(a.recipient, "gone@example.com");
  EXPECT_EQ(a.status, "5.1.1");
  EXPECT_EQ(a.reply_code, 550);
  EXPECT_EQ(a.remote_mta, "in.example.com");
  EXPECT_EQ(a.reason, "userunknown");
  EXPECT_TRUE(a.hard);
  EXPECT_EQ(a.bounce_type, "Permanent");
  EXPECT_EQ(a.bounce_subtype, "NoEmail");
  const auto& b = r->entries[1];
  EXPECT_EQ(b.recipient, "full@example.com");
  EXPECT_EQ(b.reason, "mailboxfull");
  EXPECT_FALSE(b.hard);
  EXPECT_EQ(b.bounce_type, "Transient");
  EXPECT_EQ(b.bounce_subtype, "MailboxFull");
}

TEST(ReportParser, QmailStyleTextBounceFindsTheRecipient) {
  auto r = parse_feedback(
      "From: MAILER-DAEMON@mx.example.net\n"
      "To: sender@sender.example\n"
      "Subject: failure notice\n"
      "\n"
      "Hi. I was not able to deliver your message to the following addresses.\n"
      "\n"
      "<nobody@example.org>:\n"
      "192.0.2.7 does not like recipient.\n"
      "Remote host said: 550 5.1.1 <nobody@example.org>: no such user\n"
      "\n"
      "--- Below this line is a copy of the message.\n"
      "\n"
      "From: sender@sender.example\n");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->kind, FeedbackKind::kBounce);
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].recipient, "nobody@example.org");
  EXPECT_EQ(r->entries[0].reply_code, 550);
  EXPECT_EQ(r->entries[0].status, "5.1.1");
  EXPECT_EQ(r->entries[0].reason, "userunknown");
}

TEST(ReportParser, OrdinaryMailIsOther) {
  auto r = parse_feedback("From: a@example.com\nTo: b@example.com\nSubject: lunch\n\nat noon?\n");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->kind, FeedbackKind::kOther);
  EXPECT_TRUE(r->entries.empty());
}

// Regression (dsn_blocks_without_blank_line): two recipient blocks run together are two
// recipients, each with its own status.
TEST(ReportParser, DsnRecipientBlocksWithoutABlankLineBetweenThem) {
  auto r = parse_feedback(
      "From: MAILER-DAEMON@mx.example.net\n"
      "Subject: Undeliverable\n"
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n"
      "\n"
      "--B\n"
      "Content-Type: message/delivery-status\n"
      "\n"
      "Reporting-MTA: dns; mx.example.net\n"
      "Final-Recipient: rfc822; full@example.com\n"
      "Action: failed\n"
      "Status: 5.2.2\n"
      "Final-Recipient: rfc822; gone@example.com\n"
      "Original-Recipient: rfc822;gone@example.com\n"
      "Action: failed\n"
      "Status: 5.1.1\n"
      "--B--\n");
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->entries.size(), 2u);
  EXPECT_EQ(r->entries[0].recipient, "full@example.com");
  EXPECT_EQ(r->entries[0].reason, "mailboxfull");
  EXPECT_EQ(r->entries[1].recipient, "gone@example.com");
  EXPECT_EQ(r->entries[1].original_recipient, "gone@example.com");
  EXPECT_EQ(r->entries[1].reason, "userunknown");
}

// Regression (multipart_boundary_missing): a report whose boundary never occurs is read as
// one text, DSN fields included.
TEST(ReportParser, MultipartWhoseBoundaryNeverOccursIsReadAsText) {
  auto r = parse_feedback(
      "From: MAILER-DAEMON@mx.example.net\n"
      "Subject: Returned mail\n"
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/report; boundary=\"not-in-the-body\"\n"
      "\n"
      "   ----- The following addresses had permanent fatal errors -----\n"
      "<gone@example.com>\n"
      "\n"
      "Final-Recipient: RFC822; <gone@example.com>\n"
      "Action: failed\n"
      "Status: 5.1.1\n");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->kind, FeedbackKind::kBounce);
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].recipient, "gone@example.com");
  EXPECT_EQ(r->entries[0].status, "5.1.1");
  EXPECT_EQ(r->entries[0].reason, "userunknown");
}

// An SES notification mailed by SNS: JSON, with a line folded inside a string.
TEST(ReportParser, SesBounceNotificationIsReadFromItsJson) {
  auto r = parse_feedback(
      "From: no-reply@sns.example\n"
      "Subject: AWS Notification Message\n"
      "Content-Type: text/plain; charset=UTF-8\n"
      "\n"
      "{\"notificationType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Permanent\","
      "\"bouncedRecipients\":[{\"emailAddress\":\"gone@example.com\",\"action\":\"failed\","
      "\"status\":\"5.1.1\",\"diagnosticCode\":\"smtp; 550 5.1.1 user\n"
      " unknown\"}],\"reportingMTA\":\"dns; out.example.net\"}}\n"
      "\n"
      "--\n"
      "If you wish to stop receiving notifications, unsubscribe.\n");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->kind, FeedbackKind::kBounce);
  EXPECT_EQ(r->reporting_mta, "out.example.net");
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].recipient, "gone@example.com");
  EXPECT_EQ(r->entries[0].status, "5.1.1");
  EXPECT_EQ(r->entries[0].reply_code, 550);
  EXPECT_EQ(r->entries[0].diagnostic, "550 5.1.1 user unknown");
  EXPECT_EQ(r->entries[0].reason, "userunknown");
  EXPECT_TRUE(r->entries[0].hard);
}

// Exim names the command a reply answered: "does not exist" after MAIL FROM is our sender.
TEST(ReportParser, UnknownAddressInReplyToMailFromIsTheSenderRejected) {
  auto r = parse_feedback(
      "From: Mail Delivery System <Mailer-Daemon@mx.example.net>\n"
      "Subject: Mail delivery failed: returning message to sender\n"
      "\n"
      "This message was created automatically by mail delivery software.\n"
      "\n"
      "  someone@example.com\n"
      "    host mx.example.com [192.0.2.1]\n"
      "    SMTP error from remote mail server after MAIL FROM:<news@sender.example>:\n"
      "    553 5.1.0 sender.example does not exist\n");
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].recipient, "someone@example.com");
  EXPECT_EQ(r->entries[0].reason, "rejected");
  EXPECT_FALSE(r->entries[0].hard);
}

// A Postfix-style DSN with one recipient block, written for these tests.
std::string dsn_with(const std::string& block) {
  return "From: MAILER-DAEMON@mx.example.net\n"
         "Subject: Undelivered Mail Returned to Sender\n"
         "MIME-Version: 1.0\n"
         "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n"
         "\n"
         "--B\n"
         "Content-Type: message/delivery-status\n"
         "\n"
         "Reporting-MTA: dns; mx.example.net\n"
         "\n" +
         block + "--B--\n";
}

// Regression (success_reply_in_transcript_taken_for_the_failure): Postfix mails the session
// transcript of a failed submission; the replies that went well come before the one that failed.
TEST(ReportParser, SuccessRepliesInATranscriptAreNotTheFailure) {
  auto r = parse_feedback(
      "From: MAILER-DAEMON@mx.example.net\n"
      "To: postmaster@mx.example.net\n"
      "Subject: Postfix SMTP server: errors from client.example.net[192.0.2.5]\n"
      "\n"
      "Transcript of session follows.\n"
      "\n"
      " Out: 220 mx.example.net ESMTP\n"
      " In:  MAIL FROM:<news@sender.example>\n"
      " Out: 250 2.1.0 Ok\n"
      " In:  RCPT TO:<reader@example.com>\n"
      " Out: 250 2.1.5 Ok\n"
      " In:  DATA\n"
      " Out: 354 End data with <CR><LF>.<CR><LF>\n"
      " Out: 451 4.3.0 Error: queue file write error\n"
      " In:  QUIT\n"
      " Out: 221 2.0.0 Bye\n");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->kind, FeedbackKind::kBounce);
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].recipient, "reader@example.com");
  EXPECT_EQ(r->entries[0].reply_code, 451);
  EXPECT_EQ(r->entries[0].status, "4.3.0");
  EXPECT_EQ(r->entries[0].reason, "systemerror");
  EXPECT_FALSE(r->entries[0].hard);
}

// Postfix writes a local delivery program's exit status in its sysexits words.
TEST(ReportParser, LocalMailerExitWordingIsMailerError) {
  auto r =
      parse_feedback(dsn_with("Final-Recipient: rfc822; reader@example.com\n"
                              "Action: failed\n"
                              "Status: 4.3.0\n"
                              "Diagnostic-Code: x-unix; temporary failure\n"));
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].reason, "mailererror");
  EXPECT_FALSE(r->entries[0].hard);
  // What the program said about the mailbox still counts.
  r =
      parse_feedback(dsn_with("Final-Recipient: rfc822; reader@example.com\n"
                              "Action: failed\n"
                              "Status: 4.3.0\n"
                              "Diagnostic-Code: x-unix; /var/mail/reader: Disk quota exceeded\n"));
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].reason, "mailboxfull");
}

// A DSN that gives up on a host that never answered (X.4.1): the time in the queue ran out.
TEST(ReportParser, FailedDsnWithNoAnswerFromHostIsExpired) {
  auto r = parse_feedback(
      dsn_with("Final-Recipient: rfc822; reader@example.com\n"
               "Action: failed\n"
               "Status: 4.4.1\n"
               "Diagnostic-Code: X-Postfix; connect to mx.example.com[192.0.2.8]:25: Connection\n"
               "    timed out\n"));
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].reason, "expired");
  EXPECT_FALSE(r->entries[0].hard);
  // Another temporary code names its own cause; a lost connection stays a network error.
  r = parse_feedback(
      dsn_with("Final-Recipient: rfc822; reader@example.com\n"
               "Action: failed\n"
               "Status: 4.4.2\n"
               "Diagnostic-Code: X-Postfix; lost connection with mx.example.com[192.0.2.8]\n"
               "    while performing the HELO handshake\n"));
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].reason, "networkerror");
  // A free-form bounce's own words are not a DSN action: qmail's X.4.1 stays what it says.
  r = parse_feedback(
      "From: MAILER-DAEMON@mx.example.net\n"
      "To: news@sender.example\n"
      "Subject: failure notice\n"
      "\n"
      "This is a permanent error; I've given up. Sorry it didn't work out.\n"
      "\n"
      "<reader@example.com>:\n"
      "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n"
      "I'm not going to try again; this message has been in the queue too long.\n");
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].reason, "networkerror");
}

// A final free-form bounce of a connection that timed out at every attempt: expired. The same
// time-out in a delay notice is what the retries meet for now.
TEST(ReportParser, FinalBounceOfAConnectionThatTimedOutIsExpired) {
  auto r = parse_feedback(
      "From: MAILER-DAEMON@mx.example.net\n"
      "To: news@sender.example\n"
      "Subject: failure notice\n"
      "\n"
      "<reader@example.com>:\n"
      "unable to connect to remote server [192.0.2.8:25]: Operation timed\n"
      "out\n"
      "I'm not going to try again; this message has been in the queue too long.\n");
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].reason, "expired");
  EXPECT_FALSE(r->entries[0].hard);
  r = parse_feedback(
      dsn_with("Final-Recipient: rfc822; reader@example.com\n"
               "Action: delayed\n"
               "Status: 4.4.1\n"
               "Diagnostic-Code: X-Postfix; connect to mx.example.com[192.0.2.8]:25: Connection\n"
               "    timed out\n"));
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].reason, "networkerror");
}

// Sendmail's deferral names the name server that failed before it says how long it waited.
TEST(ReportParser, NameServerFailureOutlastingTheRetriesIsTheCause) {
  auto r = parse_feedback(
      dsn_with("Final-Recipient: RFC822; reader@example.com\n"
               "Action: failed\n"
               "Status: 4.4.7\n"
               "Diagnostic-Code: X-Unknown; <reader@example.com>... Deferred: Name server:\n"
               "    example.com.: host name lookup failure Message could not be delivered\n"
               "    for 5 hours\n"));
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].reason, "networkerror");
  EXPECT_FALSE(r->entries[0].hard);
}

// Regression (relay_prose_classified_instead_of_the_reply): Gmail's bounce of a reply from
// another server wraps it in "rejected by the recipient domain" prose; the reply decides.
TEST(ReportParser, GmailRelayedReplyIsClassifiedWithoutItsWrapper) {
  auto r = parse_feedback(
      "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n"
      "To: news@sender.example\n"
      "X-Failed-Recipients: reader@example.com\n"
      "Subject: Delivery Status Notification (Failure)\n"
      "\n"
      "Delivery to the following recipient failed permanently:\n"
      "\n"
      "     reader@example.com\n"
      "\n"
      "Technical details of permanent failure:\n"
      "Google tried to deliver your message, but it was rejected by the recipient domain. We\n"
      "recommend contacting the other email provider for further information about the cause\n"
      "of this error. The error that the other server returned was: 550 550 5.2.2 Mailbox\n"
      "full (state 14).\n");
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].recipient, "reader@example.com");
  EXPECT_EQ(r->entries[0].diagnostic, "550 550 5.2.2 Mailbox\nfull (state 14).");
  EXPECT_EQ(r->entries[0].reply_code, 550);
  EXPECT_EQ(r->entries[0].status, "5.2.2");
  EXPECT_EQ(r->entries[0].reason, "mailboxfull");
  // A reply no rule knows is not the wrapper's "filtered" either.
  std::string tls = R"(From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: news@sender.example
Subject: Delivery Status Notification (Failure)

Delivery to the following recipient failed permanently:

     reader@example.com

Technical details of permanent failure:
Google tried to deliver your message, but it was rejected by the recipient domain. The error
that the other server returned was: 500 Remote server does not support TLS (state 6).
)";
  r = parse_feedback(tls);
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].reason, "securityerror");
}

// ---- regression tests for faults found by testing ---------------------------------------------

// A DSN with one recipient block; `recipient_fields` are the block's lines before Action.
std::string one_block_dsn(const std::string& recipient_fields, const std::string& action = "failed",
                          const std::string& status = "5.1.1",
                          const std::string& diagnostic = "smtp; 550 5.1.1 user unknown") {
  return "From: MAILER-DAEMON@mx.example.net\n"
         "To: bounce@sender.example\n"
         "Subject: Undelivered Mail Returned to Sender\n"
         "MIME-Version: 1.0\n"
         "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n"
         "\n"
         "--B\n"
         "Content-Type: text/plain\n"
         "\n"
         "I could not deliver your message.\n"
         "--B\n"
         "Content-Type: message/delivery-status\n"
         "\n"
         "Reporting-MTA: dns; mx.example.net\n"
         "\n" +
         recipient_fields + "Action: " + action + "\nStatus: " + status +
         "\nDiagnostic-Code: " + diagnostic +
         "\n"
         "--B\n"
         "Content-Type: text/rfc822-headers\n"
         "\n"
         "Message-ID: <m1@sender.example>\n"
         "From: news@sender.example\n"
         "--B--\n";
}

TEST(ReportParserRegression, many_tiny_mime_parts_cut_at_boundary_limit) {
  // The DSN parts first, then 300,000 tiny parts (about 10 MB): only the lines up to the one
  // that would open part kMaxBoundaryLines + 1 are read.
  std::string head = one_block_dsn("Final-Recipient: rfc822; gone@example.com\n");
  head.resize(head.size() - std::string_view("--B--\n").size());
  const std::string part = "--B\nContent-Type: text/plain\n\nx\n";
  std::string raw = head;
  for (int i = 0; i < 300000; ++i) raw += part;
  raw += "--B--\n";
  // head has 3 lines starting with "--" (the three part boundaries).
  size_t cut = head.size() + (kMaxBoundaryLines - 3) * part.size();

  auto r = parse_feedback(raw);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->kind, FeedbackKind::kBounce);
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].recipient, "gone@example.com");
  EXPECT_EQ(r->entries[0].reason, "userunknown");
  EXPECT_EQ(r->notes, std::vector<std::string>{"message cut at byte " + std::to_string(cut) +
                                               " of " + std::to_string(raw.size()) +
                                               ": more than 2000 lines open MIME parts"});

  // Exactly at the limit nothing is cut.
  std::string at_limit = head;
  for (size_t i = 0; i < kMaxBoundaryLines - 4; ++i) at_limit += part;
  at_limit += "--B--\n";
  r = parse_feedback(at_limit);
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(r->notes.empty());
  ASSERT_EQ(r->entries.size(), 1u);
}

TEST(ReportParserRegression, huge_report_text_read_up_to_limit) {
  // A free-form bounce whose text goes on for 20 MB on one line: the recipient before it is
  // read, the text after the limit is not.
  std::string raw =
      "From: MAILER-DAEMON@mx.example.net\n"
      "To: bounce@sender.example\n"
      "Subject: failure notice\n"
      "\n"
      "<gone@example.com>:\n"
      "550 5.1.1 user unknown\n"
      "\n\n";
  raw += std::string(20 * 1024 * 1024, 'A');
  raw += "\n<other@example.com>:\n550 5.1.1 user unknown\n";
  auto r = parse_feedback(raw);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->kind, FeedbackKind::kBounce);
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].recipient, "gone@example.com");
  EXPECT_EQ(r->entries[0].reason, "userunknown");
  EXPECT_EQ(r->notes,
            std::vector<std::string>{"report text read up to 131072 bytes, the rest left out"});
}

TEST(ReportParserRegression, dsn_with_too_many_recipients_keeps_the_first) {
  std::string fields;
  for (size_t i = 0; i < kMaxEntries + 20; ++i) {
    fields += "Final-Recipient: rfc822; u" + std::to_string(i) +
              "@example.com\nAction: failed\nStatus: 5.1.1\n\n";
  }
  auto r = parse_feedback(one_block_dsn(fields + "Final-Recipient: rfc822; last@example.com\n"));
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->entries.size(), kMaxEntries);
  EXPECT_EQ(r->entries.back().recipient, "u499@example.com");
  EXPECT_EQ(r->notes, std::vector<std::string>{"recipients after the first 500 left out"});
}

TEST(ReportParserRegression, dsn_quoted_local_part_is_the_recipient) {
  struct Case {
    const char* field;
    const char* recipient;
  } cases[] = {
      {"rfc822; \"jane doe\"@good.test", "\"jane doe\"@good.test"},
      {"rfc822; \"a\\\"b\"@example.com", "\"a\\\"b\"@example.com"},
      {"RFC822; <\"Jane Doe\"@Good.Test>", "\"jane doe\"@good.test"},
      {"utf-8; j\xc3\xa9r\xc3\xb4me@example.com", "j\xc3\xa9r\xc3\xb4me@example.com"},
  };
  for (const auto& c : cases) {
    auto r = parse_feedback(one_block_dsn(std::string("Final-Recipient: ") + c.field + "\n"));
    ASSERT_TRUE(r.is_ok()) << c.field;
    EXPECT_EQ(r->kind, FeedbackKind::kBounce) << c.field;
    ASSERT_EQ(r->entries.size(), 1u) << c.field;
    EXPECT_EQ(r->entries[0].recipient, c.recipient);
    EXPECT_EQ(r->entries[0].reason, "userunknown") << c.field;
    EXPECT_TRUE(r->notes.empty()) << c.field;
  }
  // Original-Recipient is read the same way.
  auto r = parse_feedback(one_block_dsn("Original-Recipient: rfc822; \"jane doe\"@good.test\n"));
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].recipient, "\"jane doe\"@good.test");
  EXPECT_EQ(r->entries[0].original_recipient, "\"jane doe\"@good.test");
}

TEST(ReportParserRegression, dsn_invalid_recipient_is_not_read_as_another_address) {
  struct Case {
    const char* value;
    const char* shown;
    const char* why;
  } cases[] = {
      {"x\x01y@example.com", "x\\x01y@example.com",
       "local part contains control character 0x01, which needs quoting"},
      {"attacker victim@example.com", "attacker victim@example.com",
       "local part contains a space, which needs quoting"},
      {"x;victim@example.com", "x;victim@example.com",
       "local part contains ';', which needs quoting"},
      {"a@b@example.com", "a@b@example.com", "address has more than one @ (quote the local part)"},
      {"evil@example.com,victim@example.com", "evil@example.com,victim@example.com",
       "address has more than one @ (quote the local part)"},
  };
  for (const auto& c : cases) {
    auto r =
        parse_feedback(one_block_dsn(std::string("Final-Recipient: rfc822; ") + c.value + "\n"));
    ASSERT_TRUE(r.is_ok()) << c.shown;
    EXPECT_EQ(r->kind, FeedbackKind::kBounce) << c.shown;
    EXPECT_TRUE(r->entries.empty()) << c.shown << " read as " << r->entries[0].recipient;
    EXPECT_EQ(r->notes,
              std::vector<std::string>{std::string("Final-Recipient 'rfc822; ") + c.shown +
                                       "' is not one address (" + c.why + "): recipient left out"});
  }

  // The same field pasted into a free-form bounce's text: the text reader does not take the
  // address-shaped tail either.
  auto pasted = parse_feedback(
      "From: MAILER-DAEMON@mx.example.net\n"
      "To: bounce@sender.example\n"
      "Subject: failure notice\n"
      "\n"
      "Final-Recipient: rfc822; x;victim@example.com\n"
      "Action: failed\n"
      "Status: 5.1.1\n");
  ASSERT_TRUE(pasted.is_ok());
  EXPECT_EQ(pasted->kind, FeedbackKind::kBounce);
  EXPECT_TRUE(pasted->entries.empty()) << pasted->entries[0].recipient;

  // An invalid Final-Recipient beside a valid Original-Recipient: the original is the
  // recipient, and the note says why.
  auto r = parse_feedback(
      one_block_dsn("Final-Recipient: rfc822; x;victim@example.com\nOriginal-Recipient: rfc822; "
                    "gone@example.com\n"));
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].recipient, "gone@example.com");
  EXPECT_EQ(r->notes,
            std::vector<std::string>{"Final-Recipient 'rfc822; x;victim@example.com' is not one "
                                     "address (local part contains ';', which needs quoting)"});
}

// An ARF report whose Original-Rcpt-To fields are the given lines, about a message to
// returned-to@example.com.
std::string arf_with_rcpt_to(const std::string& fields) {
  return "From: abuse@isp.example\n"
         "To: fbl@bounces.test\n"
         "Subject: complaint\n"
         "MIME-Version: 1.0\n"
         "Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\n"
         "\n"
         "--b\n"
         "Content-Type: text/plain\n"
         "\n"
         "A complaint.\n"
         "--b\n"
         "Content-Type: message/feedback-report\n"
         "\n"
         "Feedback-Type: abuse\n"
         "User-Agent: isp-fbl/1.0\n"
         "Version: 1\n" +
         fields +
         "\n"
         "--b\n"
         "Content-Type: text/rfc822-headers\n"
         "\n"
         "From: news@sender.example\n"
         "To: returned-to@example.com\n"
         "Message-ID: <m1@sender.example>\n"
         "\n"
         "--b--\n";
}

TEST(ReportParserRegression, arf_original_rcpt_to_is_read_whole) {
  // One address per field, quoted local parts and angle brackets included.
  auto r = parse_feedback(arf_with_rcpt_to(
      "Original-Rcpt-To: \"Jane Doe\"@Example.com\nOriginal-Rcpt-To: <bob@example.com>\n"));
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->kind, FeedbackKind::kComplaint);
  ASSERT_EQ(r->entries.size(), 2u);
  EXPECT_EQ(r->entries[0].recipient, "\"jane doe\"@example.com");
  EXPECT_EQ(r->entries[1].recipient, "bob@example.com");
  EXPECT_TRUE(r->notes.empty());

  // A value that is not one address is not searched for an address-shaped piece (that piece
  // would be somebody else, complained about and suppressed): it is left out with a note, and
  // nothing stands in for it, neither the returned To nor "every recipient".
  r = parse_feedback(arf_with_rcpt_to("Original-Rcpt-To: x;victim@example.com\n"));
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(r->entries.empty()) << r->entries[0].recipient;
  EXPECT_TRUE(r->recipients_unreadable);
  EXPECT_EQ(r->notes, std::vector<std::string>{
                          "Original-Rcpt-To 'x;victim@example.com' is not one address (local part "
                          "contains ';', which needs quoting): left out"});
  r = parse_feedback(arf_with_rcpt_to("Original-Rcpt-To: rfc822; bob@example.com\n"));
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(r->entries.empty()) << r->entries[0].recipient;
  EXPECT_TRUE(r->recipients_unreadable);

  // Without Original-Rcpt-To, the returned message's To stands in when it is one mailbox.
  r = parse_feedback(arf_with_rcpt_to(""));
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].recipient, "returned-to@example.com");
  EXPECT_TRUE(r->entries[0].inferred);  // a guess, acted on only for a one-recipient message
  EXPECT_FALSE(r->recipients_unreadable);
}

// Regression (arf_returned_to_list_picks_first): a returned To that lists several recipients
// does not say which complained; its first address is not taken.
TEST(ReportParserRegression, arf_returned_to_list_names_nobody) {
  std::string report = arf_with_rcpt_to("");
  size_t to = report.find("To: returned-to@example.com");
  ASSERT_NE(to, std::string::npos);
  report.replace(to, std::strlen("To: returned-to@example.com"),
                 "To: alice@example.com, bob@example.com");
  auto r = parse_feedback(report);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->kind, FeedbackKind::kComplaint);
  EXPECT_TRUE(r->entries.empty()) << r->entries[0].recipient;
  EXPECT_FALSE(r->recipients_unreadable);
}

TEST(ReportParserRegression, ses_notification_recipient_is_read_whole) {
  auto notification = [](const std::string& a, const std::string& b) {
    return "From: no-reply@sns.example\n"
           "Subject: AWS Notification Message\n"
           "Content-Type: text/plain; charset=UTF-8\n"
           "\n"
           "{\"notificationType\":\"Complaint\",\"complaint\":{\"complainedRecipients\":["
           "{\"emailAddress\":\"" +
           a + "\"},{\"emailAddress\":\"" + b + "\"}]}}\n";
  };
  auto r = parse_feedback(notification("Jane Doe <Jane@Example.com>", "bob@example.com"));
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->kind, FeedbackKind::kComplaint);
  ASSERT_EQ(r->entries.size(), 2u);
  EXPECT_EQ(r->entries[0].recipient, "jane@example.com");
  EXPECT_EQ(r->entries[1].recipient, "bob@example.com");
  EXPECT_TRUE(r->notes.empty());
  // Two addresses in one value, in any form: neither is taken, the other recipient still is.
  for (const char* two :
       {"evil@example.com,victim@example.com", "<evil@example.com> <victim@example.com>",
        "evil@example.com <victim@example.com>", "evil@example.com, <victim@example.com>",
        "Evil <evil@example.com>, Vic <victim@example.com>", "To: <victim@example.com>",
        "x <evil@example.com> <victim@example.com>"}) {
    r = parse_feedback(notification(two, "bob@example.com"));
    ASSERT_TRUE(r.is_ok()) << two;
    ASSERT_EQ(r->entries.size(), 1u) << two << " read as " << r->entries[0].recipient;
    EXPECT_EQ(r->entries[0].recipient, "bob@example.com");
    ASSERT_EQ(r->notes.size(), 1u) << two;
    EXPECT_EQ(
        r->notes[0].rfind(
            std::string("recipient '") + two + "' of the SES notification is not one address (", 0),
        0u)
        << r->notes[0];
  }
}

TEST(ReportParserRegression, dsn_failed_with_success_status_is_not_a_bounce) {
  for (const char* action : {"failed", "delayed"}) {
    auto r = parse_feedback(one_block_dsn("Final-Recipient: rfc822; fine@example.com\n", action,
                                          "2.0.0", "smtp; 250 ok"));
    ASSERT_TRUE(r.is_ok());
    ASSERT_EQ(r->entries.size(), 1u);
    const auto& e = r->entries[0];
    EXPECT_EQ(e.action, "delivered") << action;
    EXPECT_EQ(e.reason, "delivered") << action;
    EXPECT_FALSE(e.hard) << action;
    EXPECT_EQ(e.bounce_type, "") << action;
    EXPECT_EQ(r->notes, std::vector<std::string>{"recipient fine@example.com: Action '" +
                                                 std::string(action) +
                                                 "' with success status 2.0.0: read as "
                                                 "delivered"});
  }
}

TEST(ReportParserRegression, dsn_delayed_with_permanent_status_is_soft) {
  auto r = parse_feedback(one_block_dsn("Final-Recipient: rfc822; slow@example.com\n", "delayed",
                                        "5.0.0", "smtp; 550 service busy"));
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].action, "delayed");
  EXPECT_EQ(r->entries[0].reason, "expired");
  EXPECT_FALSE(r->entries[0].hard);
  EXPECT_EQ(r->entries[0].bounce_type, "Transient");
}

TEST(ReportParserRegression, cr_only_line_ends_are_read_as_lf) {
  std::string raw = one_block_dsn("Final-Recipient: rfc822; gone@example.com\n");
  std::replace(raw.begin(), raw.end(), '\n', '\r');
  auto r = parse_feedback(raw);
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].recipient, "gone@example.com");
  EXPECT_EQ(r->entries[0].reason, "userunknown");
  EXPECT_EQ(r->original_message_id, "m1@sender.example");
}

}  // namespace
}  // namespace magnetic::feedback
