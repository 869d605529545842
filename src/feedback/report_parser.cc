// Feedback parsing: GMime for the MIME structure, hand-written readers for what is inside.
//
// Strategy, in order of trust:
//   1. An ARF report (message/feedback-report) is a complaint: its fields are read as they are.
//   2. A DSN (message/delivery-status, or the same fields pasted into a text part, as some
//      gateways do) is read per recipient block: Final-Recipient, Action, Status,
//      Diagnostic-Code, Remote-MTA.
//   3. An Amazon SES notification (the JSON that SNS mails out) is read field by field.
//   4. Otherwise a message that looks like a bounce (sent by a mailer daemon, a bounce-like
//      subject, an X-Failed-Recipients header) is read as free-form text: the human-readable
//      part up to where the returned message starts, addresses that open a line (qmail,
//      Exim, Sendmail, Gmail, Yahoo, ... all list the failed recipient that way) or, failing
//      that, any address that is not the sender's; each recipient's diagnostic is the text
//      that follows it up to the next recipient.
// The class of each recipient comes from the shared bounce rules, first from its own
// diagnostic, then, when that says nothing useful, from the whole human-readable text.
//
// The field readers are written by hand because GMime parses MIME structure and headers but
// not the bodies of message/delivery-status or message/feedback-report parts (RFC 3464 and
// RFC 5965 put header-like blocks in the body).
#include "feedback/report_parser.h"

#include <gmime/gmime.h>

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>

#include "base/printable.h"
#include "feedback/bounce_rules.h"
#include "mail/address.h"
#include "smtp/reply.h"

namespace magnetic::feedback {
namespace {

// ---- small text helpers ----------------------------------------------------------------------

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    std::string_view line =
        text.substr(start, nl == std::string_view::npos ? text.size() - start : nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.emplace_back(line);
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return lines;
}

bool is_local_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("._%+-=!#$&'*/?^`{|}~").find(c) != std::string_view::npos;
}
bool is_domain_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-';
}

struct FoundAddress {
  std::string address;  // lower case
  size_t begin = 0;     // offset of the first character in the scanned text
  size_t end = 0;
};

// Every address-shaped token in `text` (local@domain with a dot in the domain).
std::vector<FoundAddress> find_addresses(std::string_view text) {
  std::vector<FoundAddress> out;
  for (size_t at = text.find('@'); at != std::string_view::npos; at = text.find('@', at + 1)) {
    size_t b = at;
    while (b > 0 && is_local_char(text[b - 1])) --b;
    size_t e = at + 1;
    while (e < text.size() && is_domain_char(text[e])) ++e;
    while (e > at + 1 && (text[e - 1] == '.' || text[e - 1] == '-')) --e;
    // A leading '=' is usually quoted-printable debris, but "=?utf-8?..." is an encoded word.
    while (b < at && (text[b] == '.' || text[b] == '\'' ||
                      (text[b] == '=' && (b + 1 >= at || text[b + 1] != '?'))))
      ++b;
    std::string_view domain = text.substr(at + 1, e - at - 1);
    if (b == at || domain.find('.') == std::string_view::npos) continue;
    out.push_back({lower(text.substr(b, e - b)), b, e});
  }
  return out;
}

std::string first_address(std::string_view text) {
  auto found = find_addresses(text);
  return found.empty() ? std::string() : found.front().address;
}

// "rfc822; a@b" -> "a@b"; "smtp; 550 ..." -> "550 ...".
std::string_view strip_type(std::string_view value) {
  size_t semi = value.find(';');
  if (semi == std::string_view::npos || semi > 20) return trim(value);
  return trim(value.substr(semi + 1));
}

// ---- header-like blocks (DSN and ARF bodies) -------------------------------------------------

struct Field {
  std::string name;  // lower case
  std::string value;
};
using Block = std::vector<Field>;

const std::string* field(const Block& b, std::string_view name) {
  for (const auto& f : b)
    if (f.name == name) return &f.value;
  return nullptr;
}

// Splits a DSN/ARF body into blocks of fields separated by blank lines, unfolding
// continuation lines. Lines that are not fields are ignored.
std::vector<Block> read_blocks(std::string_view body) {
  std::vector<Block> blocks(1);
  for (const auto& raw : split_lines(body)) {
    std::string_view line = raw;
    if (trim(line).empty()) {
      if (!blocks.back().empty()) blocks.emplace_back();
      continue;
    }
    if ((line.front() == ' ' || line.front() == '\t') && !blocks.back().empty()) {
      blocks.back().back().value += " ";
      blocks.back().back().value += std::string(trim(line));
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > 40) continue;
    std::string_view name = line.substr(0, colon);
    if (name.find(' ') != std::string_view::npos) continue;
    std::string lc_name = lower(name);
    // Some MTAs run the recipient blocks together without the blank line between them: a
    // second recipient opens a block of its own.
    auto has = [&](std::string_view n) { return field(blocks.back(), n) != nullptr; };
    if (has("final-recipient") &&
        (lc_name == "final-recipient" ||
         (lc_name == "original-recipient" && (has("action") || has("status")))))
      blocks.emplace_back();
    blocks.back().push_back({lc_name, std::string(trim(line.substr(colon + 1)))});
  }
  if (blocks.back().empty()) blocks.pop_back();
  return blocks;
}

std::string field_or(const Block& b, std::string_view name) {
  const std::string* v = field(b, name);
  return v ? *v : std::string();
}

// ---- reply code and enhanced code inside a diagnostic ---------------------------------------

bool digit(char c) { return c >= '0' && c <= '9'; }

// The SMTP reply code in the text: three digits [2-5]xx standing alone, followed by a space,
// '-' or the end; skipping numbers that are part of an address, IP or date. The first failure
// code (4xx, 5xx) wins over success codes before it: a session transcript quotes the replies
// that went well before the one that failed.
int find_reply_code(std::string_view t) {
  int first = 0;
  for (size_t i = 0; i + 3 <= t.size(); ++i) {
    if (t[i] < '2' || t[i] > '5' || !digit(t[i + 1]) || !digit(t[i + 2])) continue;
    if (i > 0 && (digit(t[i - 1]) || t[i - 1] == '.' || t[i - 1] == ':' || t[i - 1] == '#' ||
                  is_domain_char(t[i - 1]) || t[i - 1] == '-'))
      continue;
    if (i + 3 < t.size() && t[i + 3] != ' ' && t[i + 3] != '-' && t[i + 3] != '\n' &&
        t[i + 3] != '\r')
      continue;
    int code = (t[i] - '0') * 100 + (t[i + 1] - '0') * 10 + (t[i + 2] - '0');
    if (t[i + 1] > '5') continue;  // 2xx-5xx with a second digit 0-5 (RFC 5321 4.2)
    if (code >= 400) return code;
    if (first == 0) first = code;
  }
  return first;
}

// The first valid enhanced status code in the text ("5.1.1"); its class must agree with the
// reply code when there is one.
std::string find_enhanced(std::string_view t, int reply_code) {
  for (size_t i = 0; i + 5 <= t.size(); ++i) {
    if (t[i] < '2' || t[i] > '5' || t[i + 1] != '.') continue;
    if (i > 0 && (digit(t[i - 1]) || t[i - 1] == '.')) continue;
    size_t j = i + 2;
    while (j < t.size() && digit(t[j])) ++j;
    if (j == i + 2 || j >= t.size() || t[j] != '.') continue;
    size_t k = j + 1;
    while (k < t.size() && digit(t[k])) ++k;
    if (k == j + 1 || (k < t.size() && (digit(t[k]) || t[k] == '.'))) continue;
    std::string code(t.substr(i, k - i));
    int cls = reply_code ? reply_code : (t[i] - '0') * 100;
    if (smtp::valid_enhanced_code(code, cls)) return code;
  }
  return "";
}

// ---- the MIME walk ---------------------------------------------------------------------------

struct Parts {
  std::string report_text;       // human-readable text parts before the returned message
  std::string delivery_status;   // message/delivery-status body
  std::string feedback_report;   // message/feedback-report body
  std::string returned_headers;  // headers of the returned message
  bool has_returned = false;
  // The returned message when it is itself a delivery report: a relay that bounced a bounce.
  std::string returned_report;
  bool text_cut = false;  // report_text reached kMaxReportText and the rest was left out
};

void add_text(Parts& parts, std::string_view text, bool separate) {
  if (parts.report_text.size() >= kMaxReportText) {
    parts.text_cut = parts.text_cut || !text.empty();
    return;
  }
  if (separate && !parts.report_text.empty()) parts.report_text += "\n";
  size_t room = kMaxReportText - std::min(kMaxReportText, parts.report_text.size());
  if (text.size() > room) {
    parts.text_cut = true;
    text = text.substr(0, room);
  }
  parts.report_text += text;
}

std::string part_content(GMimePart* part) {
  GMimeDataWrapper* content = g_mime_part_get_content(part);
  if (!content) return "";
  GMimeStream* mem = g_mime_stream_mem_new();
  g_mime_data_wrapper_write_to_stream(content, mem);
  GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
  std::string out(reinterpret_cast<const char*>(bytes->data), bytes->len);
  g_object_unref(mem);
  return out;
}

std::string text_of(GMimePart* part) {
  if (GMIME_IS_TEXT_PART(part)) {
    char* text = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
    if (text) {
      std::string out(text);
      g_free(text);
      return out;
    }
  }
  return part_content(part);
}

std::string headers_of(GMimeObject* object) {
  char* h = g_mime_object_get_headers(object, nullptr);
  std::string out = h ? h : "";
  g_free(h);
  return out;
}

// Crude tag stripping for a bounce that comes as HTML only; enough to find addresses and
// wording, not a renderer.
std::string strip_html(std::string_view html) {
  std::string out;
  bool in_tag = false;
  for (char c : html) {
    if (c == '<') {
      in_tag = true;
    } else if (c == '>') {
      in_tag = false;
      out.push_back(' ');
    } else if (!in_tag) {
      out.push_back(c);
    }
  }
  return out;
}

void walk(GMimeObject* object, Parts& parts, int depth) {
  if (depth > 8 || !object) return;
  GMimeContentType* ct = g_mime_object_get_content_type(object);
  std::string type =
      ct ? lower(g_mime_content_type_get_media_type(ct) ? g_mime_content_type_get_media_type(ct)
                                                        : "")
         : "";
  std::string sub = ct ? lower(g_mime_content_type_get_media_subtype(ct)
                                   ? g_mime_content_type_get_media_subtype(ct)
                                   : "")
                       : "";

  if (GMIME_IS_MULTIPART(object)) {
    GMimeMultipart* mp = GMIME_MULTIPART(object);
    int n = g_mime_multipart_get_count(mp);
    for (int i = 0; i < n; ++i) walk(g_mime_multipart_get_part(mp, i), parts, depth + 1);
    // A multipart whose boundary never occurs in its body (mangled by a gateway, or never
    // written) leaves the whole report in the prologue: read that as the report's text.
    if (n == 0 && !parts.has_returned) {
      if (const char* prologue = g_mime_multipart_get_prologue(mp)) add_text(parts, prologue, true);
    }
    return;
  }
  if (GMIME_IS_MESSAGE_PART(object)) {
    GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object));
    if (!inner) return;
    if (sub == "delivery-status" || sub == "global-delivery-status" || sub == "feedback-report") {
      // Parsed as a message by GMime: its "headers" are the first block of fields, the rest of
      // the blocks are in its body.
      std::string body = headers_of(GMIME_OBJECT(inner));
      GMimeObject* mime = g_mime_message_get_mime_part(inner);
      if (mime && GMIME_IS_PART(mime)) body += "\n" + part_content(GMIME_PART(mime));
      (sub == "feedback-report" ? parts.feedback_report : parts.delivery_status) += body;
      return;
    }
    if (!parts.has_returned) {
      parts.has_returned = true;
      parts.returned_headers = headers_of(GMIME_OBJECT(inner));
      GMimeObject* inner_mime = g_mime_message_get_mime_part(inner);
      GMimeContentType* inner_ct =
          inner_mime ? g_mime_object_get_content_type(inner_mime) : nullptr;
      const char* inner_sub = inner_ct ? g_mime_content_type_get_media_subtype(inner_ct) : nullptr;
      if (inner_sub && lower(inner_sub) == "report") {
        char* raw = g_mime_object_to_string(GMIME_OBJECT(inner), nullptr);
        if (raw) parts.returned_report = raw;
        g_free(raw);
      }
    }
    return;
  }
  if (!GMIME_IS_PART(object)) return;
  GMimePart* part = GMIME_PART(object);
  if (type == "message" && (sub == "delivery-status" || sub == "global-delivery-status")) {
    parts.delivery_status += part_content(part) + "\n";
  } else if (type == "message" && sub == "feedback-report") {
    parts.feedback_report += part_content(part) + "\n";
  } else if ((type == "text" && sub == "rfc822-headers") ||
             (type == "message" && (sub == "rfc822-headers" || sub == "rfc822"))) {
    if (!parts.has_returned) {
      parts.has_returned = true;
      parts.returned_headers = part_content(part);
    }
  } else if (type == "text" && !parts.has_returned) {
    if (sub == "html") {
      if (parts.report_text.empty()) add_text(parts, strip_html(text_of(part)), false);
    } else {
      add_text(parts, text_of(part), true);
    }
  } else if (type.empty() && !parts.has_returned) {
    add_text(parts, text_of(part), false);
  }
}

// ---- where the returned message starts in free text -----------------------------------------

bool starts_returned_message(const std::string& line_lc, bool prev_blank) {
  static constexpr std::string_view kMarkers[] = {
      "below this line is a copy of the message",
      "this is a copy of the message",
      "original message follows",
      "----- original message -----",
      "-----original message-----",
      "--- original message",
      "------ original message",
      "the original message headers",
      "original message headers",
      "--- the header of the original message",
      "message headers follow",
      "headers of your message follow",
      "unsent message below",
      "unsent message follows",
      "------- returned message",
      "this is the original message",
      "original message attached",
      "returned message follows",
      "content-type: message/rfc822",
      "your message reads (in part)",
      "--- copy of the message",
      "----- message header follows",
      "the header of the original message",
  };
  for (auto m : kMarkers)
    if (line_lc.find(m) != std::string::npos) return true;
  if (prev_blank && (line_lc.starts_with("return-path:") || line_lc.starts_with("received: from") ||
                     line_lc.starts_with("received: (qmail")))
    return true;
  return false;
}

// ---- building entries ------------------------------------------------------------------------

struct Context {
  std::vector<std::string> senders;      // addresses that are ours, never a failed recipient
  std::vector<std::string> report_from;  // the bounce's own From: the reporting daemon
  std::string whole_text;                // the human-readable text, for a second opinion
  // Address-shaped pieces of DSN recipient fields refused as invalid ("x;victim@example.com"
  // holds "victim@example.com"): never a recipient, even when the text repeats the field.
  std::vector<std::string> refused;
};

// `relaxed` is the second look at a text that named no recipient at all: a message sent to
// ourselves, or to a postmaster, fails like any other, so only the reporting daemon is skipped.
bool is_sender(const Context& cx, const std::string& a, bool relaxed) {
  if (std::find(cx.refused.begin(), cx.refused.end(), a) != cx.refused.end()) return true;
  if (a.starts_with("mailer-daemon@") || a.starts_with("mailer_daemon@") ||
      a.starts_with("mail-daemon@"))
    return true;
  if (std::find(cx.report_from.begin(), cx.report_from.end(), a) != cx.report_from.end())
    return true;
  if (relaxed) return false;
  return a.starts_with("postmaster@") ||
         std::find(cx.senders.begin(), cx.senders.end(), a) != cx.senders.end();
}

// The reply answered DATA or the final dot, as bounce texts and transcripts say it.
bool after_data(std::string_view diagnostic, std::string_view whole_text) {
  std::string t = normalize_diagnostic(std::string(diagnostic) + "\n" + std::string(whole_text));
  for (auto m : {"end of data", "after data", "after the data"})
    if (t.find(m) != std::string::npos) return true;

  // A session transcript shows it when this very reply follows ">>> DATA" and is the last
  // reply before the next command. A pipelining client sends DATA before it reads the RCPT
  // replies, so a refusal followed by another reply ("503 need RCPT") answered RCPT.
  std::string d = normalize_diagnostic(diagnostic);
  if (d.size() < 8) return false;
  constexpr std::string_view kData = ">>> data <<< ";
  for (size_t at = t.find(kData); at != std::string::npos; at = t.find(kData, at + 1)) {
    size_t end = at + kData.size();
    if (t.compare(end, d.size(), d) != 0) continue;
    size_t next_reply = t.find("<<< ", end + d.size());
    size_t next_command = t.find(">>> ", end + d.size());
    if (next_reply == std::string::npos || next_reply > next_command) return true;
  }
  return false;
}

// The reply answered MAIL FROM, as Exim ("after MAIL FROM:<...>:") and transcripts
// (">>> MAIL FROM:<...>" then "<<< 5xx") say it.
bool after_mail_from(std::string_view diagnostic) {
  std::string t = normalize_diagnostic(diagnostic);
  size_t at = t.find("mail from:");
  if (at == std::string::npos) return false;
  if (t.compare(at >= 6 ? at - 6 : 0, 6, "after ") == 0) return true;
  if (at >= 4 && t.compare(at - 4, 4, ">>> ") == 0) {
    // The reply that follows must be the next thing: no other command in between.
    size_t reply = t.find("<<< ", at);
    size_t command = t.find(">>> ", at + 4);
    return reply != std::string::npos && (command == std::string::npos || reply < command);
  }
  return false;
}

// A reason is only a guess when it rests on no wording at all.
bool weak(const std::string& reason) { return reason == "undefined" || reason == "onhold"; }

// `reported_action` says the entry's action is the report's own (a DSN or SES field), not one
// the free-form reader inferred from the wording.
void classify_entry(FeedbackEntry& e, const Context& cx, bool permanent, bool reported_action) {
  const BounceRules& rules = bounce_rules();
  std::string lc_action = lower(e.action);
  // "deliverable" is Postfix's answer to an address verification request (sendmail -bv).
  if (lc_action == "delivered" || lc_action == "relayed" || lc_action == "expanded" ||
      lc_action == "deliverable") {
    BounceClass c = rules.class_of("delivered", false);
    e.reason = c.reason;
    e.hard = false;
    return;
  }
  e.after_data = after_data(e.diagnostic, cx.whole_text);
  FailureFacts facts;
  facts.status = e.status;
  facts.reply_code = e.reply_code;
  facts.diagnostic = e.diagnostic;
  facts.permanent = permanent;
  facts.after_data = e.after_data;
  facts.after_mail_from = after_mail_from(e.diagnostic);
  facts.context = cx.whole_text;
  BounceClass c = rules.classify(facts);
  // An X-Unix diagnostic is the exit status of a local delivery program (sendmail's mailers):
  // when its text says nothing more, the program failed. Postfix writes the status as its
  // sysexits wording ("temporary failure", "service unavailable"), which reads like a failure
  // of the receiving system but is only the program's exit code.
  std::string by_diagnostic = rules.reason_from_text(e.diagnostic);
  bool local_mailer =
      e.diagnostic_type == "x-unix" && (by_diagnostic.empty() || by_diagnostic == "systemerror");
  if (local_mailer) c = rules.class_of("mailererror", permanent);
  // A domain that does not resolve for now is a lookup failure, not proof that it is gone:
  // a lasting "host unknown" comes with a permanent code.
  if (c.reason == "hostunknown" && !permanent) c = rules.class_of("networkerror", false);
  if (weak(c.reason) && !cx.whole_text.empty()) {
    std::string by_text = rules.reason_from_text(cx.whole_text);
    if (!by_text.empty()) c = rules.class_of(by_text, permanent);
  }
  // A DSN that says "delayed" is a delivery still being retried: its reason is the
  // time running out, whatever the last reply was.
  // Only a full mailbox or disk, or a failing local mailer, names a cause that outlasts the
  // retries more precisely than the time running out.
  if (lc_action == "delayed" && !local_mailer && by_diagnostic.empty())
    c = rules.class_of("expired", false);
  // A report that gives up on a host that never answered (a DSN "failed" with X.4.1, "no
  // answer from host" in RFC 3463, or a final report of a connection that timed out) never
  // reached the receiver while the message stayed in the queue: the time ran out, the network
  // failure is only what each attempt met. Other network failures (a lost connection, a
  // refused one, a name that does not resolve) name a cause of their own and keep it; so does
  // qmail's "(#4.4.1)", a code in free text rather than a DSN's verdict.
  bool gave_up = lc_action == "failed" && (reported_action || permanent);
  bool no_answer = (reported_action && e.status == "4.4.1") ||
                   normalize_diagnostic(e.diagnostic).find("timed out") != std::string::npos;
  if (gave_up && no_answer && c.reason == "networkerror") c = rules.class_of("expired", false);
  e.reason = c.reason;
  e.hard = c.hard;
  e.bounce_type = c.bounce_type;
  e.bounce_subtype = c.bounce_subtype;
}

// Gmail relays the receiving server's reply inside prose of its own ("... it was rejected by
// the recipient domain. ... The error that the other server returned was: 550 ..."). The prose
// is the same for every failure and reads like a filter's verdict; the reply after it is the
// diagnostic.
void unwrap_relayed_reply(FeedbackEntry& e) {
  static constexpr std::string_view kLead = "the error that the other server returned was:";
  std::string lc = lower(e.diagnostic);
  for (size_t i = 0; i < lc.size(); ++i)
    if (lc[i] == '\n' || lc[i] == '\r' || lc[i] == '\t') lc[i] = ' ';
  size_t at = lc.find(kLead);
  if (at == std::string::npos) return;
  std::string inner(trim(std::string_view(e.diagnostic).substr(at + kLead.size())));
  if (!inner.empty()) e.diagnostic = inner;
}

void fill_codes(FeedbackEntry& e) {
  unwrap_relayed_reply(e);
  if (e.reply_code == 0) e.reply_code = find_reply_code(e.diagnostic);
  if (e.status.empty()) e.status = find_enhanced(e.diagnostic, e.reply_code);

  // A generic DSN status ("5.0.0") says less than the code in the reply it reports.
  if (e.status.size() == 5 && e.status.ends_with(".0.0")) {
    std::string in_reply = find_enhanced(e.diagnostic, e.reply_code);
    if (!in_reply.empty() && in_reply[0] == e.status[0] && !in_reply.ends_with(".0.0"))
      e.status = in_reply;
  }
}

bool permanent_of(const FeedbackEntry& e, bool default_permanent) {
  if (!e.status.empty()) return e.status[0] == '5';
  if (e.reply_code) return e.reply_code >= 500;
  return default_permanent;
}

// One whole address, in one optional pair of angle brackets; lower case. See dsn_address.
Result<std::string> whole_address(std::string_view value) {
  std::string_view v = trim(value);
  if (v.size() >= 2 && v.front() == '<' && v.back() == '>') v = v.substr(1, v.size() - 2);
  // A utf-8 address (RFC 6533) may have a UTF-8 local part; plain rfc822 ones are refused by
  // the grammar if they are not ASCII, which is what an invalid one is.
  mail::AddressOptions options;
  options.smtputf8 = true;
  auto mailbox = mail::parse_address(v, options);
  if (!mailbox) return mailbox.status();
  return lower(mailbox->address());
}

// The one address a DSN recipient field names: "rfc822; jane@example.com" (RFC 3464 2.3.2:
// address-type ";" address). The address is taken whole with the RFC 5321 grammar, a quoted
// local part included ("\"jane doe\"@example.com"); one pair of angle brackets around it is
// tolerated. A value that is not one address (two words, a second '@', a ';' or a control
// character in the local part) is refused whole rather than searched for an address-shaped
// tail: such a tail is some other address, and bouncing it would suppress a stranger.
// Lower case, as every recipient of a report.
Result<std::string> dsn_address(std::string_view value) {
  std::string_view v = trim(value);
  // The type is an atom ("rfc822", "utf-8", "x-local"); a ';' after anything else is part of
  // what follows, and makes it invalid.
  if (size_t semi = v.find(';'); semi != std::string_view::npos && semi > 0 && semi <= 20) {
    std::string_view type = trim(v.substr(0, semi));
    bool atom = !type.empty() && std::all_of(type.begin(), type.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || digit(c) || c == '-';
    });
    if (atom) v = trim(v.substr(semi + 1));
  }
  return whole_address(v);
}

// DSN fields, in a message/delivery-status part or pasted into text. A recipient block that
// names no valid address is left out with a note; the address-shaped pieces of its refused
// values are added to `refused`, for the free-form reader to skip.
std::vector<FeedbackEntry> read_dsn(std::string_view body, FeedbackReport& report,
                                    std::vector<std::string>& refused) {
  std::vector<FeedbackEntry> out;
  for (const auto& block : read_blocks(body)) {
    if (const auto* v = field(block, "reporting-mta"); v && report.reporting_mta.empty())
      report.reporting_mta = std::string(strip_type(*v));
    if (const auto* v = field(block, "arrival-date"); v && report.arrival_date.empty())
      report.arrival_date = *v;
    const std::string* final_rcpt = field(block, "final-recipient");
    const std::string* orig_rcpt = field(block, "original-recipient");
    if (!final_rcpt && !orig_rcpt) continue;

    if (out.size() >= kMaxEntries) {
      report.notes.push_back("recipients after the first " + std::to_string(kMaxEntries) +
                             " left out");
      break;
    }
    FeedbackEntry e;
    std::string why;
    auto read = [&](const std::string* value, const char* name) {
      if (!value) return std::string();
      auto a = dsn_address(*value);
      if (a) return std::move(a).value();
      if (!why.empty()) why += "; ";
      why += std::string(name) + " '" + printable(*value) + "' is not one address (" +
             a.status().message() + ")";
      for (const auto& piece : find_addresses(*value)) refused.push_back(piece.address);
      return std::string();
    };
    e.recipient = read(final_rcpt, "Final-Recipient");
    e.original_recipient = read(orig_rcpt, "Original-Recipient");
    // Original-Recipient is the address as we gave it; it stands in for an unreadable
    // Final-Recipient, never the other way round.
    if (e.recipient.empty()) e.recipient = e.original_recipient;
    if (e.recipient.empty()) {
      report.notes.push_back(why + ": recipient left out");
      continue;
    }
    if (!why.empty()) report.notes.push_back(why);
    e.action = lower(trim(field_or(block, "action")));
    std::string diag_field = field_or(block, "diagnostic-code");
    e.diagnostic = std::string(strip_type(diag_field));
    if (size_t semi = diag_field.find(';'); semi != std::string::npos && semi <= 20)
      e.diagnostic_type = lower(trim(std::string_view(diag_field).substr(0, semi)));
    e.remote_mta = std::string(strip_type(field_or(block, "remote-mta")));
    e.reply_code = find_reply_code(e.diagnostic);
    std::string status(trim(field_or(block, "status")));
    std::string code = find_enhanced(status, 0);
    // A status that disagrees with the reply code in the diagnostic is not trusted.
    if (!code.empty() && (e.reply_code == 0 || smtp::valid_enhanced_code(code, e.reply_code)))
      e.status = code;
    fill_codes(e);
    out.push_back(std::move(e));
  }
  return out;
}

// Free-form bounce text: recipients are addresses that open a line, or failing that any
// address that is not ours; a recipient's diagnostic is the text after it.
std::vector<FeedbackEntry> read_text_bounce(const std::vector<std::string>& lines,
                                            const Context& cx, bool relaxed = false) {
  struct Hit {
    std::string address;
    size_t line;
    size_t column_end;
  };
  std::vector<Hit> leading, anywhere;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    for (const auto& a : find_addresses(line)) {
      if (is_sender(cx, a.address, relaxed)) continue;
      // Only the 256 bytes before the address are looked at: a label or "MAIL FROM:" is right
      // there, and copying the whole prefix for every address of a long line is quadratic. An
      // address further into its line does not open it.
      size_t window = a.begin > 256 ? a.begin - 256 : 0;
      std::string before = lower(line.substr(window, a.begin - window));
      // The address right after MAIL FROM is the envelope sender, not a recipient.
      if (before.ends_with("mail from:<") || before.ends_with("mail from: <") ||
          before.ends_with("from:<") || before.ends_with("from: ") || before.ends_with("from:") ||
          before.ends_with("sender: ") || before.ends_with("sender <"))
        continue;
      std::string_view lead = trim(before);
      while (!lead.empty() &&
             std::string_view("<\"'*-•>:([").find(lead.back()) != std::string_view::npos)
        lead.remove_suffix(1);
      lead = trim(lead);
      // Transcript lines: ">>> RCPT To:<a>", "<<< 550 <a>...", "554 <a>... Host unknown".
      while (!lead.empty() && (lead.front() == '<' || lead.front() == '>')) lead.remove_prefix(1);
      lead = trim(lead);
      if (lead.size() == 3 && find_reply_code(lead) != 0) lead = "";
      static constexpr std::string_view kLabels[] = {"",
                                                     "to",
                                                     "rcpt to",
                                                     "recipient",
                                                     "recipients",
                                                     "failed recipient",
                                                     "address",
                                                     "original-recipient",
                                                     "final-recipient",
                                                     "rfc822;",
                                                     "rfc822",
                                                     "user",
                                                     "mailbox",
                                                     "original recipient",
                                                     "invalid recipient",
                                                     "unknown user",
                                                     "delivery to"};
      bool opens = false;
      for (auto l : kLabels) opens = opens || (window == 0 && lower(lead) == l);
      (opens ? leading : anywhere).push_back({a.address, i, a.end});
    }
  }
  const auto& hits = leading.empty() ? anywhere : leading;

  std::vector<FeedbackEntry> out;
  std::vector<std::string> seen;
  for (size_t h = 0; h < hits.size(); ++h) {
    if (std::find(seen.begin(), seen.end(), hits[h].address) != seen.end()) continue;
    if (seen.size() >= kMaxEntries) break;
    seen.push_back(hits[h].address);

    // The diagnostic: the rest of the line, then the following lines up to the next
    // recipient (a different address opening a line) or a run of two blank lines.
    size_t stop = lines.size();
    for (size_t k = h + 1; k < hits.size(); ++k) {
      if (hits[k].address != hits[h].address && hits[k].line > hits[h].line) {
        stop = hits[k].line;
        break;
      }
    }
    stop = std::min(stop, hits[h].line + 12);
    std::string diag(lines[hits[h].line].substr(hits[h].column_end));
    int blanks = 0;
    for (size_t k = hits[h].line + 1; k < stop; ++k) {
      if (trim(lines[k]).empty()) {
        if (++blanks == 2 && !trim(diag).empty()) break;
        continue;
      }
      blanks = 0;
      diag += "\n" + lines[k];
    }

    // A text that names the recipient first and quotes the reply later ("554 5.3.0 <rcpt>:
    // ...") has the better diagnostic on the later line, the one with a reply code.
    if (find_reply_code(diag) == 0) {
      for (size_t k = h + 1; k < hits.size(); ++k) {
        if (hits[k].address != hits[h].address || hits[k].line == hits[h].line) continue;
        const std::string& quoted = lines[hits[k].line];
        if (find_reply_code(quoted) == 0) continue;
        diag = quoted;
        for (size_t n = hits[k].line + 1; n < std::min(lines.size(), hits[k].line + 4); ++n) {
          if (trim(lines[n]).empty()) break;
          diag += "\n" + lines[n];
        }
        break;
      }
    }

    FeedbackEntry e;
    e.recipient = hits[h].address;
    e.diagnostic = std::string(trim(diag));
    while (!e.diagnostic.empty() &&
           std::string_view(">:.,)\"' \t\r\n").find(e.diagnostic.front()) != std::string_view::npos)
      e.diagnostic.erase(0, 1);
    fill_codes(e);
    out.push_back(std::move(e));
  }
  return out;
}

// ---- Amazon SES notifications ---------------------------------------------------------------

// The JSON object that opens `text`, or null. SNS folds long lines inside the JSON as mail
// headers are folded (line break, then a space), which is not valid JSON: unfolded first.
nlohmann::json ses_notification(std::string_view text) {
  size_t open = text.find('{');
  if (open == std::string_view::npos || !trim(text.substr(0, open)).empty()) return nullptr;
  if (text.find("\"notificationType\"") == std::string_view::npos) return nullptr;
  std::string body;
  for (size_t i = open; i < text.size(); ++i) {
    if (text[i] == '\r') continue;
    if (text[i] == '\n' && i + 1 < text.size() && text[i + 1] == ' ') continue;
    body.push_back(text[i]);
  }
  // The object ends at the brace that balances the first one, outside strings.
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}' && --depth == 0) {
      nlohmann::json j = nlohmann::json::parse(body.substr(0, i + 1), nullptr, false);
      return j.is_object() ? j : nullptr;
    }
  }
  return nullptr;
}

std::string json_string(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Entries of an SES Bounce, Delivery or Complaint notification; false when `j` is none.
// A recipient of an SES notification: an address, or a mailbox with a display name ("Jane
// <jane@example.com>"), read whole; lower case, or "" with a note when it is neither.
std::string ses_address(const std::string& value, FeedbackReport& report) {
  auto mailbox = mail::parse_mailbox(value);
  if (mailbox) return lower(mailbox->address());
  report.notes.push_back("recipient '" + printable(value) +
                         "' of the SES notification is not one address (" +
                         mailbox.status().message() + "): left out");
  return "";
}

bool read_ses(const nlohmann::json& j, FeedbackReport& report) {
  std::string type = json_string(j, "notificationType");
  auto section = [&](const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_object() ? *it : nlohmann::json::object();
  };
  if (type == "Bounce") {
    nlohmann::json bounce = section("bounce");
    report.reporting_mta = std::string(strip_type(json_string(bounce, "reportingMTA")));
    auto list = bounce.find("bouncedRecipients");
    if (list == bounce.end() || !list->is_array()) return false;
    for (const auto& r : *list) {
      if (!r.is_object()) continue;
      FeedbackEntry e;
      e.recipient = ses_address(json_string(r, "emailAddress"), report);
      if (e.recipient.empty()) continue;
      e.action = lower(json_string(r, "action"));
      e.diagnostic = std::string(strip_type(json_string(r, "diagnosticCode")));
      e.reply_code = find_reply_code(e.diagnostic);
      std::string code = find_enhanced(json_string(r, "status"), 0);
      if (!code.empty() && (e.reply_code == 0 || smtp::valid_enhanced_code(code, e.reply_code)))
        e.status = code;
      fill_codes(e);
      report.entries.push_back(std::move(e));
    }
    report.kind = FeedbackKind::kBounce;
    return true;
  }
  if (type == "Delivery") {
    nlohmann::json delivery = section("delivery");
    report.reporting_mta = json_string(delivery, "reportingMTA");
    auto list = delivery.find("recipients");
    if (list == delivery.end() || !list->is_array()) return false;
    for (const auto& r : *list) {
      if (!r.is_string()) continue;
      FeedbackEntry e;
      e.recipient = ses_address(r.get<std::string>(), report);
      if (e.recipient.empty()) continue;
      e.action = "delivered";
      e.diagnostic = json_string(delivery, "smtpResponse");
      fill_codes(e);
      report.entries.push_back(std::move(e));
    }
    report.kind = FeedbackKind::kBounce;
    return true;
  }
  if (type == "Complaint") {
    nlohmann::json complaint = section("complaint");
    report.feedback_type = lower(json_string(complaint, "complaintFeedbackType"));
    if (report.feedback_type.empty()) report.feedback_type = "abuse";
    report.user_agent = json_string(complaint, "userAgent");
    auto list = complaint.find("complainedRecipients");
    if (list == complaint.end() || !list->is_array()) return false;
    for (const auto& r : *list) {
      if (!r.is_object()) continue;
      FeedbackEntry e;
      e.recipient = ses_address(json_string(r, "emailAddress"), report);
      if (e.recipient.empty()) continue;
      e.reason = "feedback";
      e.feedback_type = report.feedback_type;
      report.entries.push_back(std::move(e));
    }
    report.kind = FeedbackKind::kComplaint;
    return true;
  }
  return false;
}

bool looks_like_bounce(GMimeMessage* msg, const std::string& text_lc) {
  GMimeObject* obj = GMIME_OBJECT(msg);
  if (g_mime_object_get_header(obj, "X-Failed-Recipients")) return true;
  std::string from = lower(headers_of(obj));
  const char* subj = g_mime_message_get_subject(msg);
  std::string subject = lower(subj ? subj : "");
  std::string from_addr;
  if (const char* f = g_mime_object_get_header(obj, "From")) from_addr = lower(f);
  static constexpr std::string_view kDaemons[] = {
      "mailer-daemon", "postmaster",         "mail delivery", "mailer_daemon",
      "mail-daemon",   "delivery subsystem", "maildelivery"};
  for (auto d : kDaemons)
    if (from_addr.find(d) != std::string::npos) return true;
  static constexpr std::string_view kSubjects[] = {"undeliver",
                                                   "delivery status",
                                                   "delivery fail",
                                                   "failure notice",
                                                   "returned mail",
                                                   "mail delivery",
                                                   "delivery notification",
                                                   "could not be delivered",
                                                   "not delivered",
                                                   "undelivered",
                                                   "nondeliverable",
                                                   "non-deliverable",
                                                   "delivery report",
                                                   "mail failure",
                                                   "rejected",
                                                   "delivery problem",
                                                   "warning: could not send",
                                                   "error sending",
                                                   "bounce"};
  for (auto s : kSubjects)
    if (subject.find(s) != std::string::npos) return true;
  static constexpr std::string_view kBodies[] = {
      "could not be delivered", "was not delivered", "delivery has failed", "permanent error",
      "undeliverable", "unable to deliver", "delivery to the following", "following address",
      "following recipient",
      // A list manager that refuses a post returns it as well.
      "not a member of this mailing list"};
  for (auto s : kBodies)
    if (text_lc.find(s) != std::string::npos) return true;
  return false;
}

bool looks_like_auto_reply(GMimeMessage* msg) {
  GMimeObject* obj = GMIME_OBJECT(msg);
  if (const char* v = g_mime_object_get_header(obj, "Auto-Submitted")) {
    std::string a = lower(v);
    if (a.starts_with("auto-replied")) return true;
  }
  if (g_mime_object_get_header(obj, "X-Autoreply") ||
      g_mime_object_get_header(obj, "X-Autorespond"))
    return true;
  const char* subj = g_mime_message_get_subject(msg);
  std::string subject = lower(subj ? subj : "");
  static constexpr std::string_view kSubjects[] = {"automatic reply", "auto:",      "out of office",
                                                   "away from",       "vacation",   "autoreply",
                                                   "auto-reply",      "abwesenheit"};
  for (auto s : kSubjects)
    if (subject.find(s) != std::string::npos) return true;
  return false;
}

std::string header_value(std::string_view headers, std::string_view name) {
  for (const auto& b : read_blocks(headers)) {
    if (const auto* v = field(b, lower(name))) return *v;
  }
  return "";
}

std::string verp_token_in(std::string_view text) {
  for (const auto& a : find_addresses(text)) {
    if (a.address.starts_with("bounce+")) {
      size_t at = a.address.find('@');
      return a.address.substr(7, at - 7);
    }
  }
  return "";
}

GMimeMessage* parse_message(std::string_view raw) {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
  GMimeStream* stream = g_mime_stream_mem_new_with_buffer(raw.data(), raw.size());
  GMimeParser* parser = g_mime_parser_new_with_stream(stream);
  GMimeMessage* msg = g_mime_parser_construct_message(parser, nullptr);
  g_object_unref(parser);
  g_object_unref(stream);
  return msg;
}

}  // namespace

const char* feedback_kind_name(FeedbackKind kind) {
  switch (kind) {
    case FeedbackKind::kBounce:
      return "bounce";
    case FeedbackKind::kComplaint:
      return "complaint";
    case FeedbackKind::kAutoReply:
      return "autoreply";
    case FeedbackKind::kOther:
      return "other";
  }
  return "other";
}

namespace {
Result<FeedbackReport> parse_report(std::string_view raw_message, int depth);
}  // namespace

namespace {

// Bytes of `raw` up to the line that would open the (kMaxBoundaryLines + 1)-th MIME part; all
// of it when there are fewer such lines. Cutting, rather than refusing the message, keeps the
// report parts that come first: an odd but genuine bounce is still read, and a flood of parts
// costs one pass over the bytes.
size_t bounded_length(std::string_view raw) {
  size_t lines = 0;
  for (size_t pos = 0; pos < raw.size();) {
    if (raw.compare(pos, 2, "--") == 0 && ++lines > kMaxBoundaryLines) return pos;
    size_t nl = raw.find('\n', pos);
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return raw.size();
}

}  // namespace

Result<FeedbackReport> parse_feedback(std::string_view raw_message) {
  // A message whose only line ends are CR (old Mac files) would be one long header line.
  std::string lf_ends;
  if (raw_message.find('\n') == std::string_view::npos &&
      raw_message.find('\r') != std::string_view::npos) {
    lf_ends.assign(raw_message);
    std::replace(lf_ends.begin(), lf_ends.end(), '\r', '\n');
    raw_message = lf_ends;
  }
  size_t length = bounded_length(raw_message);
  auto report = parse_report(raw_message.substr(0, length), 0);
  if (report && length < raw_message.size()) {
    report->notes.push_back("message cut at byte " + std::to_string(length) + " of " +
                            std::to_string(raw_message.size()) + ": more than " +
                            std::to_string(kMaxBoundaryLines) + " lines open MIME parts");
  }
  if (report && !report->arrival_date.empty()) {
    // GMime reads RFC 5322 dates, with the liberties real reports take.
    GDateTime* t = g_mime_utils_header_decode_date(report->arrival_date.c_str());
    if (t) {
      report->arrival_date_ms = static_cast<int64_t>(g_date_time_to_unix(t)) * 1000 +
                                g_date_time_get_microsecond(t) / 1000;
      g_date_time_unref(t);
    }
  }
  return report;
}

namespace {
Result<FeedbackReport> parse_report(std::string_view raw_message, int depth) {
  GMimeMessage* msg = parse_message(raw_message);
  if (!msg) return Status::invalid("not an RFC 5322 message");
  struct Unref {
    GMimeMessage* m;
    ~Unref() { g_object_unref(m); }
  } unref{msg};

  FeedbackReport report;
  Parts parts;
  walk(g_mime_message_get_mime_part(msg), parts, 0);
  if (parts.text_cut) {
    report.notes.push_back("report text read up to " + std::to_string(kMaxReportText) +
                           " bytes, the rest left out");
  }
  std::string own_headers = headers_of(GMIME_OBJECT(msg));

  // Who we are: the report's own To (our envelope sender) and the returned message's sender.
  Context cx;
  for (const auto& a : find_addresses(header_value(own_headers, "To")))
    cx.senders.push_back(a.address);
  for (const auto& a : find_addresses(header_value(own_headers, "From")))
    cx.report_from.push_back(a.address);
  std::string returned_from = header_value(parts.returned_headers, "From");
  std::string returned_path = header_value(parts.returned_headers, "Return-Path");
  for (const auto& a : find_addresses(returned_from)) cx.senders.push_back(a.address);
  for (const auto& a : find_addresses(returned_path)) cx.senders.push_back(a.address);

  // The returned message's identity and our VERP token.
  std::string mid = std::string(trim(header_value(parts.returned_headers, "Message-ID")));
  if (mid.size() > 2 && mid.front() == '<' && mid.back() == '>')
    mid = mid.substr(1, mid.size() - 2);
  report.original_message_id = mid;
  for (auto name : {"To", "Delivered-To", "X-Original-To", "Envelope-To"}) {
    if (!report.verp_token.empty()) break;
    report.verp_token = verp_token_in(header_value(own_headers, name));
  }
  if (report.verp_token.empty()) report.verp_token = verp_token_in(returned_path);

  // 1. A complaint: an ARF report, or Hotmail's older form (the complained-about message
  // attached to a mail whose subject says so).
  const char* subject_raw = g_mime_message_get_subject(msg);
  bool hotmail_style = parts.has_returned && subject_raw &&
                       lower(subject_raw).find("complaint about message") != std::string::npos;
  if (hotmail_style && parts.feedback_report.empty())
    parts.feedback_report = "Feedback-Type: abuse\n";
  // A mail whose subject is only "unsubscribe" answers our List-Unsubscribe mailto: an opt-out
  // by its author.
  if (parts.feedback_report.empty() && subject_raw && trim(lower(subject_raw)) == "unsubscribe") {
    report.kind = FeedbackKind::kComplaint;
    report.feedback_type = "opt-out";
    FeedbackEntry e;
    e.recipient = first_address(header_value(own_headers, "From"));
    e.reason = "feedback";
    e.feedback_type = report.feedback_type;
    if (!e.recipient.empty()) report.entries.push_back(std::move(e));
    return report;
  }
  if (!parts.feedback_report.empty()) {
    report.kind = FeedbackKind::kComplaint;
    std::vector<std::string> rcpts;
    bool from_field = false;
    bool to_inferred = false;
    for (const auto& block : read_blocks(parts.feedback_report)) {
      for (const auto& f : block) {
        if (f.name == "feedback-type" && report.feedback_type.empty())
          report.feedback_type = lower(trim(f.value));
        else if (f.name == "user-agent")
          report.user_agent = f.value;
        else if (f.name == "original-mail-from")
          report.original_mail_from = first_address(f.value);
        else if (f.name == "arrival-date" || f.name == "received-date")
          report.arrival_date = f.value;
        else if (f.name == "reporting-mta")
          report.reporting_mta = std::string(strip_type(f.value));
        else if (f.name == "source-ip")
          report.source_ip = std::string(trim(f.value.substr(0, f.value.find(' '))));
        else if (f.name == "original-rcpt-to") {
          // RFC 5965 3.2: one addr-spec per field (no address type), read whole as a DSN
          // recipient is; a value that is not one address is left out with a note, never
          // searched for a piece.
          auto a = whole_address(f.value);
          from_field = true;
          if (a) {
            if (rcpts.size() < kMaxEntries) rcpts.push_back(std::move(a).value());
          } else {
            report.notes.push_back("Original-Rcpt-To '" + printable(f.value) +
                                   "' is not one address (" + a.status().message() + "): left out");
          }
        }
      }
    }
    if (rcpts.empty() && from_field) {
      // Named, but unreadable: no stand-in, and not "names nobody" either.
      report.recipients_unreadable = true;
    } else if (rcpts.empty()) {
      // No Original-Rcpt-To: the returned message's To, when it is one mailbox read whole (a
      // list does not say which of its recipients complained).
      if (auto to = mail::parse_mailbox(header_value(parts.returned_headers, "To"))) {
        rcpts.push_back(lower(to->address()));
        to_inferred = true;
      }
    }
    if (report.feedback_type.empty()) report.feedback_type = "other";
    for (const auto& a : rcpts) {
      FeedbackEntry e;
      e.recipient = a;
      if (from_field) e.original_recipient = a;
      e.inferred = to_inferred;
      e.reason = "feedback";
      e.feedback_type = report.feedback_type;
      report.entries.push_back(std::move(e));
    }
    return report;
  }

  // The human-readable text, cut where the returned message starts.
  std::vector<std::string> lines;
  {
    bool prev_blank = false;
    bool first = true;
    for (auto& line : split_lines(parts.report_text)) {
      std::string lc = lower(line);
      if (!first && starts_returned_message(lc, prev_blank)) break;
      first = false;
      prev_blank = trim(line).empty();
      lines.push_back(std::move(line));
    }
  }
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  cx.whole_text = text;

  // 2. A DSN, in its own part or pasted into the text.
  std::vector<FeedbackEntry> entries = read_dsn(parts.delivery_status, report, cx.refused);
  if (entries.empty()) {
    std::string lc = lower(text);
    if (lc.find("final-recipient:") != std::string::npos ||
        lc.find("original-recipient:") != std::string::npos)
      entries = read_dsn(text, report, cx.refused);
  }
  // A report that returns another report and names no recipient of its own reports on the
  // inner one's recipients.
  if (entries.empty() && !parts.returned_report.empty() && depth == 0 &&
      read_text_bounce(lines, cx).empty()) {
    auto inner = parse_report(parts.returned_report, depth + 1);
    if (inner && inner->kind == FeedbackKind::kBounce && !inner->entries.empty()) return inner;
  }
  if (!entries.empty()) {
    // Where the DSN's own diagnostic is empty, the text beside it may say more.
    auto from_text = read_text_bounce(lines, cx);
    for (auto& e : entries) {
      if (e.diagnostic.empty()) {
        for (const auto& t : from_text) {
          if (t.recipient == e.recipient) {
            e.diagnostic = t.diagnostic;
            fill_codes(e);
          }
        }
      }
      // A status of class 2 is a success whatever the Action says: the entry is read as
      // delivered, so nothing is bounced or suppressed on a report that contradicts itself.
      // The other contradictions keep their Action: "delayed" with a 5.x.x status is a
      // delivery still being retried (the status is the last attempt's reply, and a later
      // report will give the verdict), read as soft; "failed" with 4.x.x gave up on a
      // temporary failure, also soft; "delivered", "relayed" or "expanded" with a failure
      // status stays delivered, the side on which nothing is suppressed.
      if (!e.status.empty() && e.status[0] == '2' &&
          (e.action.empty() || e.action == "failed" || e.action == "delayed")) {
        report.notes.push_back("recipient " + e.recipient + ": Action '" + e.action +
                               "' with success status " + e.status + ": read as delivered");
        e.action = "delivered";
      }
      bool failed = e.action.empty() || e.action == "failed";
      classify_entry(e, cx, permanent_of(e, failed) && e.action != "delayed", true);
    }
    report.kind = FeedbackKind::kBounce;
    report.entries = std::move(entries);
    return report;
  }

  // 3. An SES notification.
  if (nlohmann::json ses = ses_notification(text); !ses.is_null()) {
    FeedbackReport from_ses = report;
    if (read_ses(ses, from_ses)) {
      for (auto& e : from_ses.entries) {
        if (from_ses.kind != FeedbackKind::kBounce) break;
        bool failed = e.action.empty() || e.action == "failed";
        classify_entry(e, cx, permanent_of(e, failed) && e.action != "delayed", true);
      }
      return from_ses;
    }
  }

  // 4. A free-form bounce.
  if (!looks_like_bounce(msg, lower(text))) {
    // 5. Not a bounce: an automatic reply; its author is the recipient that answered.
    if (looks_like_auto_reply(msg)) {
      report.kind = FeedbackKind::kAutoReply;
      FeedbackEntry e;
      e.recipient = first_address(header_value(own_headers, "From"));
      e.reason = "vacation";
      if (!e.recipient.empty()) report.entries.push_back(std::move(e));
      return report;
    }
    return report;
  }
  // Recipients: the text, else the header that lists them, else the text once more without
  // skipping our own addresses, else the returned message's To.
  entries = read_text_bounce(lines, cx);
  auto first_of = [&cx](const std::string& header, bool inferred) {
    std::vector<FeedbackEntry> out;
    for (const auto& a : find_addresses(header)) {
      if (std::find(cx.refused.begin(), cx.refused.end(), a.address) != cx.refused.end()) continue;
      FeedbackEntry e;
      e.recipient = a.address;
      e.inferred = inferred;
      out.push_back(std::move(e));
      break;
    }
    return out;
  };
  if (entries.empty()) entries = first_of(header_value(own_headers, "X-Failed-Recipients"), false);
  if (entries.empty()) entries = read_text_bounce(lines, cx, true);
  if (entries.empty()) entries = first_of(header_value(parts.returned_headers, "To"), true);
  std::string lc = lower(text);
  bool temporary = lc.find("temporary") != std::string::npos ||
                   lc.find("will keep trying") != std::string::npos ||
                   lc.find("delivery attempts will continue") != std::string::npos;
  for (auto& e : entries) {
    if (temporary && e.status.empty() && e.reply_code == 0)
      e.action = "delayed";
    else
      e.action = "failed";
    classify_entry(e, cx, permanent_of(e, !temporary), false);
  }
  report.kind = FeedbackKind::kBounce;
  report.entries = std::move(entries);
  return report;
}

}  // namespace

}  // namespace magnetic::feedback
