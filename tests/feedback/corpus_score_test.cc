// Scores parse_feedback against the bounce and ARF corpora (../shared/corpora): every message,
// every expected recipient row. The expected labels are those of a widely used bounce
// classifier; our reasons use its names. The minimums below are the levels reached; a change
// that lowers a score fails here. Set MAGNETIC_SCORE_VERBOSE=1 to print every disagreement.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "feedback/bounce_rules.h"
#include "feedback/report_parser.h"
#include "test_support.h"

namespace magnetic::feedback {
namespace {

// Levels reached on bounces/eml (407 rows): reason 388 (95.3%), hard/soft 400 (98.3%),
// recipient 401 (98.5%), with the 27 by-design mappings below applied (one of them a quoted
// local part, lhost-postfix-32, compared without its quotes). The test fails under
// them. The reason misses left (19), by cause:
//   - labels the corpus takes from its own test names, or its onhold/undefined split where no
//     reason is given: lhost-dragonfly-17 (onhold for "Recipient address rejected"),
//     lhost-dragonfly-18 (securityerror for "Policy violation"), rfc3464-39 (onhold), and
//     lhost-postfix-64, lhost-x3-05 (undefined for a DSN without a recipient block; onhold here);
//   - provider labels we do not share: the Gmail session state behind a relayed reply
//     (lhost-gmail-03 filtered for "Header error", lhost-gmail-05 securityerror for an access
//     table's refusal of the sender, lhost-gmail-07 systemerror for a receiver without TLS),
//     the Orange and La Poste "Service refuse" codes (rhost-franceptt-08 systemerror,
//     rhost-franceptt-10 undefined), docomo's "Unknown user" after DATA as a refusal of the
//     sender (rhost-nttdocomo-02);
//   - a label less specific than the reply, or resting on hedged words: lhost-exim-46 blocked
//     for "Missing reverse DNS" at the greeting (lhost-exim-32/33 say the same and are
//     requireptr), lhost-exim-31 hostunknown for cPanel's "the account or domain may not
//     exist, they may be blacklisted", rfc3464-35 rejected for "not a registered gateway user",
//     lhost-v5sendmail-05 blocked for a connection reset;
//   - lhost-zoho-05: expired for "Host not reachable" in a final report (the time-out rule
//     wants the words "timed out");
//   - texts we do not cut into recipients: lhost-v5sendmail-01 (the copy is inline and names
//     the recipient only in its To), lhost-fml-03 (a list's loop alert), rfc3464-28 (a second
//     message in one file).
// Hard/soft misses left (7): those of lhost-dragonfly-17, lhost-exim-31, lhost-v5sendmail-05 and
// the three files without an entry, and lhost-opensmtpd-12, a "No MX found" delay notice the
// corpus calls hard: a temporary failure never suppresses. Recipient misses left (6): the three
// files without an entry, fml list notices (lhost-fml-02), a mailto: link's address where we
// take the DSN's Final-Recipient (lhost-office365-04), the exact case of an address
// (lhost-exchange2003-07).
constexpr int kMinReasonRows = 388;
constexpr int kMinHardRows = 400;
constexpr int kMinRecipientRows = 401;
constexpr int kMinArfRows = 10;

// Where our class differs from the corpus label by design, the corpus label is mapped to ours
// before comparing, for the rows the condition picks out; the hard/soft flag is then that of
// our class. Each mapped row is counted and printed, not dropped:
//   - "filtered" where the reply says the recipient is unknown and nothing shows that it
//     answered DATA (e.g. lhost-sendmail-02, lhost-x2-01, the ezweb.ne.jp rows): the corpus
//     infers a filter from the receiving provider or from a pipelined transcript; we take
//     "user unknown" at RCPT as said, a hard userunknown.
//   - "userunknown" where the refusal came after DATA (lhost-sendmail-41, rhost-yahooinc-03):
//     the address was accepted at RCPT, so the refusal is about the message; we call it
//     filtered (soft) rather than suppress an address that took the envelope.
//   - "badreputation" for Yahoo's TSS04 deferral "unexpected volume or user complaints"
//     (lhost-qmail-19, lhost-opensmtpd-13): the delivery engine treats it as a rate signal
//     (speeding, slow down), as reply_policy_test pins.
//   - "userunknown" for Apple's "inactive email address" (rhost-apple-04): an inactive
//     mailbox is suspend (soft) for us, as every other provider's "inactive" wording.
struct Mapping {
  const char* corpus;  // the corpus label
  const char* ours;    // our class for the same failure
  bool (*applies)(const FeedbackEntry& e);
};
bool says(const FeedbackEntry& e, const char* words) {
  return normalize_diagnostic(e.diagnostic).find(words) != std::string::npos;
}
const Mapping kReasonMappings[] = {
    {"filtered", "userunknown",
     [](const FeedbackEntry& e) {
       return !e.after_data && e.reason == "userunknown" &&
              (bounce_rules().reason_from_text(e.diagnostic) == "userunknown" ||
               e.status.ends_with(".1.1"));
     }},
    {"userunknown", "filtered",
     [](const FeedbackEntry& e) { return e.after_data && e.reason == "filtered"; }},
    {"badreputation", "speeding",
     [](const FeedbackEntry& e) { return says(e, "unexpected volume or user complaints"); }},
    {"userunknown", "suspend",
     [](const FeedbackEntry& e) { return says(e, "inactive email address"); }},
};

struct Row {
  std::string file;
  std::string recipient;
  std::string reason;
  bool hard = false;
  std::string feedback_type;
  std::string p5_go_agree;
};

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return out;
    start = tab + 1;
  }
}

std::vector<Row> read_expected(const std::filesystem::path& tsv) {
  std::vector<Row> rows;
  std::istringstream in(magnetic::testing::read_file(tsv));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto f = split_tabs(line);
    if (f.size() < 9) continue;
    Row r;
    r.file = f[0];
    r.recipient = f[2];
    r.reason = f[5];
    r.hard = f[6] == "1";
    r.feedback_type = f[8];
    r.p5_go_agree = f.size() > 16 ? f[16] : "";
    rows.push_back(r);
  }
  return rows;
}

struct Score {
  int rows = 0, reason = 0, hard = 0, recipient = 0, mapped = 0;
  double pct(int n) const { return rows ? 100.0 * n / rows : 0.0; }
};

bool verbose() {
  const char* v = std::getenv("MAGNETIC_SCORE_VERBOSE");
  return v && *v && std::string(v) != "0";
}

// Scores one folder of messages against its rows: each row is compared with our entry for the
// same recipient, or else the entry at the same position.
Score score(const std::filesystem::path& dir, const std::vector<Row>& rows) {
  Score s;
  std::map<std::string, std::vector<const Row*>> by_file;
  for (const auto& r : rows) by_file[r.file].push_back(&r);
  for (const auto& [file, expected] : by_file) {
    auto path = dir / file;
    if (!std::filesystem::exists(path)) continue;
    auto parsed = parse_feedback(magnetic::testing::read_file(path));
    std::vector<FeedbackEntry> entries;
    if (parsed) entries = parsed->entries;
    for (size_t i = 0; i < expected.size(); ++i) {
      const Row& r = *expected[i];
      ++s.rows;
      const FeedbackEntry* e = nullptr;
      for (const auto& x : entries)
        if (x.recipient == r.recipient) e = &x;
      if (!e && i < entries.size()) e = &entries[i];
      std::string want = r.reason;
      bool want_hard = r.hard;
      for (const auto& m : kReasonMappings) {
        if (e && want == m.corpus && m.applies(*e)) {
          want = m.ours;
          want_hard = bounce_rules().class_of(want, true).hard;
          ++s.mapped;
          break;
        }
      }
      bool ok_reason = e && e->reason == want;
      bool ok_hard = e && e->hard == want_hard;
      // The corpus writes a quoted local part without its quotes ("a..b"@x as a..b@x, which
      // is no address); we report the address as it goes on the wire, as our spool holds it.
      bool ok_rcpt = e && e->recipient == r.recipient;
      if (e && !ok_rcpt && e->recipient.starts_with('"')) {
        std::string unquoted = e->recipient;
        std::erase(unquoted, '"');
        ok_rcpt = unquoted == r.recipient;
        s.mapped += ok_rcpt;
      }
      s.reason += ok_reason;
      s.hard += ok_hard;
      s.recipient += ok_rcpt;
      if (verbose() && (!ok_reason || !ok_hard || !ok_rcpt)) {
        std::string diag = e ? e->diagnostic : "";
        std::replace(diag.begin(), diag.end(), '\n', ' ');
        std::printf("MISS %s want %s/%d/%s got %s/%d/%s status=%s code=%d diag=%.300s\n",
                    file.c_str(), want.c_str(), want_hard, r.recipient.c_str(),
                    e ? e->reason.c_str() : "-", e ? e->hard : -1, e ? e->recipient.c_str() : "-",
                    e ? e->status.c_str() : "", e ? e->reply_code : 0, diag.c_str());
      }
    }
  }
  return s;
}

void print(const char* name, const Score& s) {
  std::printf("%s: %d rows; reason %.1f%% (%d), hard/soft %.1f%% (%d), recipient %.1f%% (%d)%s\n",
              name, s.rows, s.pct(s.reason), s.reason, s.pct(s.hard), s.hard, s.pct(s.recipient),
              s.recipient,
              s.mapped ? (" (" + std::to_string(s.mapped) + " labels mapped)").c_str() : "");
}

TEST(CorpusScore, BouncesReachTheirLevels) {
  MAGNETIC_REQUIRE_CORPORA(corpora);
  auto rows = read_expected(corpora / "bounces" / "expected.tsv");
  ASSERT_EQ(rows.size(), 407u);
  Score s = score(corpora / "bounces" / "eml", rows);
  print("bounces/eml", s);
  EXPECT_EQ(s.rows, 407);
  EXPECT_GE(s.reason, kMinReasonRows);
  EXPECT_GE(s.hard, kMinHardRows);
  EXPECT_GE(s.recipient, kMinRecipientRows);
}

// The CRLF copies hold the same messages as their LF twins: the parse must be identical.
TEST(CorpusScore, CrlfMessagesParseExactlyAsTheirLfTwins) {
  MAGNETIC_REQUIRE_CORPORA(corpora);
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(corpora / "bounces" / "eml-crlf")) {
    auto lf = corpora / "bounces" / "eml" / entry.path().filename();
    auto a = parse_feedback(magnetic::testing::read_file(entry.path()));
    auto b = parse_feedback(magnetic::testing::read_file(lf));
    ASSERT_TRUE(a.is_ok() && b.is_ok()) << entry.path().filename();
    ASSERT_EQ(a->entries.size(), b->entries.size()) << entry.path().filename();
    for (size_t i = 0; i < a->entries.size(); ++i) {
      EXPECT_EQ(a->entries[i].recipient, b->entries[i].recipient) << entry.path().filename();
      EXPECT_EQ(a->entries[i].reason, b->entries[i].reason) << entry.path().filename();
      EXPECT_EQ(a->entries[i].status, b->entries[i].status) << entry.path().filename();
    }
    ++files;
  }
  EXPECT_EQ(files, 32);
}

TEST(CorpusScore, MessagesThatAreNotBouncesSaySo) {
  MAGNETIC_REQUIRE_CORPORA(corpora);
  for (const char* name : {"is-not-bounce-01.eml", "is-not-bounce-02.eml"}) {
    auto r =
        parse_feedback(magnetic::testing::read_file(corpora / "bounces" / "not-bounce" / name));
    ASSERT_TRUE(r.is_ok()) << name;
    EXPECT_EQ(r->kind, FeedbackKind::kOther) << name;
    EXPECT_TRUE(r->entries.empty()) << name;
  }
}

TEST(CorpusScore, ArfReportsFromTheSisimaiSet) {
  MAGNETIC_REQUIRE_CORPORA(corpora);
  auto rows = read_expected(corpora / "arf" / "sisimai" / "expected.tsv");
  ASSERT_EQ(rows.size(), 10u);
  Score s = score(corpora / "arf" / "sisimai", rows);
  print("arf/sisimai", s);
  int feedback_types = 0;
  for (const auto& r : rows) {
    auto p = parse_feedback(magnetic::testing::read_file(corpora / "arf" / "sisimai" / r.file));
    if (p && !p->entries.empty() && p->entries.front().feedback_type == r.feedback_type)
      ++feedback_types;
  }
  std::printf("arf/sisimai: feedback_type %d of %zu\n", feedback_types, rows.size());
  EXPECT_EQ(s.reason, kMinArfRows);
  EXPECT_EQ(s.recipient, kMinArfRows);
  EXPECT_EQ(feedback_types, kMinArfRows);
}

// mail-auth's expected JSON: feedback type, Original-Mail-From, Original-Rcpt-To, Source-IP and
// User-Agent, exactly.
TEST(CorpusScore, ArfReportsFromTheMailAuthSet) {
  MAGNETIC_REQUIRE_CORPORA(corpora);
  auto unbracket = [](std::string v) {
    if (v.size() > 1 && v.front() == '<' && v.back() == '>') v = v.substr(1, v.size() - 2);
    return v;
  };
  for (int i = 1; i <= 5; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "%03d", i);
    auto dir = corpora / "arf" / "mail-auth";
    auto want =
        nlohmann::json::parse(magnetic::testing::read_file(dir / (std::string(name) + ".json")));
    auto got = parse_feedback(magnetic::testing::read_file(dir / (std::string(name) + ".eml")));
    ASSERT_TRUE(got.is_ok()) << name;
    EXPECT_EQ(got->kind, FeedbackKind::kComplaint) << name;
    std::string type = want["feedback_type"] == "AuthFailure" ? "auth-failure" : "abuse";
    EXPECT_EQ(got->feedback_type, type) << name;
    auto str = [&](const char* key) {
      return want[key].is_string() ? unbracket(want[key].get<std::string>()) : std::string();
    };
    EXPECT_EQ(got->original_mail_from, str("original_mail_from")) << name;
    EXPECT_EQ(got->source_ip, str("source_ip")) << name;
    EXPECT_EQ(got->user_agent, str("user_agent")) << name;
    std::string rcpt = got->entries.empty() ? "" : got->entries.front().original_recipient;
    EXPECT_EQ(rcpt, str("original_rcpt_to")) << name;
  }
}

}  // namespace
}  // namespace magnetic::feedback
