// Bounce classification rules: the one table that says which bounce class a failure belongs to.
//
// Both the delivery engine (through classify_reply) and the feedback parser (DSNs, provider
// bounces) classify through the same BounceRules, so one reply text gets the same class
// whichever way it reaches us.
//
// The rules are data: src/feedback/bounce_rules.tsv is compiled in as the default set, and a
// user file in the same format can be loaded on top (its rules are consulted first, its class
// lines replace the defaults). The format is described at the top of bounce_rules.tsv.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace magnetic::feedback {

// What a failure means for the recipient, in the vocabulary of bounce tools (reason) and of
// SES (bounce_type, bounce_subtype).
struct BounceClass {
  std::string reason;          // "userunknown", "mailboxfull", ... (see bounce_rules.tsv)
  bool hard = false;           // the address is bad: suppress it
  std::string bounce_type;     // "Permanent", "Transient", "Undetermined"; "" when not a bounce
  std::string bounce_subtype;  // "General", "NoEmail", "MailboxFull", ...; "" when not a bounce
};

// The inputs of one classification. Any of them may be empty/0.
struct FailureFacts {
  std::string_view status;       // enhanced status code "5.1.1", already validated, or ""
  int reply_code = 0;            // 550, 421, ... or 0
  std::string_view diagnostic;   // the reply text or the DSN's Diagnostic-Code, any case
  bool permanent = false;        // the failure is final (5xx, or a DSN action "failed")
  bool after_data = false;       // the reply answered DATA or the final dot, not RCPT
  bool after_mail_from = false;  // the reply answered MAIL FROM: it is about the sender
  // Text around the failure (a bounce's human-readable part) when the diagnostic itself may
  // say too little: its wording counts after the status code, before the bare reply code.
  std::string_view context;
};

class BounceRules {
 public:
  // Parses rules in the bounce_rules.tsv format. `origin` names the source in error messages.
  static Result<BounceRules> parse(std::string_view text, std::string_view origin);

  // Adds rules that take precedence over the ones already held.
  Status extend(std::string_view text, std::string_view origin);

  // The bounce class of one failure. Never fails: what no rule matches is "undefined"
  // (or "onhold" when there was nothing at all to judge by).
  BounceClass classify(const FailureFacts& facts) const;

  // The class of a reason name alone (hard flag and SES types from its class line).
  BounceClass class_of(std::string_view reason, bool permanent) const;

  // The reason the diagnostic text alone points to, "" when no text rule matches.
  std::string reason_from_text(std::string_view diagnostic) const;

  // The reason the enhanced status code alone points to, "" when none.
  std::string reason_from_status(std::string_view status) const;

 private:
  struct TextRule {
    std::string pattern;  // lower case; '*' matches any run of characters
    std::string reason;
  };
  struct StatusRule {
    std::string pattern;  // "5.1.1", "*.1.1", "*.7.*"
    std::string reason;
    bool decisive = false;  // the code decides even when the text points elsewhere
    bool generic = false;   // the code decides only after the reply code
  };
  struct ReasonLine {
    std::string reason;
    std::string hardness;  // "hard", "soft", "hard-if-permanent", "none"
    std::string bounce_type;
    std::string bounce_subtype;
  };
  // The reason of the first status rule of one rank (0 decisive, 1 plain, 2 generic).
  std::string status_reason(std::string_view status, int rank) const;

  std::vector<TextRule> text_rules_;
  std::vector<StatusRule> status_rules_;
  std::vector<ReasonLine> reasons_;
  std::vector<std::pair<std::string, std::string>> after_data_;  // reason -> reason
  std::vector<std::pair<std::string, std::string>> after_mail_;  // reason -> reason
};

// The rules in use: the compiled-in defaults, plus whatever load_user_bounce_rules added.
const BounceRules& bounce_rules();

// Loads a user rules file on top of the defaults. Call it at startup, before any
// classification runs: it is not safe to call while other threads classify.
Status load_user_bounce_rules(const std::filesystem::path& path);

// The compiled-in text of bounce_rules.tsv.
std::string_view default_bounce_rules_text();

// Lower-cases ASCII and folds every run of white space (line breaks included) into one space,
// so that patterns match across the line folding of DSN fields and multi-line replies.
std::string normalize_diagnostic(std::string_view text);

// A multi-line reply folded into one line ("550-5.7.1 Messages with multiple 550 5.7.1
// addresses ...") repeats its reply and enhanced code at every line break, splitting the wording
// that rules look for. Drops the repeats of the prefix that opens `text` (normalized text); other
// codes stay. Text that opens with no reply code is returned as it is.
std::string join_reply_lines(std::string_view text);

// Replaces every address (a run of address characters on both sides of an '@') with the word
// "address", so that text rules never match inside a recipient's name or domain.
std::string mask_addresses(std::string_view text);

// True when `text` matches the glob `pattern` anywhere ('*' matches any run of characters).
bool glob_find(std::string_view text, std::string_view pattern);

}  // namespace magnetic::feedback
