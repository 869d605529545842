#include "mail/address.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "test_support.h"

namespace magnetic::mail {
namespace {

std::string error_of(std::string_view text, AddressOptions options = {}) {
  auto r = parse_address(text, options);
  return r ? "accepted" : r.status().message();
}

TEST(ParseAddress, AcceptsPlainQuotedAndLiteralForms) {
  auto r = parse_address("first.last+tag@example.com");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->local, "first.last+tag");
  EXPECT_EQ(r->domain, "example.com");
  EXPECT_EQ(r->display_name, "");
  EXPECT_EQ(r->address(), "first.last+tag@example.com");

  EXPECT_EQ(parse_address("\"john doe\"@example.com")->local, "\"john doe\"");
  EXPECT_EQ(parse_address("\"a\\\"b\"@example.com")->local, "\"a\\\"b\"");
  EXPECT_EQ(parse_address("user@[192.0.2.1]")->domain, "[192.0.2.1]");
  EXPECT_EQ(parse_address("user@[IPv6:2001:db8::1]")->domain, "[IPv6:2001:db8::1]");
  EXPECT_EQ(parse_address("user@localhost")->domain, "localhost");  // RFC 5321 allows one label
}

TEST(ParseAddress, ErrorsSayWhy) {
  EXPECT_EQ(error_of(""), "address is empty");
  EXPECT_EQ(error_of("user"), "address has no @ and domain");
  EXPECT_EQ(error_of("@example.com"), "local part is empty");
  EXPECT_EQ(error_of("user@"), "domain is empty");
  EXPECT_EQ(error_of(std::string(65, 'a') + "@example.com"), "local part longer than 64 octets");
  EXPECT_EQ(error_of(".user@example.com"), "local part starts with a dot");
  EXPECT_EQ(error_of("user.@example.com"), "local part ends with a dot");
  EXPECT_EQ(error_of("us..er@example.com"), "local part has two dots in a row");
  EXPECT_EQ(error_of("us er@example.com"), "local part contains a space, which needs quoting");
  EXPECT_EQ(error_of("a@b@example.com"), "address has more than one @ (quote the local part)");
  EXPECT_EQ(error_of("\"abc@example.com"), "quoted local part has no closing quote");
  EXPECT_EQ(error_of("\"a\"b@example.com"), "quoted local part is followed by 'b' instead of @");
  EXPECT_EQ(error_of("\"a\x07\"@example.com"), "quoted local part contains control character 0x07");
  EXPECT_EQ(error_of("user@-example.com"), "domain label starts with a hyphen");
  EXPECT_EQ(error_of("user@example-.com"), "domain label ends with a hyphen");
  EXPECT_EQ(error_of("user@.example.com"), "domain starts with a dot");
  EXPECT_EQ(error_of("user@example.com."), "domain ends with a dot");
  EXPECT_EQ(error_of("user@example..com"), "domain has two dots in a row");
  EXPECT_EQ(error_of("user@exa_mple.com"), "domain contains '_'");
  EXPECT_EQ(error_of("user@" + std::string(64, 'a') + ".com"),
            "domain label longer than 63 octets");
  std::string long_domain;
  for (int i = 0; i < 5; ++i) long_domain += std::string(60, 'a') + ".";
  long_domain += "com";  // 303 octets
  EXPECT_EQ(error_of("user@" + long_domain), "domain longer than 255 octets");
  std::string domain_240;
  for (int i = 0; i < 4; ++i) domain_240 += std::string(59, 'b') + ".";
  domain_240 += "test";  // 244 octets: a fine domain, but the path is too long
  EXPECT_EQ(error_of(std::string(20, 'a') + "@" + domain_240), "address longer than 254 octets");
  EXPECT_EQ(error_of("user@[192.0.2.256]"),
            "address literal is neither an IPv4 address nor [IPv6:...]");
  EXPECT_EQ(error_of("user@[IPv6:2001:db8::g]"), "address literal is not a valid IPv6 address");
  EXPECT_EQ(error_of("user@[192.0.2.1"), "address literal has no closing ']'");
  EXPECT_EQ(error_of("user@[IPv6:1:2:3:4:5:6::8]"),
            "address literal has \"::\" standing for a single zero group");
  EXPECT_EQ(error_of("user@[IPv6:1:2:3:4:5::8]"), "accepted");
  EXPECT_EQ(error_of("user@[IPv6:1:2:3:4::192.0.2.1]"), "accepted");
  EXPECT_EQ(error_of("user@[IPv6:1:2:3:4:5::192.0.2.1]"),
            "address literal has \"::\" standing for a single zero group");
}

TEST(ParseAddress, IdnDomainBecomesALabels) {
  EXPECT_EQ(parse_address("user@b\xc3\xbc"
                          "cher.example")
                ->domain,
            "xn--bcher-kva.example");
  // Non-transitional: sharp s stays itself instead of becoming "ss" (IDNA 2008 / UTS #46).
  EXPECT_EQ(parse_address("user@fa\xc3\x9f.example")->domain, "xn--fa-hia.example");
  EXPECT_EQ(error_of("user@\xff.example"), "domain is not valid UTF-8");
  EXPECT_EQ(error_of("user@a\xe2\x80\x8e"
                     "b.example"),
            "international domain cannot be converted: string contains a disallowed character");
}

TEST(ParseAddress, Utf8LocalPartNeedsSmtputf8) {
  EXPECT_EQ(error_of("j\xc3\xb6rg@example.com"), "local part is not ASCII (needs SMTPUTF8)");
  EXPECT_EQ(error_of("\"j\xc3\xb6rg\"@example.com"), "local part is not ASCII (needs SMTPUTF8)");
  AddressOptions utf8{.smtputf8 = true};
  auto r = parse_address("j\xc3\xb6rg@example.com", utf8);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->local, "j\xc3\xb6rg");
  EXPECT_EQ(error_of("j\xc3rg@example.com", utf8), "local part is not valid UTF-8");
}

TEST(ParseMailbox, NameAddressForms) {
  auto r = parse_mailbox("Joe Public <joe@example.com>");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->display_name, "Joe Public");
  EXPECT_EQ(r->address(), "joe@example.com");

  r = parse_mailbox("\"Last, First \\\"Nick\\\"\" <first.last@example.com>");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->display_name, "Last, First \"Nick\"");

  r = parse_mailbox("=?UTF-8?Q?Andr=C3=A9?= Pirard <andre@example.com>");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->display_name, "Andr\xc3\xa9 Pirard");

  r = parse_mailbox("=?ISO-8859-1?Q?Keld_J=F8rn?= <keld@example.com>");
  EXPECT_EQ(r->display_name, "Keld J\xc3\xb8rn");

  r = parse_mailbox("  bare@example.com  ");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->display_name, "");
  EXPECT_EQ(r->address(), "bare@example.com");

  r = parse_mailbox("<angle@example.com>");
  EXPECT_EQ(r->display_name, "");
  EXPECT_EQ(r->address(), "angle@example.com");

  r = parse_mailbox(
      "Jos\xc3\xa9 <jose@b\xc3\xbc"
      "cher.example>");
  EXPECT_EQ(r->display_name, "Jos\xc3\xa9");
  EXPECT_EQ(r->domain, "xn--bcher-kva.example");

  r = parse_mailbox("\"a <b@c>\" <real@example.com>");
  EXPECT_EQ(r->display_name, "a <b@c>");
  EXPECT_EQ(r->address(), "real@example.com");
}

TEST(ParseMailbox, Refusals) {
  EXPECT_EQ(parse_mailbox("Evil\r\nBcc: x@example.com <a@example.com>").status().message(),
            "mailbox contains a control character");
  EXPECT_EQ(parse_mailbox("Name a@example.com>").status().message(), "mailbox has '>' without '<'");
  EXPECT_EQ(parse_mailbox("\"Name <a@example.com>").status().message(),
            "mailbox has '>' without '<'");
  EXPECT_EQ(parse_mailbox("Name <a@example.com> (comment)").status().message(),
            "mailbox has text after the address's closing '>'");
  EXPECT_EQ(parse_mailbox("Name <a@example.com").status().message(), "mailbox has '<' without '>'");
  EXPECT_EQ(parse_mailbox("Name <a@@example.com>").status().message(),
            "address has more than one @ (quote the local part)");
}

// Regression (mailbox_list_read_as_one_name): specials outside quotes make a list or a second
// address, not a name; "Bob <bob@evil.test>, News <news@example.com>" was read as the name
// "Bob <bob@evil.test>, News" of news@example.com.
TEST(ParseMailbox, SpecialsOutsideQuotesAreRefused) {
  EXPECT_EQ(parse_mailbox("Bob <bob@evil.test>, News <news@example.com>").status().message(),
            "display name has '<' outside quotes (quote the name)");
  EXPECT_EQ(parse_mailbox("bob@evil.test <news@example.com>").status().message(),
            "display name has '@' outside quotes (quote the name)");
  EXPECT_EQ(parse_mailbox("Last, First <a@example.com>").status().message(),
            "display name has ',' outside quotes (quote the name)");
  EXPECT_EQ(parse_mailbox("To: <a@example.com>").status().message(),
            "display name has ':' outside quotes (quote the name)");
  // Quoted, they are a name; the address repeated as the name is taken; '.' is allowed.
  EXPECT_EQ(parse_mailbox("\"Last, First <x@y>\" <a@example.com>")->display_name,
            "Last, First <x@y>");
  EXPECT_EQ(parse_mailbox("A@Example.com <a@example.com>")->display_name, "A@Example.com");
  EXPECT_EQ(parse_mailbox("John Q. Public <a@example.com>")->display_name, "John Q. Public");
}

// The is_email suite (corpora/email-address, see its SOURCES.md), scored as a sending service
// sees envelope addresses. Mapping of categories to our verdict:
//   ISEMAIL_VALID_CATEGORY, ISEMAIL_DNSWARN, ISEMAIL_RFC5321  -> we accept (RFC 5321 valid;
//     DNSWARN is syntax-valid, its warning came from live DNS; RFC5321 covers quoted local
//     parts, address literals and one-label or numeric TLD domains).
//   ISEMAIL_CFWS (comments, folding whitespace), ISEMAIL_DEPREC (obsolete RFC 822 syntax),
//   ISEMAIL_RFC5322 (valid in a message header only: too long, general domain literals),
//   ISEMAIL_ERR -> we refuse.
struct Case {
  std::string id;
  std::string address;
  std::string category;
  std::string diagnosis;
};

std::vector<Case> load_isemail(const std::filesystem::path& tsv) {
  std::vector<Case> cases;
  std::istringstream in(magnetic::testing::read_file(tsv));
  std::string line;
  std::getline(in, line);  // header row
  while (std::getline(in, line)) {
    std::vector<std::string> cols;
    size_t start = 0;
    while (true) {
      size_t tab = line.find('\t', start);
      cols.push_back(
          line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    if (cols.size() < 5) continue;
    // The address column is a JSON string body (escapes only, no quotes); DEL is left raw.
    std::string address = nlohmann::json::parse("\"" + cols[1] + "\"").get<std::string>();
    cases.push_back({cols[0], address, cols[2], cols[4]});
  }
  return cases;
}

bool we_should_accept(const std::string& category) {
  return category == "ISEMAIL_VALID_CATEGORY" || category == "ISEMAIL_DNSWARN" ||
         category == "ISEMAIL_RFC5321";
}

struct Score {
  size_t agree = 0;
  size_t total = 0;
  std::set<std::string> disagreements;  // ids
};

Score score_isemail(const std::vector<Case>& cases, const char* label) {
  Score score;
  for (const auto& c : cases) {
    auto r = parse_address(c.address);
    bool ok = r.is_ok() == we_should_accept(c.category);
    ++score.total;
    if (ok) {
      ++score.agree;
    } else {
      score.disagreements.insert(c.id);
      std::cout << "  " << label << " #" << c.id << " " << c.diagnosis << " "
                << nlohmann::json(c.address).dump() << " -> "
                << (r ? std::string("accepted") : r.status().message()) << "\n";
    }
  }
  std::cout << label << ": " << score.agree << "/" << score.total << " agree\n";
  return score;
}

// Level reached on isemail-tests.tsv (164 cases): all agree.
constexpr size_t kIsemailAgree = 164;
// Level reached on isemail-tests-original.tsv (279 cases, suite v3.04): 273. The 6 known
// disagreements are all ISEMAIL_RFC5321_IPV6DEPRECATED, a "::" that stands for one zero group
// (e.g. #45 [IPv6:1111:2222:3333::4444:5555:6666:7777]). v3.04 put that diagnosis in the
// RFC5321 category; v3.05 moved it to DEPREC (meta.xml change log, 2013-11-30), and RFC 5321
// 4.1.3 (IPv6-comp: at most 6 groups beside "::", 4 with an IPv4 tail) refuses it, so we refuse.
const std::set<std::string> kOriginalDisagreements = {"39", "45", "230", "231", "252", "254"};
constexpr size_t kOriginalAgree = 273;

TEST(ParseAddress, IsEmailSuiteAsEnvelopeAddresses) {
  MAGNETIC_REQUIRE_CORPORA(corpora);
  auto cases = load_isemail(corpora / "email-address" / "isemail-tests.tsv");
  ASSERT_EQ(cases.size(), 164u);
  Score s = score_isemail(cases, "isemail-tests");
  EXPECT_GE(s.agree, kIsemailAgree);

  auto original = load_isemail(corpora / "email-address" / "isemail-tests-original.tsv");
  ASSERT_EQ(original.size(), 279u);
  Score o = score_isemail(original, "isemail-tests-original");
  EXPECT_GE(o.agree, kOriginalAgree);
  for (const auto& id : o.disagreements) {
    EXPECT_TRUE(kOriginalDisagreements.count(id)) << "new disagreement #" << id;
  }
}

}  // namespace
}  // namespace magnetic::mail

namespace magnetic::mail {
namespace {

// mail-parser address.json (corpora/mime-headers, see its SOURCES.md): the cases that hold one
// mailbox with an address, read with parse_mailbox. parse_mailbox is for names people type
// (--from, contact imports), not for received headers, so comments, groups and obsolete routes
// are out of its scope and refused; the score is printed and held at the level reached.
// Level reached: 26 of 36. Known disagreements, by index:
//   8, 9, 14, 22, 56: comments ("Pete(A nice chap)", "<pete(his account)@silly.test>"), which
//       mail-parser folds into the name and we refuse or keep as text.
//   25, 28, 31, 59: encoded-words inside a quoted string, which mail-parser decodes and RFC 2047
//       5(3) says are not encoded-words.
//   55: "<a@b.com> =?utf-8?q?Doe?=", a name after the address.
const std::set<size_t> kMailboxDisagreements = {8, 9, 14, 22, 25, 28, 31, 55, 56, 59};
constexpr size_t kMailboxAgree = 26;

TEST(ParseMailbox, MailParserSingleMailboxVectors) {
  MAGNETIC_REQUIRE_CORPORA(corpora);
  auto cases = nlohmann::json::parse(
      magnetic::testing::read_file(corpora / "mime-headers" / "mail-parser" / "address.json"));
  size_t agree = 0, total = 0;
  std::vector<size_t> misses;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& expected = cases[i]["expected"];
    if (!expected.contains("List") || expected["List"].size() != 1) continue;
    const auto& entry = expected["List"][0];
    if (!entry["address"].is_string()) continue;
    std::string address = entry["address"];
    if (address.find('@') == std::string::npos || address.find(':') != std::string::npos) continue;
    std::string name = entry["name"].is_string() ? entry["name"].get<std::string>() : "";

    // The field value: up to the first line break not followed by whitespace, unfolded.
    std::string raw = cases[i]["header"];
    std::string value;
    for (size_t k = 0; k < raw.size(); ++k) {
      if (raw[k] == '\r') continue;
      if (raw[k] == '\n') {
        if (k + 1 < raw.size() && (raw[k + 1] == ' ' || raw[k + 1] == '\t')) continue;
        break;
      }
      value.push_back(raw[k]);
    }
    auto r = parse_mailbox(value);
    ++total;
    if (r && r->display_name == name && r->address() == address) {
      ++agree;
    } else {
      misses.push_back(i);
      std::cout << "  address #" << i << " " << nlohmann::json(value).dump() << " -> "
                << (r ? nlohmann::json(r->display_name).dump() + " " + r->address()
                      : r.status().message())
                << "\n";
    }
  }
  std::cout << "mail-parser single mailboxes: " << agree << "/" << total << " agree\n";
  EXPECT_EQ(total, 36u);
  EXPECT_GE(agree, kMailboxAgree);
  for (size_t i : misses) EXPECT_TRUE(kMailboxDisagreements.count(i)) << "new disagreement #" << i;
}

}  // namespace
}  // namespace magnetic::mail

namespace magnetic::mail {
namespace {

// Routes, counts and duplicate checks key on the domain: it must have one spelling.
TEST(Address, domain_is_returned_in_lower_case) {
  auto m = parse_address("Ann@Mail.X.Example");
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ(m->address(), "Ann@mail.x.example");
}

}  // namespace
}  // namespace magnetic::mail
