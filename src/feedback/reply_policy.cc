#include "feedback/reply_policy.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

namespace magnetic::feedback {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return out;
}

bool contains_any(const std::string& text, std::initializer_list<std::string_view> words) {
  for (auto w : words) {
    if (text.find(w) != std::string::npos) return true;
  }
  return false;
}

// Classes from words in the diagnostic text, most specific first. The text is consulted
// after the enhanced code only where the code is generic (x.0.0, x.7.x, x.5.x).
std::string reason_from_text(const std::string& t) {
  // Block lists first: their names ("Spamhaus") contain words of the spam class.
  if (contains_any(t, {"blacklist", "blocklist", "block list", "black list", "spamhaus", "rbl",
                       "listed", "blocked"})) {
    return "blocked";
  }
  if (contains_any(t, {"spam", "bulk mail", "junk", "unsolicited"})) return "spamdetected";
  if (contains_any(t, {"virus", "malware"})) return "virusdetected";
  if (contains_any(t, {"reputation"})) return "badreputation";
  if (contains_any(t, {"spf", "dkim", "dmarc", "authentication", "unauthenticated"}))
    return "authfailure";
  if (contains_any(t, {"ptr", "reverse dns", "rdns"})) return "requireptr";
  if (contains_any(t, {"too many connections", "too many concurrent", "connection limit"}))
    return "toomanyconn";
  // "try again later" alone is not here: most transient replies say it, whatever the cause.
  if (contains_any(t, {"rate limit", "too many messages", "too fast", "throttl",
                       "temporarily deferred", "unusual rate", "sending rate"})) {
    return "speeding";
  }
  if (contains_any(t, {"user unknown", "unknown user", "no such user", "does not exist",
                       "recipient not found", "invalid recipient", "unknown recipient",
                       "no mailbox", "mailbox unavailable", "address rejected", "not found"})) {
    return "userunknown";
  }
  if (contains_any(t, {"mailbox full", "over quota", "quota exceeded", "mailbox is full",
                       "insufficient storage"})) {
    return "mailboxfull";
  }
  if (contains_any(t, {"disabled", "suspended", "inactive", "deactivated"})) return "suspend";
  if (contains_any(t, {"relay", "relaying"})) return "norelaying";
  if (contains_any(t, {"too large", "too big", "size limit", "exceeds"})) return "mesgtoobig";
  if (contains_any(t, {"policy"})) return "policyviolation";
  return "";
}

// Classes from the enhanced status code's subject and detail ("x.S.D").
std::string reason_from_code(std::string_view enhanced) {
  std::string_view sd = enhanced.size() > 2 ? enhanced.substr(2) : std::string_view();
  struct Entry {
    std::string_view code;
    std::string_view reason;
  };
  static constexpr std::array<Entry, 19> kTable = {{
      {"1.1", "userunknown"},  {"1.0", "userunknown"}, {"1.2", "hostunknown"},
      {"1.3", "syntaxerror"},  {"1.6", "hasmoved"},    {"1.8", "rejected"},
      {"1.10", "notaccept"},   {"2.1", "suspend"},     {"2.2", "mailboxfull"},
      {"2.3", "mesgtoobig"},   {"3.1", "systemfull"},  {"3.4", "mesgtoobig"},
      {"4.1", "networkerror"}, {"4.4", "hostunknown"}, {"4.7", "expired"},
      {"5.3", "syntaxerror"},  {"7.1", "rejected"},    {"7.26", "authfailure"},
      {"7.25", "requireptr"},
  }};
  for (const auto& e : kTable) {
    if (sd == e.code) return std::string(e.reason);
  }
  if (sd.starts_with("7.")) return "securityerror";
  if (sd.starts_with("6.")) return "contenterror";
  return "";
}

}  // namespace

const char* action_name(Action a) {
  switch (a) {
    case Action::kDelivered:
      return "delivered";
    case Action::kRetry:
      return "retry";
    case Action::kRetryAndThrottle:
      return "slow the path";
    case Action::kBounce:
      return "bounce";
  }
  return "unknown";
}

Verdict classify_reply(const smtp::Reply& reply) {
  Verdict v;
  if (reply.positive()) {
    v.action = Action::kDelivered;
    v.reason = "delivered";
    return v;
  }
  std::string text = lower(reply.text);

  // No reply at all: the connection failed, timed out or was dropped.
  if (reply.no_reply()) {
    v.action = Action::kRetry;
    v.reason = "networkerror";
    v.close_connection = true;
    return v;
  }

  std::string by_text = reason_from_text(text);
  std::string by_code = reply.enhanced.empty() ? "" : reason_from_code(reply.enhanced);
  // A generic or policy code is refined by the text; a specific code wins over the text.
  bool generic = reply.enhanced.empty() || reply.enhanced.ends_with(".0.0") ||
                 reply.enhanced.substr(1).starts_with(".7.") || by_code.empty();
  v.reason = generic ? (by_text.empty() ? by_code : by_text) : by_code;

  if (reply.transient()) {
    // A 421 with nothing more specific is the receiver shedding load: treat it as a rate limit.
    if (reply.code == 421 && (v.reason.empty() || v.reason == "securityerror"))
      v.reason = "speeding";
    bool slow = reply.code == 421 || v.reason == "toomanyconn" || v.reason == "speeding";
    v.action = slow ? Action::kRetryAndThrottle : Action::kRetry;
    v.close_connection = reply.code == 421;
    if (v.reason.empty()) v.reason = reply.code == 452 ? "systemfull" : "undefined";
    return v;
  }

  v.action = Action::kBounce;
  if (v.reason.empty()) v.reason = reply.code == 552 ? "mesgtoobig" : "undefined";
  // Hard means the address itself is bad: mailing it again can only hurt the sender.
  static constexpr std::array<std::string_view, 5> kHard = {"userunknown", "hostunknown",
                                                            "hasmoved", "notaccept", "suspend"};
  v.hard = std::find(kHard.begin(), kHard.end(), v.reason) != kHard.end();
  return v;
}

}  // namespace magnetic::feedback
