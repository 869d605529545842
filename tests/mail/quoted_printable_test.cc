#include "mail/quoted_printable.h"

#include <gtest/gtest.h>

#include "test_support.h"

#include <random>

namespace magnetic::mail {
namespace {

using ::magnetic::testing::crlf_lines;

std::string encode(std::string_view text) {
  std::string out;
  qp_encode(text, out);
  return out;
}

// The decoded form of what qp_encode was given: every line break is CRLF.

void expect_lines_within_76(const std::string& encoded) {
  size_t start = 0;
  while (start < encoded.size()) {
    size_t end = encoded.find("\r\n", start);
    if (end == std::string::npos) end = encoded.size();
    std::string line = encoded.substr(start, end - start);
    EXPECT_LE(line.size(), 76u) << line;
    EXPECT_EQ(line.find('\r'), std::string::npos);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    EXPECT_NE(line.empty() ? ' ' : line[0], '.') << "a line starts with a dot";
    if (!line.empty()) {
      EXPECT_NE(line.back(), ' ');
      EXPECT_NE(line.back(), '\t');
    }
    // Every '=' starts an escape or a soft break: never an escape cut by a break.
    for (size_t k = 0; k < line.size(); ++k) {
      if (line[k] != '=') continue;
      if (k + 1 == line.size()) break;  // soft break
      ASSERT_LT(k + 2, line.size()) << line;
      EXPECT_TRUE(isxdigit(static_cast<unsigned char>(line[k + 1])) &&
                  isxdigit(static_cast<unsigned char>(line[k + 2])))
          << line;
      k += 2;
    }
    start = end + 2;
  }
}

TEST(QuotedPrintable, ExactBytes) {
  EXPECT_EQ(encode("Hello"), "Hello");
  EXPECT_EQ(encode("Hello\n"), "Hello\r\n");
  EXPECT_EQ(encode("a\r\nb\nc"), "a\r\nb\r\nc");
  EXPECT_EQ(encode("1+1=2"), "1+1=3D2");
  EXPECT_EQ(encode("Gr\xc3\xbc\xc3\x9f"
                   "e"),
            "Gr=C3=BC=C3=9Fe");
  EXPECT_EQ(encode("\xe2\x82\xac 5"), "=E2=82=AC 5");
  EXPECT_EQ(encode("tab\there"), "tab\there");
  EXPECT_EQ(encode("bare\rcr"), "bare=0Dcr");
  EXPECT_EQ(encode(std::string("nul\0", 4)), "nul=00");
}

TEST(QuotedPrintable, TrailingWhitespaceIsEncoded) {
  EXPECT_EQ(encode("end \nnext\t\nlast  "), "end=20\r\nnext=09\r\nlast =20");
}

TEST(QuotedPrintable, LeadingDotIsEncoded) {
  // A line that starts with '.' is written "=2E...", so SMTP never has to dot-stuff it.
  EXPECT_EQ(encode(".\n..\n...\nx.\n"), "=2E\r\n=2E.\r\n=2E..\r\nx.\r\n");
  // Also at the start of a line made by a soft break.
  EXPECT_EQ(encode(std::string(75, 'a') + "." + "b"), std::string(75, 'a') + "=\r\n=2Eb");
}

TEST(QuotedPrintable, LongLinesGetSoftBreaks) {
  EXPECT_EQ(encode(std::string(76, 'x')), std::string(76, 'x'));  // exactly fits
  EXPECT_EQ(encode(std::string(77, 'x')), std::string(75, 'x') + "=\r\nxx");
  EXPECT_EQ(encode(std::string(160, 'y') + "\n"), std::string(75, 'y') + "=\r\n" +
                                                      std::string(75, 'y') + "=\r\n" +
                                                      std::string(10, 'y') + "\r\n");
  // An escape is never split: 74 letters then "é" (=C3=A9) move the whole escape over.
  EXPECT_EQ(encode(std::string(74, 'z') + "\xc3\xa9"), std::string(74, 'z') + "=\r\n=C3=A9");
  EXPECT_EQ(encode(std::string(72, 'z') + "\xc3\xa9"), std::string(72, 'z') + "=C3=\r\n=A9");
  // A trailing space that reaches column 76 encoded still fits the last line.
  EXPECT_EQ(encode(std::string(73, 'w') + " "), std::string(73, 'w') + "=20");
  EXPECT_EQ(encode(std::string(74, 'w') + " "), std::string(74, 'w') + "=\r\n=20");
}

TEST(QuotedPrintable, Utf8TextRoundTrips) {
  std::string text =
      "Tere! \xc3\x95nnitleme, te v\xc3\xb5itsite. \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x8a\n"
      "Zweite Zeile mit Umlauten: \xc3\xa4\xc3\xb6\xc3\xbc\xc3\x84\xc3\x96\xc3\x9c\xc3\x9f und "
      "noch mehr Text, damit die Zeile lang genug wird, um weich umbrochen zu werden.\n";
  std::string encoded = encode(text);
  expect_lines_within_76(encoded);
  EXPECT_EQ(qp_decode(encoded), crlf_lines(text));
}

TEST(QuotedPrintable, DecodeIsLenient) {
  EXPECT_EQ(qp_decode("a=3Db"), "a=b");
  EXPECT_EQ(qp_decode("soft=\r\nbreak"), "softbreak");
  EXPECT_EQ(qp_decode("soft=\nbreak"), "softbreak");
  EXPECT_EQ(qp_decode("trailing   \r\nspace"), "trailing\r\nspace");  // added by a transport
  EXPECT_EQ(qp_decode("bad=ZZescape"), "bad=ZZescape");
  EXPECT_EQ(qp_decode("lower=c3=a9"), "lower\xc3\xa9");
  EXPECT_EQ(qp_decode("end="), "end");
}

TEST(QuotedPrintable, RandomDataRoundTrips) {
  std::mt19937 rng(12345);
  const std::string specials = " \t.=\r\n\n";
  for (int round = 0; round < 500; ++round) {
    std::string text;
    size_t n = rng() % 400;
    for (size_t i = 0; i < n; ++i) {
      unsigned r = rng() % 10;
      if (r < 4) {
        text.push_back(static_cast<char>('a' + rng() % 26));
      } else if (r < 7) {
        text.push_back(specials[rng() % specials.size()]);
      } else {
        text.push_back(static_cast<char>(rng() % 256));
      }
    }
    std::string encoded = encode(text);
    expect_lines_within_76(encoded);
    // A CR that does not start a CRLF is data (=0D); every LF is a line break.
    EXPECT_EQ(qp_decode(encoded), crlf_lines(text));
    if (HasFailure()) break;
  }
}

TEST(QuotedPrintable, LinesOfOnlyDots) {
  std::string text;
  for (int i = 1; i <= 80; ++i) text += std::string(i, '.') + "\n";
  std::string encoded = encode(text);
  expect_lines_within_76(encoded);
  EXPECT_EQ(qp_decode(encoded), crlf_lines(text));
  EXPECT_EQ(encoded.substr(0, 11), "=2E\r\n=2E.\r\n");
  // The 80-dot line: a soft break after column 75 starts a line with a dot again.
  EXPECT_EQ(encode(std::string(80, '.')),
            "=2E" + std::string(72, '.') + "=\r\n=2E" + std::string(6, '.'));
}

}  // namespace
}  // namespace magnetic::mail
