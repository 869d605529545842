#include "mail/header.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "test_support.h"

namespace magnetic::mail {
namespace {

// What a reader takes from "Name: value\r\n": the value, unfolded and decoded.
std::string read_back(const std::string& field) {
  size_t colon = field.find(':');
  EXPECT_NE(colon, std::string::npos);
  EXPECT_GE(field.size(), 2u);
  EXPECT_EQ(field.substr(field.size() - 2), "\r\n");
  std::string value = field.substr(colon + 1, field.size() - colon - 3);
  if (!value.empty() && value[0] == ' ') value.erase(0, 1);
  return decode_words(value);
}

// The value as the header functions promise to carry it: control runs become one space.
std::string controls_to_space(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      while (i < s.size() && (static_cast<unsigned char>(s[i]) < 0x20 || s[i] == 0x7f)) ++i;
      out.push_back(' ');
    } else {
      out.push_back(s[i++]);
    }
  }
  return out;
}

// Every line within 78 (76 where it holds an encoded-word), every encoded-word within 75, no
// CR or LF but the CRLF that ends a line, and only the first line starts without whitespace.
void expect_well_formed(const std::string& field) {
  ASSERT_GE(field.size(), 2u);
  ASSERT_EQ(field.substr(field.size() - 2), "\r\n");
  size_t start = 0;
  bool first = true;
  while (start < field.size()) {
    size_t end = field.find("\r\n", start);
    ASSERT_NE(end, std::string::npos);
    std::string line = field.substr(start, end - start);
    EXPECT_EQ(line.find('\r'), std::string::npos) << field;
    EXPECT_EQ(line.find('\n'), std::string::npos) << field;
    bool has_word = line.find("=?UTF-8?") != std::string::npos;
    // Longer only when the line cannot fold: one word after "Name: " or after the indent.
    size_t body = first ? line.find(": ") + 2 : line.find_first_not_of(' ');
    size_t last = line.find_last_not_of(' ');
    bool one_word = body != std::string::npos && line.find(' ', body) >= last;
    EXPECT_LE(line.size(), one_word ? 998u : has_word ? 76u : 78u) << line;
    if (!first) {
      EXPECT_TRUE(!line.empty() && line[0] == ' ') << line;
      EXPECT_NE(line.find_first_not_of(' '), std::string::npos) << "whitespace-only line";
    }
    for (size_t w = line.find("=?UTF-8?"); w != std::string::npos;
         w = line.find("=?UTF-8?", w + 1)) {
      size_t close = line.find("?=", w + 10);
      ASSERT_NE(close, std::string::npos) << line;
      EXPECT_LE(close + 2 - w, 75u) << line;
    }
    first = false;
    start = end + 2;
  }
}

TEST(FormatUnstructured, AsciiStaysLiteralAndFoldsAt78) {
  EXPECT_EQ(format_unstructured("Subject", "Hello"), "Subject: Hello\r\n");
  EXPECT_EQ(format_unstructured("Subject", ""), "Subject:\r\n");
  EXPECT_EQ(format_unstructured("Subject",
                                "This is a long plain ascii subject line that will need to be "
                                "folded somewhere near the limit ok"),
            "Subject: This is a long plain ascii subject line that will need to be folded\r\n"
            " somewhere near the limit ok\r\n");
  // Runs of spaces survive folding: the fold goes before them.
  std::string spaced = std::string(60, 'a') + "     " + std::string(20, 'b');
  EXPECT_EQ(format_unstructured("X-Test", spaced),
            "X-Test: " + std::string(60, 'a') + "\r\n     " + std::string(20, 'b') + "\r\n");
}

TEST(FormatUnstructured, NonAsciiBecomesShortestEncodedWords) {
  // "õhin" is shorter in B (=?UTF-8?B?w7VoaW4=?=, 20) than in Q (=?UTF-8?Q?=C3=B5hin?=, 21).
  EXPECT_EQ(format_unstructured("Subject", "Tere \xc3\xb5hin"),
            "Subject: Tere =?UTF-8?B?w7VoaW4=?=\r\n");
  // Short words favour B; a longer mostly-ASCII word favours Q (17 against 20 characters).
  EXPECT_EQ(format_unstructured("Subject", "Caf\xc3\xa9"), "Subject: =?UTF-8?B?Q2Fmw6k=?=\r\n");
  EXPECT_EQ(format_unstructured("Subject", "Biblioth\xc3\xa8que"),
            "Subject: =?UTF-8?Q?Biblioth=C3=A8que?=\r\n");
  EXPECT_EQ(format_unstructured("Subject",
                                "Gr\xc3\xbc\xc3\x9f"
                                "e aus K\xc3\xb6ln"),
            "Subject: =?UTF-8?B?R3LDvMOfZQ==?= aus =?UTF-8?B?S8O2bG4=?=\r\n");
  // Adjacent words that need encoding share one encoded-word, their space inside it.
  EXPECT_EQ(format_unstructured("Subject", "Jos\xc3\xa9 M\xc3\xbcller"),
            "Subject: =?UTF-8?B?Sm9zw6kgTcO8bGxlcg==?=\r\n");
}

TEST(FormatUnstructured, LongNonAsciiSplitsOnCharacterBoundaries) {
  // 40 Cyrillic letters (2 octets each) do not fit one word; no word may split a character.
  std::string text;
  for (int i = 0; i < 40; ++i) text += "\xd0\xb6";
  std::string field = format_unstructured("Subject", text);
  EXPECT_EQ(field,
            "Subject: =?UTF-8?B?0LbQttC20LbQttC20LbQttC20LbQttC20LbQttC20LbQttC20LY=?=\r\n"
            " =?UTF-8?B?0LbQttC20LbQttC20LbQttC20LbQttC20LbQttC20LbQttC20LbQttC2?=\r\n");
  expect_well_formed(field);
  EXPECT_EQ(read_back(field), text);
}

TEST(FormatUnstructured, crlf_in_subject_cannot_add_header) {
  EXPECT_EQ(format_unstructured("Subject", "Hello\r\nBcc: victim@example.com"),
            "Subject: Hello Bcc: victim@example.com\r\n");
  EXPECT_EQ(format_unstructured("Subject", "Hello\nBcc: victim@example.com"),
            "Subject: Hello Bcc: victim@example.com\r\n");
  EXPECT_EQ(format_unstructured("Subject", "Hello\rBcc: victim@example.com"),
            "Subject: Hello Bcc: victim@example.com\r\n");
  // A blank line would end the header block and start the body.
  EXPECT_EQ(format_unstructured("Subject", "Hi\r\n\r\n<html>body</html>"),
            "Subject: Hi <html>body</html>\r\n");
}

TEST(FormatUnstructured, crlf_in_non_ascii_subject_cannot_add_header) {
  EXPECT_EQ(format_unstructured("Subject", "Caf\xc3\xa9\r\nBcc: victim@example.com"),
            "Subject: =?UTF-8?B?Q2Fmw6k=?= Bcc: victim@example.com\r\n");
}

TEST(FormatUnstructured, controls_in_subject_become_one_space) {
  EXPECT_EQ(format_unstructured("Subject", std::string("a\0b\x7f\x1b[31mc\td", 12)),
            "Subject: a b [31mc d\r\n");
}

TEST(FormatUnstructured, text_that_looks_like_an_encoded_word_is_encoded) {
  std::string field = format_unstructured("Subject", "=?UTF-8?Q?x?= ok");
  EXPECT_EQ(field, "Subject: =?UTF-8?B?PT9VVEYtOD9RP3g/PQ==?= ok\r\n");
  EXPECT_EQ(read_back(field), "=?UTF-8?Q?x?= ok");
}

TEST(FormatUnstructured, invalid_utf8_becomes_replacement_character) {
  EXPECT_EQ(format_unstructured("Subject", "a\xff"), "Subject: =?UTF-8?B?Ye+/vQ==?=\r\n");
}

TEST(FormatUnstructured, huge_word_never_exceeds_998) {
  std::string word(3000, 'x');
  std::string field = format_unstructured("Subject", "see " + word);
  expect_well_formed(field);  // encoded into words because no line may hold it
  EXPECT_EQ(read_back(field), "see " + word);
  std::string fits(900, 'y');
  field = format_unstructured("Subject", "see " + fits);
  EXPECT_EQ(field, "Subject: see\r\n " + fits + "\r\n");  // a long line, but legal
}

TEST(FormatUnstructured, bad_field_name_cannot_add_header) {
  EXPECT_EQ(format_unstructured("X-A\r\nBcc: v@example.com\r\nX-B", "v"),
            "X-ABccv@example.comX-B: v\r\n");
}

TEST(FormatUnstructured, RandomTextRoundTripsAndStaysWellFormed) {
  std::mt19937 rng(20261203);
  const std::vector<std::string> alphabet = {"a",
                                             "b",
                                             "Z",
                                             " ",
                                             " ",
                                             "  ",
                                             "=",
                                             "?",
                                             "_",
                                             "=?",
                                             "?=",
                                             ".",
                                             ",",
                                             "\"",
                                             "\r\n",
                                             "\t",
                                             "\xc3\xa9",
                                             "\xd0\xb6",
                                             "\xe2\x82\xac",
                                             "\xf0\x9f\x98\x8a",
                                             "\xe4\xb8\xad",
                                             "(",
                                             ")"};
  for (int round = 0; round < 2000; ++round) {
    std::string text;
    size_t n = rng() % 120;
    for (size_t i = 0; i < n; ++i) text += alphabet[rng() % alphabet.size()];
    std::string field = format_unstructured("Subject", text);
    expect_well_formed(field);
    EXPECT_EQ(read_back(field), controls_to_space(text)) << field;
    EXPECT_EQ(decode_words(encode_words(text)), controls_to_space(text));
    if (HasFailure()) break;
  }
}

TEST(FormatMailbox, DisplayNamesQuotedOrEncoded) {
  Mailbox m{"", "user", "example.com"};
  EXPECT_EQ(format_mailbox("To", m), "To: user@example.com\r\n");
  m.display_name = "Joe Public";
  EXPECT_EQ(format_mailbox("From", m), "From: Joe Public <user@example.com>\r\n");
  m.display_name = "Last, First \"Nick\"";
  EXPECT_EQ(format_mailbox("From", m), "From: \"Last, First \\\"Nick\\\"\" <user@example.com>\r\n");
  m.display_name = "Jos\xc3\xa9 M\xc3\xbcller";
  EXPECT_EQ(format_mailbox("From", m),
            "From: =?UTF-8?B?Sm9zw6kgTcO8bGxlcg==?= <user@example.com>\r\n");
  m.display_name = "Ren\xc3\xa9 (Sales)";  // a phrase may not hold "(" literally
  EXPECT_EQ(format_mailbox("From", m),
            "From: =?UTF-8?B?UmVuw6kgKFNhbGVzKQ==?= <user@example.com>\r\n");
}

TEST(FormatMailbox, crlf_in_display_name_cannot_add_header) {
  Mailbox m{"Joe\r\nBcc: victim@example.com", "user", "example.com"};
  EXPECT_EQ(format_mailbox("From", m),
            "From: \"Joe Bcc: victim@example.com\" <user@example.com>\r\n");
  m.display_name = "J\xc3\xb6\r\nBcc: victim@example.com";
  std::string field = format_mailbox("From", m);
  // "Bcc:" and "victim@example.com" are no atoms, so the whole phrase is one encoded-word.
  EXPECT_EQ(field, "From: =?UTF-8?B?SsO2IEJjYzogdmljdGltQGV4YW1wbGUuY29t?= <user@example.com>\r\n");
  EXPECT_EQ(read_back(field), "J\xc3\xb6 Bcc: victim@example.com <user@example.com>");
}

TEST(FormatMailbox, crlf_in_hand_built_address_cannot_add_header) {
  Mailbox m{"", "user\r\nBcc: victim", "example.com"};
  EXPECT_EQ(format_mailbox("To", m), "To: user  Bcc: victim@example.com\r\n");
}

TEST(FormatMailbox, LongNamesFold) {
  Mailbox m{std::string(30, 'A') + " " + std::string(30, 'B') + " " + std::string(20, 'C'), "user",
            "example.com"};
  std::string field = format_mailbox("From", m);
  EXPECT_EQ(field, "From: " + std::string(30, 'A') + " " + std::string(30, 'B') + "\r\n " +
                       std::string(20, 'C') + " <user@example.com>\r\n");
  expect_well_formed(field);
  std::string name;
  for (int i = 0; i < 20; ++i) name += "N\xc3\xa4me ";
  m.display_name = name;
  field = format_mailbox("From", m);
  expect_well_formed(field);
}

TEST(FormatStructured, FoldsAtWhitespaceAndDropsControls) {
  EXPECT_EQ(format_structured("Message-ID", "<abc@example.com>"),
            "Message-ID: <abc@example.com>\r\n");
  EXPECT_EQ(format_structured("List-Unsubscribe",
                              "<https://example.com/unsubscribe/0123456789abcdefghijklmnop>, "
                              "<mailto:unsubscribe@example.com?subject=unsubscribe>"),
            "List-Unsubscribe: <https://example.com/unsubscribe/0123456789abcdefghijklmnop>,\r\n"
            " <mailto:unsubscribe@example.com?subject=unsubscribe>\r\n");
}

TEST(FormatStructured, crlf_in_extra_header_value_cannot_add_header) {
  EXPECT_EQ(format_structured("X-Campaign", "spring\r\nBcc: victim@example.com"),
            "X-Campaign: spring Bcc: victim@example.com\r\n");
}

TEST(FormatStructured, overlong_token_is_broken_at_998) {
  std::string field = format_structured("X-Long", std::string(2000, 'z'));
  size_t first_end = field.find("\r\n");
  EXPECT_EQ(first_end, 998u);
  for (size_t start = 0; start < field.size();) {
    size_t end = field.find("\r\n", start);
    EXPECT_LE(end - start, 998u);
    start = end + 2;
  }
}

TEST(EncodeWords, PlainAsciiUnchanged) {
  EXPECT_EQ(encode_words("plain ascii string"), "plain ascii string");
  EXPECT_EQ(encode_words("Tere \xc3\xb5hin"), "Tere =?UTF-8?B?w7VoaW4=?=");
  EXPECT_EQ(encode_words("a\r\nb"), "a b");
}

TEST(DecodeWords, RulesOfRfc2047) {
  EXPECT_EQ(decode_words("=?UTF-8?Q?a?= =?UTF-8?Q?b?="), "ab");      // space between dropped
  EXPECT_EQ(decode_words("=?UTF-8?Q?a?=\r\n =?UTF-8?Q?b?="), "ab");  // and a fold too
  EXPECT_EQ(decode_words("x =?UTF-8?Q?a?= y"), "x a y");             // kept next to text
  EXPECT_EQ(decode_words("line one\r\n\tcontinued"), "line one\tcontinued");
  EXPECT_EQ(decode_words("=?ISO-8859-1?Q?J=F8rn?="), "J\xc3\xb8rn");
  EXPECT_EQ(decode_words("=?x-unknown?Q?abc?="), "=?x-unknown?Q?abc?=");
  EXPECT_EQ(decode_words("=?UTF-8?X?abc?="), "=?UTF-8?X?abc?=");
  // A character split across two B words of one charset is joined before conversion.
  EXPECT_EQ(decode_words("=?UTF-8?B?ww==?= =?UTF-8?B?tQ==?="), "\xc3\xb5");
  EXPECT_EQ(decode_words("=?UTF-8?B?ww==?= =?ISO-8859-1?B?tQ==?="), "\xef\xbf\xbd\xc2\xb5");
}

// --- Corpus: corpora/mime-headers (see its SOURCES.md) ----------------------------------------

nlohmann::json load_json(const std::filesystem::path& p) {
  return nlohmann::json::parse(magnetic::testing::read_file(p));
}

// A field value as a header reader cuts it from mail-parser's vectors: up to the first line
// break not followed by whitespace, leading and trailing whitespace removed.
std::string field_value(std::string_view raw) {
  size_t end = raw.size();
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\n' && (i + 1 >= raw.size() || (raw[i + 1] != ' ' && raw[i + 1] != '\t'))) {
      end = (i > 0 && raw[i - 1] == '\r') ? i - 1 : i;
      break;
    }
  }
  std::string_view v = raw.substr(0, end);
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!v.empty() && ws(v.front())) v.remove_prefix(1);
  while (!v.empty() && ws(v.back())) v.remove_suffix(1);
  return std::string(v);
}

struct Tally {
  size_t agree = 0;
  size_t total = 0;
  std::vector<std::string> misses;
  void add(bool ok, const std::string& id) {
    ++total;
    if (ok) {
      ++agree;
    } else {
      misses.push_back(id);
    }
  }
};

// libmime: decodeWords (19) and decodeWord (5) cases, scored against decode_words. Level
// reached: all 24. (The encoder cases are libmime's own choices of split and encoding, so they
// are checked by round trip below, not byte for byte; see SOURCES.md.)
constexpr size_t kLibmimeDecodeAgree = 24;

TEST(DecodeWords, LibmimeVectors) {
  MAGNETIC_REQUIRE_CORPORA(corpora);
  auto cases = load_json(corpora / "mime-headers" / "libmime" / "libmime-5.4.0-cases.json");
  Tally tally;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    std::string fn = c["fn"];
    std::string input;
    if (fn == "decodeWords") {
      input = c["args"][0].get<std::string>();
    } else if (fn == "decodeWord") {
      input = "=?" + c["args"][0].get<std::string>() + "?" + c["args"][1].get<std::string>() + "?" +
              c["args"][2].get<std::string>() + "?=";
    } else {
      continue;
    }
    std::string got = decode_words(input);
    bool ok = got == c["expected"].get<std::string>();
    tally.add(ok, "#" + std::to_string(i) + " " + c["test"].get<std::string>());
    if (!ok) std::cout << "  libmime #" << i << " got " << nlohmann::json(got).dump() << "\n";
  }
  std::cout << "libmime decode: " << tally.agree << "/" << tally.total << " agree\n";
  EXPECT_EQ(tally.total, 24u);
  EXPECT_GE(tally.agree, kLibmimeDecodeAgree);
}

// mail-parser unstructured.json (30), scored against decode_words of the field value. Level
// reached: 22. Known disagreements, by index, all mail-parser's lenient choices that RFC 2047
// and RFC 5322 do not make:
//   2, 3, 4, 19: mail-parser turns a fold and the whitespace around it into one space; RFC 5322
//       2.2.3 unfolding removes only the CRLF, so "Fwd: \n\tSaying" keeps "Fwd: \tSaying".
//   21, 27, 28: "[SUSPECTED SPAM]=?utf-8?B?...?=" gets a space inserted before the word; we
//       insert nothing (and 28's twin, index 27, decodes the same way).
//   22: "Some text =?utf-8?Q??=here" gets a space added after the empty word.
const std::set<size_t> kUnstructuredDisagreements = {2, 3, 4, 19, 21, 22, 27, 28};
constexpr size_t kUnstructuredAgree = 22;

TEST(DecodeWords, MailParserUnstructuredVectors) {
  MAGNETIC_REQUIRE_CORPORA(corpora);
  auto cases = load_json(corpora / "mime-headers" / "mail-parser" / "unstructured.json");
  ASSERT_EQ(cases.size(), 30u);
  Tally tally;
  for (size_t i = 0; i < cases.size(); ++i) {
    std::string got = decode_words(field_value(cases[i]["header"].get<std::string>()));
    bool ok = got == cases[i]["expected"].get<std::string>();
    tally.add(ok, std::to_string(i));
    if (!ok) {
      std::cout << "  unstructured #" << i << " got " << nlohmann::json(got).dump() << " want "
                << cases[i]["expected"].dump() << "\n";
      EXPECT_TRUE(kUnstructuredDisagreements.count(i)) << "new disagreement #" << i;
    }
  }
  std::cout << "mail-parser unstructured: " << tally.agree << "/" << tally.total << " agree\n";
  EXPECT_GE(tally.agree, kUnstructuredAgree);
}

void collect_strings(const nlohmann::json& j, std::vector<std::string>& out) {
  if (j.is_string()) {
    out.push_back(j.get<std::string>());
  } else if (j.is_array() || j.is_object()) {
    for (const auto& v : j) collect_strings(v, out);
  }
}

// Every string in both corpora (inputs and expected outputs alike) goes through encode_words
// and through a folded Subject, and must decode back to itself (controls made spaces).
TEST(EncodeWords, CorpusStringsRoundTrip) {
  MAGNETIC_REQUIRE_CORPORA(corpora);
  std::vector<std::string> strings;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(corpora / "mime-headers")) {
    if (entry.path().extension() == ".json") collect_strings(load_json(entry.path()), strings);
  }
  size_t agree = 0;
  for (const auto& s : strings) {
    std::string want = controls_to_space(s);
    std::string field = format_unstructured("Subject", s);
    bool ok = decode_words(encode_words(s)) == want && read_back(field) == want;
    expect_well_formed(field);
    if (ok) {
      ++agree;
    } else {
      ADD_FAILURE() << "no round trip for " << nlohmann::json(s).dump();
    }
  }
  std::cout << "round trip: " << agree << "/" << strings.size() << " strings\n";
  EXPECT_GT(strings.size(), 1000u);
  EXPECT_EQ(agree, strings.size());
}

}  // namespace
}  // namespace magnetic::mail
