// Keys: generation, PEM round trips, what is refused, TXT record text, key files.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include "dkim/signer.h"
#include "test_support.h"

namespace magnetic::dkim {
namespace {

using ::magnetic::testing::base64_decode;

// A PEM written by OpenSSL directly, for keys our API will not make.
std::string openssl_pem(EVP_PKEY* pkey, bool traditional_rsa) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (traditional_rsa) {
    PEM_write_bio_PrivateKey_traditional(bio, pkey, nullptr, nullptr, 0, nullptr, nullptr);
  } else {
    PEM_write_bio_PrivateKey(bio, pkey, nullptr, nullptr, 0, nullptr, nullptr);
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  return pem;
}

TEST(DkimKey, Ed25519TxtIsRawPublicKey) {
  auto key = DkimKey::generate(Algorithm::kEd25519Sha256);
  ASSERT_TRUE(key.is_ok());
  EXPECT_EQ(key->algorithm(), Algorithm::kEd25519Sha256);

  unsigned char raw[32];
  size_t len = sizeof raw;
  ASSERT_EQ(EVP_PKEY_get_raw_public_key(key->pkey(), raw, &len), 1);
  ASSERT_EQ(len, 32u);
  std::string txt = key->dns_txt_value();
  const std::string prefix = "v=DKIM1; k=ed25519; p=";
  ASSERT_EQ(txt.substr(0, prefix.size()), prefix);
  EXPECT_EQ(txt.size(), prefix.size() + 44);  // 32 bytes in base64
  EXPECT_EQ(base64_decode(txt.substr(prefix.size())),
            std::string(reinterpret_cast<char*>(raw), 32));
}

TEST(DkimKey, RsaTxtIsSubjectPublicKeyInfo) {
  auto key = DkimKey::generate(Algorithm::kRsaSha256, 2048);
  ASSERT_TRUE(key.is_ok());
  EXPECT_EQ(key->algorithm(), Algorithm::kRsaSha256);
  EXPECT_EQ(key->bits(), 2048);

  std::string txt = key->dns_txt_value();
  const std::string prefix = "v=DKIM1; k=rsa; p=";
  ASSERT_EQ(txt.substr(0, prefix.size()), prefix);
  std::string der = base64_decode(txt.substr(prefix.size()));
  EXPECT_EQ(der.size(), 294u);  // SubjectPublicKeyInfo of a 2048-bit key with e=65537
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  EVP_PKEY* pub = d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()));
  ASSERT_NE(pub, nullptr);
  EXPECT_EQ(EVP_PKEY_eq(pub, key->pkey()), 1);
  EVP_PKEY_free(pub);
}

TEST(DkimKey, PemRoundTripKeepsTheKey) {
  for (Algorithm a : {Algorithm::kRsaSha256, Algorithm::kEd25519Sha256}) {
    auto key = DkimKey::generate(a);
    ASSERT_TRUE(key.is_ok());
    std::string pem = key->private_pem();
    EXPECT_EQ(pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);  // PKCS#8
    auto again = DkimKey::from_pem(pem);
    ASSERT_TRUE(again.is_ok()) << again.status().message();
    EXPECT_EQ(again->algorithm(), a);
    EXPECT_EQ(again->dns_txt_value(), key->dns_txt_value());
  }
}

TEST(DkimKey, TraditionalRsaPemLoads) {
  auto key = DkimKey::generate(Algorithm::kRsaSha256, 1024);
  ASSERT_TRUE(key.is_ok());
  std::string pem = openssl_pem(key->pkey(), true);
  ASSERT_EQ(pem.rfind("-----BEGIN RSA PRIVATE KEY-----\n", 0), 0u);
  auto again = DkimKey::from_pem(pem);
  ASSERT_TRUE(again.is_ok()) << again.status().message();
  EXPECT_EQ(again->dns_txt_value(), key->dns_txt_value());
}

TEST(DkimKey, RefusesShortRsaOtherTypesAndJunk) {
  EVP_PKEY* small = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{768});
  ASSERT_NE(small, nullptr);
  auto refused = DkimKey::from_pem(openssl_pem(small, false));
  EVP_PKEY_free(small);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().message(),
            "RSA key of 768 bits refused: DKIM needs at least 1024 (RFC 8301)");

  EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  ASSERT_NE(ec, nullptr);
  auto ec_key = DkimKey::from_pem(openssl_pem(ec, false));
  EVP_PKEY_free(ec);
  ASSERT_FALSE(ec_key.is_ok());
  EXPECT_EQ(ec_key.status().message(), "key type EC is not usable for DKIM (RSA or Ed25519 only)");

  EXPECT_FALSE(DkimKey::from_pem("not a key").is_ok());
  EXPECT_FALSE(DkimKey::generate(Algorithm::kRsaSha256, 512).is_ok());
  EXPECT_FALSE(DkimKey::from_ed25519_seed("short").is_ok());
  auto missing = DkimKey::load_pem_file("/nonexistent/dkim.pem");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kIoError);
}

TEST(DkimKey, EncryptedPemIsRefusedWithoutPrompting) {
  auto key = DkimKey::generate(Algorithm::kEd25519Sha256);
  ASSERT_TRUE(key.is_ok());
  BIO* bio = BIO_new(BIO_s_mem());
  char pass[] = "secret";
  ASSERT_EQ(
      PEM_write_bio_PKCS8PrivateKey(bio, key->pkey(), EVP_aes_256_cbc(), pass, 6, nullptr, nullptr),
      1);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  EXPECT_FALSE(DkimKey::from_pem(pem).is_ok());
}

TEST(KeyFile, WritesOwnerOnlyAndReloads) {
  testing::TempDir dir;
  auto key = DkimKey::generate(Algorithm::kEd25519Sha256);
  ASSERT_TRUE(key.is_ok());
  const std::string path = (dir.path() / "dkim.pem").string();
  ASSERT_TRUE(write_key_file(*key, path).is_ok());

  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(testing::read_file(path), key->private_pem());
  auto loaded = DkimKey::load_pem_file(path);
  ASSERT_TRUE(loaded.is_ok());
  EXPECT_EQ(loaded->dns_txt_value(), key->dns_txt_value());

  // An existing key is kept unless overwrite is asked for.
  auto other = DkimKey::generate(Algorithm::kEd25519Sha256);
  Status again = write_key_file(*other, path);
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(testing::read_file(path), key->private_pem());
  ASSERT_TRUE(write_key_file(*other, path, true).is_ok());
  EXPECT_EQ(testing::read_file(path), other->private_pem());
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // No temporary files are left behind.
  auto entries = std::distance(std::filesystem::directory_iterator(dir.path()),
                               std::filesystem::directory_iterator());
  EXPECT_EQ(entries, 1);

  EXPECT_EQ(write_key_file(*key, (dir.path() / "no" / "such" / "dir.pem").string()).code(),
            StatusCode::kIoError);
}

TEST(DnsRecord, Ed25519FitsOneString) {
  auto key = DkimKey::generate(Algorithm::kEd25519Sha256);
  ASSERT_TRUE(key.is_ok());
  EXPECT_EQ(dns_record_text("example.com", "s1", *key),
            "s1._domainkey.example.com. IN TXT \"" + key->dns_txt_value() + "\"");
  EXPECT_EQ(dns_record_text("example.com.", "s1", *key),
            "s1._domainkey.example.com. IN TXT \"" + key->dns_txt_value() + "\"");
}

TEST(DnsRecord, Rsa2048SplitsAt255) {
  auto key = DkimKey::generate(Algorithm::kRsaSha256, 2048);
  ASSERT_TRUE(key.is_ok());
  std::string txt = key->dns_txt_value();
  ASSERT_EQ(txt.size(), 18u + 392u);  // "v=DKIM1; k=rsa; p=" + base64 of 294 bytes
  EXPECT_EQ(dns_record_text("mail.example.com", "2026a", *key),
            "2026a._domainkey.mail.example.com. IN TXT \"" + txt.substr(0, 255) + "\" \"" +
                txt.substr(255) + "\"");
}

}  // namespace
}  // namespace magnetic::dkim
