// The SES SMTP password of a secret access key. SES checks an SMTP AUTH password by deriving
// it from the secret the same way, so clients configured with SES credentials work unchanged.
// HMAC-SHA256 comes from OpenSSL.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

#include "store/store.h"

namespace magnetic::store {
namespace {

std::string hmac_sha256(const std::string& key, const std::string& message) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

}  // namespace

std::string smtp_password(const std::string& secret, const std::string& region) {
  // The SigV4 signing key chain with a fixed date, signing the fixed text "SendRawEmail".
  std::string key = "AWS4" + secret;
  for (const std::string& step : {std::string("11111111"), region, std::string("ses"),
                                  std::string("aws4_request"), std::string("SendRawEmail")}) {
    key = hmac_sha256(key, step);
  }
  std::string raw = std::string(1, '\x04') + key;

  std::string out(4 * ((raw.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()),
                          static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace magnetic::store
