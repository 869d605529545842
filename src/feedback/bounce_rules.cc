// Bounce rules: a first-match table of text patterns, enhanced-code patterns and reply codes.
//
// Strategy: patterns are plain lower-case substrings with '*' wildcards, matched against the
// diagnostic after folding case and white space. That is enough for the wording MTAs use and
// far cheaper than regular expressions (std::regex compiles slowly and matches slower still;
// a failing reply is classified on the delivery path). The order of the file is the priority,
// so a reader sees in one place why "blocked using Spamhaus" is not "spamdetected".
#include "feedback/bounce_rules.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "base/printable.h"

namespace magnetic::feedback {

// Defined in the generated bounce_rules_data.cc: bounce_rules.tsv, compiled in.
extern const char* const kDefaultBounceRulesText;

namespace {

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t tab = line.find('\t', start);
    if (tab == std::string_view::npos) {
      out.push_back(line.substr(start));
      return out;
    }
    out.push_back(line.substr(start, tab - start));
    start = tab + 1;
  }
}

// Glob match anchored at both ends: '*' matches any run of characters.
bool glob_match(std::string_view text, std::string_view pattern) {
  size_t t = 0, p = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool valid_hardness(std::string_view h) {
  return h == "hard" || h == "soft" || h == "none" || h == "hard-if-permanent";
}

BounceRules& active_rules() {
  static BounceRules* rules = [] {
    auto parsed = BounceRules::parse(default_bounce_rules_text(), "bounce_rules.tsv");
    if (!parsed) std::abort();  // the compiled-in table is checked by the tests
    return new BounceRules(std::move(parsed).value());
  }();
  return *rules;
}

// "550-5.7.1 " or "550 5.7.1 " (the enhanced code optional) at `at`: its length, else 0.
size_t reply_prefix_at(std::string_view t, size_t at) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (at + 4 > t.size() || t[at] < '2' || t[at] > '5' || !digit(t[at + 1]) || !digit(t[at + 2]) ||
      (t[at + 3] != '-' && t[at + 3] != ' '))
    return 0;
  size_t end = at + 4;
  size_t code = end;
  while (code < t.size() && (digit(t[code]) || t[code] == '.')) ++code;
  if (code > end && code < t.size() && t[code] == ' ') end = code + 1;
  return end - at;
}

}  // namespace

std::string join_reply_lines(std::string_view text) {
  size_t first = reply_prefix_at(text, 0);
  if (first == 0) return std::string(text);
  std::string_view prefix = text.substr(0, first);
  std::string out(text.substr(0, first));
  for (size_t at = first; at < text.size();) {
    // Only the prefix that opened the reply, repeated after a space, is a line of the same
    // reply; a different code is another reply and stays.
    size_t len = text[at] == ' ' ? reply_prefix_at(text, at + 1) : 0;
    std::string_view candidate = text.substr(at + 1, len);
    bool same = len == prefix.size() && candidate.substr(0, 3) == prefix.substr(0, 3) &&
                candidate.substr(4) == prefix.substr(4);
    if (same) {
      out.push_back(' ');
      at += 1 + len;
      continue;
    }
    out.push_back(text[at++]);
  }
  return out;
}

std::string normalize_diagnostic(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (unsigned char c : text) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c));
  }
  return out;
}

bool glob_find(std::string_view text, std::string_view pattern) {
  size_t star = pattern.find('*');
  if (star == std::string_view::npos) return text.find(pattern) != std::string_view::npos;

  // Find the literal head, then match the rest as an unanchored-at-the-end glob.
  std::string_view head = pattern.substr(0, star);
  std::string rest = std::string(pattern.substr(star)) + "*";
  for (size_t at = text.find(head); at != std::string_view::npos; at = text.find(head, at + 1)) {
    if (glob_match(text.substr(at + head.size()), rest)) return true;
  }
  return false;
}

Result<BounceRules> BounceRules::parse(std::string_view text, std::string_view origin) {
  BounceRules rules;
  Status s = rules.extend(text, origin);
  if (!s) return s;
  return rules;
}

namespace {

// An enhanced status code pattern of a rule: "5.1.1", "*.2.2", "4.*.*". A pattern that cannot
// match any real code (9.9.9.9, 5.1) would be taken and never used.
bool valid_status_pattern(std::string_view p) {
  auto part = [](std::string_view v, bool is_class) {
    if (v == "*") return true;
    if (is_class) return v.size() == 1 && (v[0] == '2' || v[0] == '4' || v[0] == '5');
    return !v.empty() && v.size() <= 3 &&
           std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  size_t a = p.find('.');
  if (a == std::string_view::npos) return false;
  size_t b = p.find('.', a + 1);
  if (b == std::string_view::npos || p.find('.', b + 1) != std::string_view::npos) return false;
  return part(p.substr(0, a), true) && part(p.substr(a + 1, b - a - 1), false) &&
         part(p.substr(b + 1), false);
}

}  // namespace

Status BounceRules::extend(std::string_view text, std::string_view origin) {
  std::vector<TextRule> texts;
  std::vector<StatusRule> statuses;
  std::vector<ReasonLine> reasons;
  std::vector<std::pair<std::string, std::string>> after_data;
  std::vector<std::pair<std::string, std::string>> after_mail;
  int line_no = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string_view line =
        text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    start = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;

    auto bad = [&](const std::string& why) {
      return Status::invalid(std::string(origin) + ":" + std::to_string(line_no) + ": " + why);
    };
    auto f = split_tabs(line);
    if (f.size() < 3) return bad("expected KIND<TAB>REASON<TAB>...");
    std::string_view kind = f[0];
    std::string reason(f[1]);
    if (kind == "class") {
      if (f.size() != 5) return bad("class needs REASON HARDNESS BOUNCE_TYPE BOUNCE_SUBTYPE");
      if (!valid_hardness(f[2]))
        return bad("hardness must be hard, soft, none or hard-if-permanent");
      auto dash = [](std::string_view v) { return v == "-" ? std::string() : std::string(v); };
      reasons.push_back({reason, std::string(f[2]), dash(f[3]), dash(f[4])});
    } else if (kind == "text") {
      std::string pattern = normalize_diagnostic(f[2]);
      if (pattern.empty() || pattern == "*") return bad("empty text pattern");
      texts.push_back({pattern, reason});
    } else if (kind == "status" || kind == "status!" || kind == "status?") {
      std::string pattern(f[2]);
      if (!valid_status_pattern(pattern))
        return bad("status pattern '" + printable(pattern, 40) +
                   "' must be CLASS.SUBJECT.DETAIL: class 2, 4, 5 or *, then 1 to 3 digits or * "
                   "each (RFC 3463)");
      statuses.push_back({pattern, reason, kind == "status!", kind == "status?"});
    } else if (kind == "data") {
      after_data.emplace_back(reason, std::string(f[2]));
    } else if (kind == "mail") {
      after_mail.emplace_back(reason, std::string(f[2]));
    } else if (kind == "code") {
      std::string code(f[2]);
      bool digits = code.size() == 3 && std::all_of(code.begin(), code.end(),
                                                    [](char c) { return c >= '0' && c <= '9'; });
      if (!digits || code[0] < '2' || code[0] > '5')
        return bad("code '" + printable(code, 40) + "' must be a reply code from 200 to 599");
      statuses.push_back({"code:" + code, reason, false, false});
    } else {
      // The file may be anything (a binary named by mistake): its bytes are quoted, not echoed.
      return bad("unknown kind '" + printable(kind, 40) + "'");
    }
  }

  // Every reason a rule names must have a class line, here or already held.
  auto known = [&](const std::string& r) {
    for (const auto& l : reasons)
      if (l.reason == r) return true;
    for (const auto& l : reasons_)
      if (l.reason == r) return true;
    return false;
  };
  for (const auto& r : texts)
    if (!known(r.reason))
      return Status::invalid(std::string(origin) + ": no class " + printable(r.reason, 40));
  for (const auto& r : statuses)
    if (!known(r.reason))
      return Status::invalid(std::string(origin) + ": no class " + printable(r.reason, 40));
  for (const auto* turns : {&after_data, &after_mail})
    for (const auto& [from, to] : *turns)
      if (!known(to))
        return Status::invalid(std::string(origin) + ": no class " + printable(to, 40));

  // The new rules go first; a new class line replaces an old one.
  texts.insert(texts.end(), text_rules_.begin(), text_rules_.end());
  text_rules_ = std::move(texts);
  after_data.insert(after_data.end(), after_data_.begin(), after_data_.end());
  after_data_ = std::move(after_data);
  after_mail.insert(after_mail.end(), after_mail_.begin(), after_mail_.end());
  after_mail_ = std::move(after_mail);
  statuses.insert(statuses.end(), status_rules_.begin(), status_rules_.end());
  status_rules_ = std::move(statuses);
  for (const auto& l : reasons_) {
    bool replaced = false;
    for (const auto& n : reasons) replaced = replaced || n.reason == l.reason;
    if (!replaced) reasons.push_back(l);
  }
  reasons_ = std::move(reasons);
  return Status::ok();
}

// Addresses in a reply are data, not wording: a recipient named "blocked.news@..." or a domain
// "marblehead.example" must not read as a block list ("blocked", "rbl"). Each run of address
// characters around an '@' becomes "address"; the brackets and the words around it stay.
std::string mask_addresses(std::string_view text) {
  auto is_address_char = [](char c) {
    return !(c == ' ' || c == '<' || c == '>' || c == '(' || c == ')' || c == '[' || c == ']' ||
             c == '"' || c == '\'' || c == ',' || c == ';' || c == ':' || c == '=');
  };
  std::string out;
  out.reserve(text.size());
  size_t copied = 0;
  for (size_t at = text.find('@'); at != std::string_view::npos; at = text.find('@', at + 1)) {
    if (at < copied) continue;
    size_t begin = at;
    while (begin > copied && is_address_char(text[begin - 1])) --begin;
    size_t end = at + 1;
    while (end < text.size() && is_address_char(text[end])) ++end;
    if (begin == at || end == at + 1) continue;  // not local@domain
    out.append(text.substr(copied, begin - copied));
    out.append("address");
    copied = end;
    at = end - 1;
  }
  out.append(text.substr(copied));
  return out;
}

std::string BounceRules::reason_from_text(std::string_view diagnostic) const {
  std::string text = mask_addresses(join_reply_lines(normalize_diagnostic(diagnostic)));
  if (text.empty()) return "";
  for (const auto& r : text_rules_) {
    if (glob_find(text, r.pattern)) return r.reason;
  }
  return "";
}

std::string BounceRules::status_reason(std::string_view status, int pass) const {
  if (status.empty()) return "";
  for (const auto& r : status_rules_) {
    if (r.pattern.starts_with("code:")) continue;
    int rule_pass = r.decisive ? 0 : r.generic ? 2 : 1;
    if (rule_pass == pass && glob_match(status, r.pattern)) return r.reason;
  }
  return "";
}

std::string BounceRules::reason_from_status(std::string_view status) const {
  for (int pass = 0; pass < 3; ++pass) {
    std::string r = status_reason(status, pass);
    if (!r.empty()) return r;
  }
  return "";
}

BounceClass BounceRules::class_of(std::string_view reason, bool permanent) const {
  BounceClass c;
  c.reason = std::string(reason);
  for (const auto& l : reasons_) {
    if (l.reason != reason) continue;
    c.hard = l.hardness == "hard" || (l.hardness == "hard-if-permanent" && permanent);
    c.bounce_type = l.bounce_type;
    c.bounce_subtype = l.bounce_subtype;
    // A transient failure is never a permanent SES bounce, whatever its class.
    if (!permanent && c.bounce_type == "Permanent") {
      c.bounce_type = "Transient";
      c.bounce_subtype = "General";
    }
    return c;
  }
  c.bounce_type = "Undetermined";
  c.bounce_subtype = "Undetermined";
  return c;
}

BounceClass BounceRules::classify(const FailureFacts& facts) const {
  std::string reason = status_reason(facts.status, 0);
  if (reason.empty()) reason = reason_from_text(facts.diagnostic);
  if (reason.empty()) reason = status_reason(facts.status, 1);
  if (reason.empty()) reason = reason_from_text(facts.context);
  if (reason.empty() && facts.reply_code != 0) {
    std::string key = "code:" + std::to_string(facts.reply_code);
    for (const auto& r : status_rules_) {
      if (r.pattern == key) {
        reason = r.reason;
        break;
      }
    }
  }
  if (reason.empty()) reason = status_reason(facts.status, 2);
  if (reason.empty()) {
    bool nothing = facts.status.empty() && facts.reply_code == 0 &&
                   normalize_diagnostic(facts.diagnostic).empty();
    reason = nothing ? "onhold" : "undefined";
  }
  auto remap = [&](const std::vector<std::pair<std::string, std::string>>& table) {
    for (const auto& [from, to] : table) {
      if (from == reason) {
        reason = to;
        return;
      }
    }
  };
  if (facts.after_mail_from) remap(after_mail_);
  if (facts.after_data) remap(after_data_);
  return class_of(reason, facts.permanent);
}

const BounceRules& bounce_rules() { return active_rules(); }

Status load_user_bounce_rules(const std::filesystem::path& path) {
  // An ifstream opens a directory without complaint and reads nothing from it: an empty file
  // of rules, accepted silently.
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return Status::invalid("cannot read bounce rules " + path.string() + ": it is a directory");
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::not_found("cannot read bounce rules " + path.string() + ": " +
                             std::strerror(errno ? errno : ENOENT));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::invalid("cannot read bounce rules " + path.string());
  return active_rules().extend(ss.str(), path.string());
}

std::string_view default_bounce_rules_text() { return kDefaultBounceRulesText; }

}  // namespace magnetic::feedback
