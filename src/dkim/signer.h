// DKIM signing (RFC 6376) with rsa-sha256 and ed25519-sha256 (RFC 8463).
//
// A DkimSigner is built once per campaign and used from many threads: sign() is const and
// keeps no state between calls. Canonicalization is relaxed/relaxed. The signature covers the
// configured header names that are present in the message, in the order given.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace magnetic::dkim {

enum class Algorithm { kRsaSha256, kEd25519Sha256 };

// A private key with its algorithm. Copies share the key.
class DkimKey {
 public:
  // Reads a PEM private key (PKCS#8 or traditional RSA). The algorithm follows the key type;
  // an RSA key shorter than 1024 bits is refused.
  static Result<DkimKey> load_pem_file(const std::string& path);
  static Result<DkimKey> from_pem(std::string_view pem);
  // A new key: RSA of `bits` bits, or Ed25519 (bits ignored).
  static Result<DkimKey> generate(Algorithm algorithm, int bits = 2048);

  Algorithm algorithm() const { return algorithm_; }
  std::string private_pem() const;  // PKCS#8 PEM
  // The TXT record value to publish at <selector>._domainkey.<domain>:
  // "v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>" or "v=DKIM1; k=ed25519; p=<base64 32 bytes>".
  std::string dns_txt_value() const;
  EVP_PKEY* pkey() const { return pkey_.get(); }

 private:
  Algorithm algorithm_ = Algorithm::kRsaSha256;
  std::shared_ptr<EVP_PKEY> pkey_;
};

struct SignerOptions {
  std::string domain;    // d=
  std::string selector;  // s=
  // h=: names of fields to sign, in order. A name missing from the message is left out of h=.
  std::vector<std::string> headers = {"From", "To", "Subject", "Date", "Message-ID",
                                      "MIME-Version", "Content-Type", "List-Unsubscribe",
                                      "List-Unsubscribe-Post"};
  bool add_timestamp = true;  // t=
};

class DkimSigner {
 public:
  static Result<DkimSigner> create(SignerOptions options, DkimKey key);

  // Returns the complete "DKIM-Signature: ...\r\n" field (folded) to put before the message's
  // first header. message is the whole message with CRLF line endings. Thread-safe.
  Result<std::string> sign(std::string_view message) const;

  const SignerOptions& options() const { return options_; }

 private:
  SignerOptions options_;
  DkimKey key_;
};

// Canonicalization, exposed for tests and for verification code.
// relaxed header: lower-case name, unfold, collapse WSP runs, trim; returns "name:value\r\n".
std::string canonicalize_header_relaxed(std::string_view name, std::string_view value);
std::string canonicalize_body_relaxed(std::string_view body);
std::string canonicalize_body_simple(std::string_view body);

}  // namespace magnetic::dkim
