// Our signatures checked by an independent verifier: dkimpy (Debian python3-dkim), run once per
// test on a batch of messages through /usr/bin/python3, with a dnsfunc that answers the one
// expected selector name from a file (no real DNS). Every signed message must verify and every
// tampered copy must not, so a wrong hash, canonicalization or tag fails the test.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstdlib>
#include <fstream>
#include <map>

#include "dkim/signer.h"
#include "test_support.h"

namespace magnetic::dkim {
namespace {

constexpr char kPython[] = "/usr/bin/python3";

// Reads cases.tsv (name, message file, TXT file, expected query name) and prints
// "name<TAB>True|False|error-<Exception>" per case.
constexpr char kVerifyScript[] = R"PY(
import sys
import dkim

for line in open(sys.argv[1], encoding="utf-8"):
    name, message_path, txt_path, qname = line.rstrip("\n").split("\t")
    message = open(message_path, "rb").read()
    record = open(txt_path, "rb").read()

    def lookup(query, timeout=5, record=record, expected=qname.encode()):
        return record if query == expected else None

    try:
        verdict = str(dkim.verify(message, dnsfunc=lookup))
    except Exception as e:
        verdict = "error-" + type(e).__name__
    print(name + "\t" + verdict, flush=True)
)PY";

struct Case {
  std::string name;
  std::string message;
  std::string txt;
  std::string qname;
  bool expect_pass;
};

bool dkimpy_available() {
  if (!std::filesystem::exists(kPython)) return false;
  std::string cmd = std::string(kPython) + " -c 'import dkim' >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

// Runs dkimpy over all cases; returns name -> verdict text.
std::map<std::string, std::string> run_dkimpy(const std::vector<Case>& cases) {
  testing::TempDir dir;
  std::ofstream(dir.path() / "verify.py") << kVerifyScript;
  std::ofstream manifest(dir.path() / "cases.tsv");
  for (size_t i = 0; i < cases.size(); ++i) {
    auto msg = dir.path() / ("m" + std::to_string(i) + ".eml");
    auto txt = dir.path() / ("t" + std::to_string(i) + ".txt");
    std::ofstream(msg, std::ios::binary) << cases[i].message;
    std::ofstream(txt, std::ios::binary) << cases[i].txt;
    manifest << cases[i].name << '\t' << msg.string() << '\t' << txt.string() << '\t'
             << cases[i].qname << '\n';
  }
  manifest.close();

  auto out = dir.path() / "out.txt";
  std::string cmd = std::string(kPython) + " " + (dir.path() / "verify.py").string() + " " +
                    (dir.path() / "cases.tsv").string() + " > " + out.string() + " 2>&1";
  int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << testing::read_file(out);

  std::map<std::string, std::string> verdicts;
  std::istringstream lines(testing::read_file(out));
  for (std::string line; std::getline(lines, line);) {
    size_t tab = line.find('\t');
    if (tab != std::string::npos) verdicts[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return verdicts;
}

// Scores every case; returns how many got the expected verdict.
int score(const std::vector<Case>& cases) {
  auto verdicts = run_dkimpy(cases);
  int as_expected = 0;
  for (const Case& c : cases) {
    auto it = verdicts.find(c.name);
    std::string got = it == verdicts.end() ? "<no verdict>" : it->second;
    std::string want = c.expect_pass ? "True" : "False";
    if (got == want) {
      ++as_expected;
    } else {
      ADD_FAILURE() << c.name << ": dkimpy said " << got << ", expected " << want;
    }
  }
  return as_expected;
}

std::string crlf(std::string_view lf_text) {
  std::string out;
  out.reserve(lf_text.size() + lf_text.size() / 20);
  for (size_t i = 0; i < lf_text.size(); ++i) {
    if (lf_text[i] == '\n' && (i == 0 || lf_text[i - 1] != '\r')) out.push_back('\r');
    out.push_back(lf_text[i]);
  }
  return out;
}

// One byte of the body changed (the first visible one), or a line added to an empty body.
std::string tamper_body(std::string message) {
  size_t start = message.find("\r\n\r\n");
  if (start == std::string::npos) return message + "\r\nx\r\n";
  start += 4;
  size_t at = message.find_first_not_of(" \t\r\n", start);
  if (at == std::string::npos) return message.insert(start, "x\r\n");
  message[at] = message[at] == 'x' ? 'y' : 'x';
  return message;
}

std::string tamper_subject(std::string message) {
  size_t at = message.find("\r\nSubject:");
  if (at == std::string::npos) return {};
  return message.insert(at + 10, "X");
}

std::string signed_copy(const DkimSigner& signer, const std::string& message) {
  auto field = signer.sign(message);
  EXPECT_TRUE(field.is_ok()) << field.status().message();
  return field.is_ok() ? *field + message : message;
}

// Adds the signed message and its two tampered copies.
void add_signed(std::vector<Case>& cases, const std::string& name, const DkimSigner& signer,
                const DkimKey& key, const std::string& message) {
  const std::string qname =
      signer.options().selector + "._domainkey." + signer.options().domain + ".";
  const std::string txt = key.dns_txt_value();
  std::string signed_message = signed_copy(signer, message);
  cases.push_back({name, signed_message, txt, qname, true});
  cases.push_back({name + "/body-changed", tamper_body(signed_message), txt, qname, false});
  std::string subject = tamper_subject(signed_message);
  if (!subject.empty()) cases.push_back({name + "/subject-changed", subject, txt, qname, false});
}

const char kHeaders[] =
    "From: Campaign <news@example.com>\r\n"
    "To: Reader <reader@example.net>\r\n"
    "Subject: December news\r\n"
    "Date: Thu, 03 Dec 2026 10:00:00 +0000\r\n"
    "Message-ID: <c1.r1@example.com>\r\n"
    "MIME-Version: 1.0\r\n";

// The messages a campaign sends, in the shapes that break canonicalization when it is wrong.
std::vector<std::pair<std::string, std::string>> sample_messages() {
  std::vector<std::pair<std::string, std::string>> m;
  m.push_back(
      {"plain-ascii", std::string(kHeaders) +
                          "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
                          "Hello,\r\n\r\nThis is the  news   letter.\r\n\t-- \r\nTeam\r\n"});
  m.push_back(
      {"utf8-qp", std::string(kHeaders) +
                      "Content-Type: text/plain; charset=utf-8\r\n"
                      "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                      "Caf=C3=A9 cr=C3=A8me br=C3=BBl=C3=A9e =E2=80=94 a line that is "
                      "long enough to be=\r\n broken with a soft line break =E2=9C=93=20\r\n"
                      "\r\n=E6=97=A5=E6=9C=AC=E8=AA=9E\r\n"});
  m.push_back({"utf8-8bit", std::string(kHeaders) + "Content-Type: text/plain; charset=utf-8\r\n"
                                                    "Content-Transfer-Encoding: 8bit\r\n\r\n"
                                                    "Gr\xc3\xbc\xc3\x9f"
                                                    "e \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac\r\n"});
  m.push_back({"long-folded",
               "From: Campaign <news@example.com>\r\n"
               "To: One <one@example.net>, Two <two@example.net>,\r\n"
               "\tThree <three@example.net>, Four <four@example.net>,\r\n"
               "    Five <five@example.net>\r\n"
               "Subject: =?UTF-8?Q?A_very_long_subject_that_goes_on_and_on_?=\r\n"
               " =?UTF-8?Q?and_is_folded_twice_=E2=80=94_over_three?=\r\n"
               "\t  =?UTF-8?Q?lines?=\r\n"
               "Date: Thu, 03 Dec 2026 10:00:00 +0000\r\n"
               "Message-ID: <c1.r2@example.com>\r\n"
               "List-Unsubscribe: <https://example.com/u/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa>,\r\n"
               " <mailto:unsubscribe+aaaaaaaaaaaaaaaaaaaaaaaa@example.com>\r\n"
               "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
               "\r\n"
               "Body.\r\n"});
  m.push_back({"empty-body", std::string(kHeaders) + "\r\n"});
  m.push_back(
      {"trailing-blank-lines", std::string(kHeaders) + "\r\nLast line  \t\r\n\r\n\r\n   \r\n\r\n"});
  m.push_back({"repeated-field", "Comments: first\r\n" + std::string(kHeaders) +
                                     "Received: from a.example.com\r\n"
                                     "Received: from b.example.com\r\n"
                                     "Comments: second\r\n\r\nBody\r\n"});
  return m;
}

struct SigningKeys {
  DkimKey rsa;
  DkimKey ed25519;
};

SigningKeys generated_keys() {
  return {*DkimKey::generate(Algorithm::kRsaSha256, 2048),
          *DkimKey::generate(Algorithm::kEd25519Sha256)};
}

DkimSigner make_signer(const DkimKey& key, const std::string& domain, const std::string& selector) {
  SignerOptions o;
  o.domain = domain;
  o.selector = selector;
  o.headers.push_back("Comments");
  auto signer = DkimSigner::create(o, key);
  EXPECT_TRUE(signer.is_ok()) << signer.status().message();
  return *signer;
}

TEST(DkimpyVerify, SampleMessagesPassAndTamperedCopiesFail) {
  if (!dkimpy_available()) GTEST_SKIP() << "/usr/bin/python3 with dkimpy (import dkim) missing";
  SigningKeys keys = generated_keys();
  DkimSigner rsa = make_signer(keys.rsa, "example.com", "rsa2026");
  DkimSigner ed = make_signer(keys.ed25519, "example.com", "ed2026");

  std::vector<Case> cases;
  for (const auto& [name, message] : sample_messages()) {
    add_signed(cases, "rsa2048/" + name, rsa, keys.rsa, message);
    add_signed(cases, "ed25519/" + name, ed, keys.ed25519, message);
  }

  // Repeated field: only the bottom Comments is signed, so changing the top one still passes.
  const std::string repeated = sample_messages().back().second;
  for (auto* s : {&rsa, &ed}) {
    const DkimKey& key = s == &rsa ? keys.rsa : keys.ed25519;
    std::string qname = s->options().selector + "._domainkey.example.com.";
    std::string sm = signed_copy(*s, repeated);
    std::string top = sm, bottom = sm;
    top.replace(top.find("Comments: first"), 15, "Comments: FIRST");
    bottom.replace(bottom.find("Comments: second"), 16, "Comments: SECOND");
    std::string prefix = s == &rsa ? "rsa2048" : "ed25519";
    cases.push_back({prefix + "/repeated-top-changed", top, key.dns_txt_value(), qname, true});
    cases.push_back(
        {prefix + "/repeated-bottom-changed", bottom, key.dns_txt_value(), qname, false});
  }

  // Over-signed From: a second From added above the signed one must fail.
  SignerOptions o;
  o.domain = "example.com";
  o.selector = "ed2026";
  o.headers = {"From", "From", "To", "Subject", "Date", "Message-ID"};
  o.sign_absent_headers = true;
  auto over = DkimSigner::create(o, keys.ed25519);
  ASSERT_TRUE(over.is_ok());
  std::string plain = sample_messages().front().second;
  std::string osm = signed_copy(*over, plain);
  std::string qname = "ed2026._domainkey.example.com.";
  cases.push_back({"ed25519/oversigned", osm, keys.ed25519.dns_txt_value(), qname, true});
  std::string extra_from = osm;
  extra_from.insert(extra_from.find("From: Campaign"), "From: Attacker <a@example.org>\r\n");
  cases.push_back(
      {"ed25519/oversigned-from-added", extra_from, keys.ed25519.dns_txt_value(), qname, false});

  // A wrong selector record: the right message with another RSA key's TXT must fail.
  auto other = DkimKey::generate(Algorithm::kRsaSha256, 1024);
  ASSERT_TRUE(other.is_ok());
  cases.push_back({"rsa2048/wrong-key", signed_copy(rsa, plain), other->dns_txt_value(),
                   "rsa2026._domainkey.example.com.", false});

  // 7 messages x 2 keys x 3 (signed, body, subject) + 4 repeated + 2 over-signed + 1 wrong key.
  ASSERT_EQ(cases.size(), 49u);
  int as_expected = score(cases);
  std::printf("dkimpy verdicts as expected on sample messages: %d/%zu\n", as_expected,
              cases.size());
  EXPECT_EQ(as_expected, 49);
}

std::string trim_line_ends(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

TEST(DkimpyVerify, CorpusMessagesSignedByUsVerify) {
  if (!dkimpy_available()) GTEST_SKIP() << "/usr/bin/python3 with dkimpy (import dkim) missing";
  MAGNETIC_REQUIRE_CORPORA(corpora);
  const auto dkimpy_dir = corpora / "dkim" / "dkimpy";
  const auto mail_auth_dir = corpora / "dkim" / "mail-auth-verify";
  std::vector<Case> cases;

  // dkimpy's own keys and messages: its 1024-bit RSA test key at test._domainkey.example.com,
  // its Ed25519 key at test._domainkey.example.net.
  auto rsa1024 = DkimKey::load_pem_file((dkimpy_dir / "test.private").string());
  ASSERT_TRUE(rsa1024.is_ok()) << rsa1024.status().message();
  const std::string rsa_txt = testing::read_file(dkimpy_dir / "test.txt");
  DkimSigner rsa_signer = make_signer(*rsa1024, "example.com", "test");
  for (const char* file : {"test.message", "test2.message", "test_extra.message", "message.mbox"}) {
    std::string message = crlf(testing::read_file(dkimpy_dir / file));
    std::string sm = signed_copy(rsa_signer, message);
    std::string qname = "test._domainkey.example.com.";
    cases.push_back({std::string("dkimpy/") + file, sm, rsa_txt, qname, true});
    cases.push_back(
        {std::string("dkimpy/") + file + "/body-changed", tamper_body(sm), rsa_txt, qname, false});
  }
  auto ed_key = DkimKey::from_ed25519_seed(
      testing::base64_decode(trim_line_ends(testing::read_file(dkimpy_dir / "ed25519test.key"))));
  ASSERT_TRUE(ed_key.is_ok()) << ed_key.status().message();
  const std::string ed_txt = testing::read_file(dkimpy_dir / "ed25519test.dns");
  DkimSigner ed_signer = make_signer(*ed_key, "example.net", "test");
  {
    std::string sm =
        signed_copy(ed_signer, crlf(testing::read_file(dkimpy_dir / "ed25519test.msg")));
    cases.push_back({"dkimpy/ed25519test.msg", sm, ed_txt, "test._domainkey.example.net.", true});
    cases.push_back({"dkimpy/ed25519test.msg/body-changed", tamper_body(sm), ed_txt,
                     "test._domainkey.example.net.", false});
  }
  // test_nofrom.message: signing must refuse, as dkimpy's own signer does.
  auto nofrom = rsa_signer.sign(crlf(testing::read_file(dkimpy_dir / "test_nofrom.message")));
  ASSERT_FALSE(nofrom.is_ok());
  EXPECT_EQ(nofrom.status().message(), "message has no From field to sign");

  // mail-auth's real-world messages (DNS lines, a blank line, then the message with LF
  // endings), re-signed with fresh keys; our signature goes on top of theirs.
  SigningKeys keys = generated_keys();
  DkimSigner rsa = make_signer(keys.rsa, "example.com", "rsa2026");
  DkimSigner ed = make_signer(keys.ed25519, "example.com", "ed2026");
  for (const char* file : {"001.txt", "002.txt", "003.txt", "004.txt", "005.txt", "006.txt"}) {
    std::string text = testing::read_file(mail_auth_dir / file);
    size_t split = text.find("\n\n");
    ASSERT_NE(split, std::string::npos) << file;
    std::string message = crlf(text.substr(split + 2));
    add_signed(cases, std::string("mail-auth/") + file + "/rsa2048", rsa, keys.rsa, message);
    add_signed(cases, std::string("mail-auth/") + file + "/ed25519", ed, keys.ed25519, message);
  }

  // dkimpy: 5 messages x 2; mail-auth: 6 messages x 2 keys x 3 (every one has a Subject).
  ASSERT_EQ(cases.size(), 10u + 36u);
  int as_expected = score(cases);
  std::printf("dkimpy verdicts as expected on corpus messages: %d/%zu\n", as_expected,
              cases.size());
  EXPECT_EQ(as_expected, 46);
}

}  // namespace
}  // namespace magnetic::dkim
