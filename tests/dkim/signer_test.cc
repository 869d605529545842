// The signer's own rules: tag order and values, folding, which fields h= lists and which
// instance is signed, refusals, and thread safety. Whether verifiers accept the result is
// dkimpy_verify_test.cc's job.
#include "dkim/signer.h"

#include <gtest/gtest.h>

#include <thread>

#include "test_support.h"

namespace magnetic::dkim {
namespace {

// A fixed Ed25519 key (RFC 8032 7.1 test 1 seed) so signatures are reproducible.
DkimKey fixed_ed25519() {
  const unsigned char seed[32] = {0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a,
                                  0xf4, 0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32,
                                  0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
  return *DkimKey::from_ed25519_seed(std::string_view(reinterpret_cast<const char*>(seed), 32));
}

SignerOptions options_at(long t) {
  SignerOptions o;
  o.domain = "example.com";
  o.selector = "s2026";
  o.timestamp = t;
  return o;
}

const char kMessage[] =
    "From: Sender <sender@example.com>\r\n"
    "To: rcpt@example.net\r\n"
    "Subject: Hello\r\n"
    "Date: Thu, 03 Dec 2026 10:00:00 +0000\r\n"
    "Message-ID: <1@example.com>\r\n"
    "\r\n"
    "Hi there.\r\n";

std::string unfold(std::string_view field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field.substr(i, 3) == "\r\n ") {
      out.push_back(' ');
      i += 2;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

// The tags as written, "name=value" each, FWS removed.
std::vector<std::string> tags_of(std::string_view field) {
  std::string flat;
  for (char c : unfold(field)) {
    if (c != ' ' && c != '\r' && c != '\n') flat.push_back(c);
  }
  flat = flat.substr(flat.find(':') + 1);
  std::vector<std::string> tags;
  for (size_t pos = 0; pos < flat.size();) {
    size_t semi = flat.find(';', pos);
    if (semi == std::string::npos) semi = flat.size();
    tags.push_back(flat.substr(pos, semi - pos));
    pos = semi + 1;
  }
  return tags;
}

std::string tag(std::string_view field, std::string_view name) {
  for (const std::string& t : tags_of(field)) {
    if (t.substr(0, t.find('=')) == name) return t.substr(t.find('=') + 1);
  }
  return "<missing>";
}

TEST(DkimSigner, TagsInOrderWithExactValues) {
  auto signer = DkimSigner::create(options_at(1796300000), fixed_ed25519());
  ASSERT_TRUE(signer.is_ok());
  auto field = signer->sign(kMessage);
  ASSERT_TRUE(field.is_ok()) << field.status().message();

  auto tags = tags_of(*field);
  ASSERT_EQ(tags.size(), 9u);
  EXPECT_EQ(tags[0], "v=1");
  EXPECT_EQ(tags[1], "a=ed25519-sha256");
  EXPECT_EQ(tags[2], "c=relaxed/relaxed");
  EXPECT_EQ(tags[3], "d=example.com");
  EXPECT_EQ(tags[4], "s=s2026");
  EXPECT_EQ(tags[5], "t=1796300000");
  EXPECT_EQ(tags[6], "h=from:to:subject:date:message-id");  // only the present ones
  EXPECT_EQ(tags[7], "bh=" + body_hash("Hi there.\r\n", Canonicalization::kRelaxed));
  EXPECT_EQ(tags[8].substr(0, 2), "b=");
  EXPECT_EQ(tags[8].size(), 2u + 88u);  // 64-byte Ed25519 signature in base64

  EXPECT_EQ(field->rfind("DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;", 0), 0u);
  EXPECT_TRUE(field->ends_with("\r\n"));
}

TEST(DkimSigner, FoldsWithinSeventyEightColumns) {
  SignerOptions o = options_at(1796300000);
  o.headers.push_back("X-A-Rather-Long-Header-Name-For-Folding");
  std::string message = std::string("X-A-Rather-Long-Header-Name-For-Folding: 1\r\n") + kMessage;
  // The default set plus one more, all present, makes h= longer than a line.
  message =
      "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
      "List-Unsubscribe: <mailto:u@example.com>\r\n"
      "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" +
      message;
  for (int bits : {0, 2048}) {
    auto key = bits ? *DkimKey::generate(Algorithm::kRsaSha256, bits) : fixed_ed25519();
    auto signer = DkimSigner::create(o, key);
    ASSERT_TRUE(signer.is_ok());
    auto field = signer->sign(message);
    ASSERT_TRUE(field.is_ok());

    size_t lines = 0;
    for (size_t pos = 0; pos < field->size();) {
      size_t eol = field->find("\r\n", pos);
      ASSERT_NE(eol, std::string::npos);
      EXPECT_LE(eol - pos, 78u) << field->substr(pos, eol - pos);
      if (pos > 0) {
        EXPECT_EQ((*field)[pos], ' ');
      }
      ++lines;
      pos = eol + 2;
    }
    EXPECT_GE(lines, bits ? 7u : 4u);
    EXPECT_EQ(tag(*field, "h"),
              "from:to:subject:date:message-id:mime-version:content-type:list-unsubscribe:"
              "list-unsubscribe-post:x-a-rather-long-header-name-for-folding");
  }
}

TEST(DkimSigner, SignsTheBottomInstanceOfARepeatedField) {
  SignerOptions o = options_at(1796300000);
  o.headers = {"From", "Comments"};
  auto signer = DkimSigner::create(o, fixed_ed25519());
  ASSERT_TRUE(signer.is_ok());
  auto with = [&](const char* top, const char* bottom) {
    return *signer->sign(std::string("Comments: ") + top +
                         "\r\nFrom: a@example.com\r\nComments: " + bottom + "\r\n\r\nx\r\n");
  };
  std::string base = with("one", "two");
  EXPECT_EQ(tag(base, "h"), "from:comments");
  EXPECT_EQ(with("changed", "two"), base);  // the top one is not signed
  EXPECT_NE(with("one", "changed"), base);  // the bottom one is

  // Naming it twice signs both, bottom first.
  o.headers = {"From", "Comments", "Comments"};
  auto both = DkimSigner::create(o, fixed_ed25519());
  auto twice = [&](const char* top) {
    return *both->sign(std::string("Comments: ") + top +
                       "\r\nFrom: a@example.com\r\nComments: two\r\n\r\nx\r\n");
  };
  EXPECT_EQ(tag(twice("one"), "h"), "from:comments:comments");
  EXPECT_NE(twice("changed"), twice("one"));
}

TEST(DkimSigner, FieldNamesMatchWhateverTheirCase) {
  auto signer = DkimSigner::create(options_at(1), fixed_ed25519());
  auto field = signer->sign("FROM: a@example.com\r\nsubject: s\r\n\r\n");
  ASSERT_TRUE(field.is_ok());
  EXPECT_EQ(tag(*field, "h"), "from:subject");
}

TEST(DkimSigner, OverSigningListsAbsentNames) {
  SignerOptions o = options_at(1);
  o.headers = {"From", "Subject", "From", "Reply-To"};
  o.sign_absent_headers = true;
  auto signer = DkimSigner::create(o, fixed_ed25519());
  auto field = signer->sign(kMessage);
  ASSERT_TRUE(field.is_ok());
  EXPECT_EQ(tag(*field, "h"), "from:subject:from:reply-to");

  o.sign_absent_headers = false;
  auto plain = DkimSigner::create(o, fixed_ed25519());
  EXPECT_EQ(tag(*plain->sign(kMessage), "h"), "from:subject");
}

TEST(DkimSigner, EmptyBodyHashesToTheEmptyString) {
  auto signer = DkimSigner::create(options_at(1), fixed_ed25519());
  const std::string empty = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
  EXPECT_EQ(tag(*signer->sign("From: a@example.com\r\n\r\n"), "bh"), empty);
  EXPECT_EQ(tag(*signer->sign("From: a@example.com\r\n"), "bh"), empty);
  EXPECT_EQ(tag(*signer->sign("From: a@example.com\r\n\r\n\r\n \r\n"), "bh"), empty);
}

TEST(DkimSigner, TimestampFromClockOrLeftOut) {
  SignerOptions o = options_at(0);
  o.timestamp.reset();
  auto clock = DkimSigner::create(o, fixed_ed25519());
  long before = static_cast<long>(std::time(nullptr));
  long t = std::stol(tag(*clock->sign(kMessage), "t"));
  EXPECT_GE(t, before);
  EXPECT_LE(t, before + 5);

  o.add_timestamp = false;
  auto none = DkimSigner::create(o, fixed_ed25519());
  EXPECT_EQ(tag(*none->sign(kMessage), "t"), "<missing>");
  EXPECT_EQ(tags_of(*none->sign(kMessage)).size(), 8u);
}

TEST(DkimSigner, RefusesMessagesAndOptionsItCannotSign) {
  auto signer = DkimSigner::create(options_at(1), fixed_ed25519());
  auto no_from = signer->sign("To: a@example.com\r\nSubject: x\r\n\r\nbody\r\n");
  ASSERT_FALSE(no_from.is_ok());
  EXPECT_EQ(no_from.status().message(), "message has no From field to sign");
  auto bad_line = signer->sign("From: a@example.com\r\nbroken\r\n\r\n");
  ASSERT_FALSE(bad_line.is_ok());
  EXPECT_EQ(bad_line.status().message(), "header line 2 has no colon");

  auto with = [](auto change) {
    SignerOptions o = options_at(1);
    change(o);
    return DkimSigner::create(o, fixed_ed25519()).status();
  };
  EXPECT_EQ(with([](SignerOptions& o) {
              o.headers = {"To", "Subject"};
            }).message(),
            "h= must include From (RFC 6376 5.4)");
  EXPECT_EQ(with([](SignerOptions& o) { o.domain = ""; }).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](SignerOptions& o) {
              o.domain =
                  "b\xc3\xbc"
                  "cher.example";
            }).message(),
            "DKIM domain 'b\xc3\xbc"
            "cher.example' must be a non-empty ASCII name (use the A-label "
            "of an IDN)");
  EXPECT_EQ(with([](SignerOptions& o) { o.selector = "a;b"; }).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](SignerOptions& o) { o.headers.push_back("Bad Name"); }).message(),
            "bad header name 'Bad Name' for h=");
  EXPECT_EQ(with([](SignerOptions& o) { o.header_separator = ";"; }).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](SignerOptions& o) { o.identity = "@example.org"; }).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(with([](SignerOptions& o) { o.identity = "news@mail.example.com"; }).is_ok());
  EXPECT_FALSE(with([](SignerOptions& o) { o.identity = "@badexample.com"; }).is_ok());
  EXPECT_TRUE(with([](SignerOptions&) {}).is_ok());
  EXPECT_FALSE(DkimSigner::create(options_at(1), DkimKey()).is_ok());
}

TEST(DkimSigner, AlgorithmNames) {
  EXPECT_EQ(*parse_algorithm("rsa"), Algorithm::kRsaSha256);
  EXPECT_EQ(*parse_algorithm("rsa-sha256"), Algorithm::kRsaSha256);
  EXPECT_EQ(*parse_algorithm("ed25519"), Algorithm::kEd25519Sha256);
  EXPECT_EQ(*parse_algorithm("ed25519-sha256"), Algorithm::kEd25519Sha256);
  EXPECT_EQ(parse_algorithm("dsa").status().message(),
            "unknown DKIM algorithm 'dsa' (rsa or ed25519)");
}

TEST(DkimSigner, ManyThreadsOneSignerSameResults) {
  auto signer = DkimSigner::create(options_at(1796300000), fixed_ed25519());
  ASSERT_TRUE(signer.is_ok());
  std::vector<std::string> messages, expected;
  for (int i = 0; i < 8; ++i) {
    messages.push_back(std::string("From: a@example.com\r\nSubject: n") + std::to_string(i) +
                       "\r\n\r\nbody " + std::string(static_cast<size_t>(i * 100), 'x') + "\r\n");
    expected.push_back(*signer->sign(messages.back()));
  }
  std::atomic<int> mismatches{0}, done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 200; ++round) {
        size_t i = static_cast<size_t>((round + t) % 8);
        auto got = signer->sign(messages[i]);
        if (!got.is_ok() || *got != expected[i]) ++mismatches;
        ++done;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(done.load(), 800);
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace magnetic::dkim
