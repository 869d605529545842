// Inbound feedback: what a message sent back to us says about our recipients.
//
// parse_feedback reads one raw RFC 5322 message and tells whether it is a bounce (an RFC 3464
// DSN, or a bounce in the free-form text of an MTA or provider), a complaint (an RFC 5965
// feedback report), an automatic reply (RFC 3834), or none of these. For bounces each
// recipient is classified with the shared bounce rules (bounce_rules.h), so a DSN's
// Diagnostic-Code gets the same class as the same reply seen during delivery.
//
// Thread-safe: parse_feedback holds no state of its own (GMime is initialised once).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace magnetic::feedback {

enum class FeedbackKind {
  kBounce,     // a DSN or a free-form bounce: entries are the recipients it reports on
  kComplaint,  // an ARF report: entries are the complained-about recipients
  kAutoReply,  // an automatic reply (vacation): one entry, its author, reason "vacation"
  kOther,      // none of these: no entries
};
const char* feedback_kind_name(FeedbackKind kind);

// One recipient a report speaks of.
struct FeedbackEntry {
  std::string recipient;           // the failed (or complained-about) address, lower case
  std::string original_recipient;  // DSN Original-Recipient / ARF Original-Rcpt-To, if given
  std::string action;              // DSN Action: failed, delayed, delivered, relayed, expanded
  std::string status;              // enhanced status code "5.1.1", validated; "" if none
  int reply_code = 0;              // the SMTP reply code found in the diagnostic; 0 if none
  std::string diagnostic;          // Diagnostic-Code without its type, or the bounce's text
  std::string diagnostic_type;     // the Diagnostic-Code's type, lower case: "smtp", "x-unix"
  std::string remote_mta;          // DSN Remote-MTA without its type
  std::string reason;              // bounce class: "userunknown", ..., "feedback", "vacation"
  bool hard = false;               // the address is bad and should be suppressed
  std::string bounce_type;         // SES: Permanent, Transient, Undetermined ("" if no bounce)
  std::string bounce_subtype;      // SES: General, NoEmail, MailboxFull, ...
  std::string feedback_type;       // ARF Feedback-Type for a complaint: abuse, opt-out, ...
  bool after_data = false;         // the refusal answered DATA or the final dot, not RCPT
  // Read from the returned message's To, not from a field of the report: a guess, since a
  // message's To need not name the recipient it reached (Cc, Bcc, lists, several people).
  bool inferred = false;
};

struct FeedbackReport {
  FeedbackKind kind = FeedbackKind::kOther;
  std::vector<FeedbackEntry> entries;

  // Per-message fields of a DSN or ARF report, where present.
  std::string reporting_mta;       // Reporting-MTA without its type
  std::string arrival_date;        // DSN Arrival-Date or ARF Arrival-Date / Received-Date
  int64_t arrival_date_ms = 0;     // arrival_date as Unix milliseconds; 0 when unreadable
  std::string feedback_type;       // ARF: abuse, fraud, virus, other, not-spam, opt-out, ...
  std::string user_agent;          // ARF User-Agent
  std::string original_mail_from;  // ARF Original-Mail-From, else the returned Return-Path
  std::string source_ip;           // ARF Source-IP

  // The returned message (message/rfc822 or text/rfc822-headers part), where present.
  std::string original_message_id;  // its Message-ID, without the angle brackets
  // The VERP token of our envelope sender bounce+<token>@domain, found on the report's own
  // envelope headers (To, Delivered-To, X-Original-To) or on the returned Return-Path.
  std::string verp_token;

  // What the parser left out or refused, one sentence each, for the caller to log: a message
  // cut short (see kMaxBoundaryLines), a recipient field that is not one address, an entry whose
  // Action and Status disagree. Empty for an ordinary report.
  std::vector<std::string> notes;
  // The report named its recipients and none of them could be read (every Original-Rcpt-To
  // refused): it is not a report that names nobody, which concerns every recipient.
  bool recipients_unreadable = false;
};

// A message is read up to the line that would open its kMaxBoundaryLines-th MIME part (a line
// starting with "--"); the rest is left out and a note says where it was cut. GMime builds an
// object per part, so without a bound a 10 MB message of tiny parts costs hundreds of MB.
// Real DSNs and ARF reports have about a dozen such lines and put their report parts first,
// the returned message last, so what is cut is the tail of the returned message.
inline constexpr size_t kMaxBoundaryLines = 2000;
// The human-readable text of a report is read up to this many bytes; a bounce's own text is a
// few KB, and every step after it (lines, lower case, rule matching) copies it.
inline constexpr size_t kMaxReportText = 128 * 1024;
// A report names at most this many recipients; the rest are left out with a note. Our messages
// go to one recipient each (a raw message to a few dozen), and each entry is classified against
// the whole report text, so the work grows with entries times text.
inline constexpr size_t kMaxEntries = 500;

// Parses one raw message (CRLF or LF line ends; a message whose only line ends are CR is read
// as if they were LF). Fails only when the bytes are not a message at all; a message that is
// neither a bounce nor a complaint is a report of kind kOther.
Result<FeedbackReport> parse_feedback(std::string_view raw_message);

}  // namespace magnetic::feedback
