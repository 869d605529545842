// RFC 8463 appendix A: the example message signed with the RFC's Ed25519 and RSA keys must give
// the published bh= and b= byte for byte (both schemes are deterministic). The two
// simple/simple entries (dkimpy's signed copy) check the signature primitive and the simple
// body hash on the given header hash input, since the signer itself writes relaxed only.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "dkim/signer.h"
#include "test_support.h"

namespace magnetic::dkim {
namespace {

using ::magnetic::testing::base64_decode;

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

Result<DkimKey> load_vector_key(const std::filesystem::path& dir, const std::string& file) {
  if (file.ends_with(".b64")) {
    return DkimKey::from_ed25519_seed(base64_decode(trim(testing::read_file(dir / file))));
  }
  return DkimKey::load_pem_file((dir / file).string());
}

// The value of tag `name` in a DKIM-Signature field, with folding whitespace removed.
std::string tag_value(std::string_view field, std::string_view name) {
  std::string unfolded;
  for (char c : field) {
    if (c != '\r' && c != '\n' && c != ' ' && c != '\t') unfolded.push_back(c);
  }
  std::string key = ";" + std::string(name) + "=";
  size_t colon = unfolded.find(':');
  std::string tags = ";" + unfolded.substr(colon + 1);
  size_t at = tags.find(key);
  if (at == std::string::npos) return "<missing>";
  size_t start = at + key.size();
  size_t end = tags.find(';', start);
  return tags.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

SignerOptions rfc_options(const nlohmann::json& v) {
  SignerOptions options;
  options.domain = v["d"];
  options.selector = v["s"];
  options.timestamp = v["t"].get<long>();
  options.identity = "@football.example.com";
  options.add_query_method = true;
  options.header_separator = " : ";
  options.sign_absent_headers = true;  // the RFC over-signs from, subject and date
  options.headers.clear();
  std::string h = v["h"];
  for (size_t pos = 0; pos <= h.size();) {
    size_t colon = h.find(':', pos);
    if (colon == std::string::npos) colon = h.size();
    options.headers.push_back(h.substr(pos, colon - pos));
    pos = colon + 1;
  }
  return options;
}

TEST(Rfc8463, ReproducesPublishedSignatures) {
  MAGNETIC_REQUIRE_CORPORA(corpora);
  const auto dir = corpora / "dkim" / "rfc8463";
  auto vectors = nlohmann::json::parse(testing::read_file(dir / "vectors.json"));
  ASSERT_EQ(vectors.size(), 4u);
  const std::string message = testing::read_file(dir / "unsigned-message.eml");
  auto parts = split_message(message);
  ASSERT_TRUE(parts.is_ok());

  int exact = 0;
  for (const auto& v : vectors) {
    SCOPED_TRACE(std::string(v["source"]) + " " + std::string(v["a"]));
    auto key = load_vector_key(dir, v["private_key_file"]);
    ASSERT_TRUE(key.is_ok()) << key.status().message();
    const bool relaxed = v["c"] == "relaxed/relaxed";
    bool ok = true;

    // The primitive on the published header hash input.
    auto b = sign_header_hash_input(*key, std::string(v["header_hash_input"]));
    ASSERT_TRUE(b.is_ok()) << b.status().message();
    ok &= *b == std::string(v["expected_b"]);
    EXPECT_EQ(*b, std::string(v["expected_b"]));

    // Canonical body and bh=.
    std::string body =
        relaxed ? canonicalize_body_relaxed(parts->body) : canonicalize_body_simple(parts->body);
    ok &= body == std::string(v["canonical_body"]);
    EXPECT_EQ(body, std::string(v["canonical_body"]));
    auto bh =
        body_hash(parts->body, relaxed ? Canonicalization::kRelaxed : Canonicalization::kSimple);
    ok &= bh == std::string(v["expected_bh"]);
    EXPECT_EQ(bh, std::string(v["expected_bh"]));

    // The whole signer, for the relaxed (RFC 8463) entries.
    if (relaxed) {
      auto signer = DkimSigner::create(rfc_options(v), *key);
      ASSERT_TRUE(signer.is_ok()) << signer.status().message();
      auto field = signer->sign(message);
      ASSERT_TRUE(field.is_ok()) << field.status().message();
      ok &= tag_value(*field, "bh") == std::string(v["expected_bh"]);
      ok &= tag_value(*field, "b") == std::string(v["expected_b"]);
      EXPECT_EQ(tag_value(*field, "bh"), std::string(v["expected_bh"]));
      EXPECT_EQ(tag_value(*field, "b"), std::string(v["expected_b"])) << *field;
      EXPECT_EQ(tag_value(*field, "h"), "from:to:subject:date:message-id:from:subject:date");
    }
    exact += ok;
  }
  std::printf("rfc8463 vectors reproduced exactly: %d/4\n", exact);
  EXPECT_EQ(exact, 4);
}

TEST(Rfc8463, PublishedEd25519PublicKeyMatchesSeed) {
  MAGNETIC_REQUIRE_CORPORA(corpora);
  const auto dir = corpora / "dkim" / "rfc8463";
  auto key = load_vector_key(dir, "ed25519-private-seed.b64");
  ASSERT_TRUE(key.is_ok());
  EXPECT_EQ(key->dns_txt_value(),
            "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
  auto rsa = load_vector_key(dir, "rsa-private.pem");
  ASSERT_TRUE(rsa.is_ok());
  EXPECT_EQ(rsa->bits(), 1024);
  // The zone file carries the same value as our TXT for both keys.
  std::string zone = testing::read_file(dir / "dns-txt-records.txt");
  EXPECT_NE(zone.find(dns_record_text("football.example.com", "brisbane", *key)),
            std::string::npos);
  EXPECT_NE(zone.find(dns_record_text("football.example.com", "test", *rsa)), std::string::npos);
}

}  // namespace
}  // namespace magnetic::dkim
