// DKIM signing (RFC 6376) with rsa-sha256 and ed25519-sha256 (RFC 8463).
//
// A DkimSigner is built once per campaign and used from many threads: sign() is const and
// keeps no state between calls. Canonicalization is relaxed/relaxed. The signature covers the
// configured header names that are present in the message, in the order given.
// Scratch buffers and OpenSSL contexts are kept per thread and reused: each thread holds an
// initialized signing context (and so a reference) for up to 4 recently used keys.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace magnetic::dkim {

struct DkimKeyAccess;
enum class Algorithm { kRsaSha256, kEd25519Sha256 };

// "rsa" or "rsa-sha256", "ed25519" or "ed25519-sha256" (as `keygen --algorithm` takes them).
Result<Algorithm> parse_algorithm(std::string_view name);

// A private key with its algorithm. Copies share the key.
class DkimKey {
 public:
  // Reads a PEM private key (PKCS#8 or traditional RSA). The algorithm follows the key type;
  // an RSA key shorter than 1024 bits is refused.
  static Result<DkimKey> load_pem_file(const std::string& path);
  static Result<DkimKey> from_pem(std::string_view pem);
  // A new key: RSA of `bits` bits, or Ed25519 (bits ignored). RSA sizes outside 1024..8192
  // are refused.
  static Result<DkimKey> generate(Algorithm algorithm, int bits = 2048);
  // An Ed25519 key from its raw 32-byte seed (RFC 8032 private key), as some tools store it.
  static Result<DkimKey> from_ed25519_seed(std::string_view seed);

  Algorithm algorithm() const { return algorithm_; }
  std::string private_pem() const;  // PKCS#8 PEM
  // The TXT record value to publish at <selector>._domainkey.<domain>:
  // "v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>" or "v=DKIM1; k=ed25519; p=<base64 32 bytes>".
  std::string dns_txt_value() const;
  EVP_PKEY* pkey() const { return pkey_.get(); }
  int bits() const;  // RSA modulus size; 256 for Ed25519

 private:
  friend struct DkimKeyAccess;
  Algorithm algorithm_ = Algorithm::kRsaSha256;
  std::shared_ptr<EVP_PKEY> pkey_;
};

struct SignerOptions {
  std::string domain;    // d=
  std::string selector;  // s=
  // h=: names of fields to sign, in order. A name missing from the message is left out of h=.
  std::vector<std::string> headers = {"From",
                                      "To",
                                      "Subject",
                                      "Date",
                                      "Message-ID",
                                      "MIME-Version",
                                      "Content-Type",
                                      "List-Unsubscribe",
                                      "List-Unsubscribe-Post"};
  bool add_timestamp = true;  // t=

  // The tags below exist so that published vectors (RFC 8463 appendix A) can be reproduced
  // byte for byte; campaigns leave them at their defaults.
  std::optional<long> timestamp;  // t= value to write instead of the clock (with add_timestamp)
  std::string identity;           // i= (e.g. "@example.com", within d=); empty: no i= tag
  bool add_query_method = false;  // q=dns/txt (the default that verifiers assume anyway)
  std::string header_separator = ":";  // between names in h=; RFC 8463 writes " : "
  // When true every name in `headers` goes into h=, also where the message has no (further)
  // field of that name. A verifier then hashes nothing for it, so a field of that name added
  // later breaks the signature (over-signing, RFC 6376 section 8.15). Listing "From" twice with
  // this set protects against a second From being added.
  bool sign_absent_headers = false;
};

class DkimSigner {
 public:
  static Result<DkimSigner> create(SignerOptions options, DkimKey key);

  // Returns the complete "DKIM-Signature: ...\r\n" field (folded) to put before the message's
  // first header. message is the whole message with CRLF line endings. Thread-safe.
  // Fails (kInvalidArgument) when the message has no From field, since RFC 6376 5.4 requires
  // From to be signed, or when a header line has no colon.
  //
  // For each name in options().headers, the k-th mention of a name signs the k-th field of that
  // name counted from the bottom of the header block (RFC 6376 5.4.2), so a name given once
  // signs the last field of that name.
  Result<std::string> sign(std::string_view message) const;

  const SignerOptions& options() const { return options_; }

 private:
  SignerOptions options_;
  DkimKey key_;
  std::vector<std::string> lower_headers_;  // options_.headers in lower case, as h= lists them
};

// Signs a canonical header hash input (RFC 6376 3.7: the selected fields, canonicalized, then
// the DKIM-Signature field with an empty b= and no final CRLF) with the key's algorithm:
// RSASSA-PKCS1-v1_5 over SHA-256, or Ed25519 over the SHA-256 digest (RFC 8463 section 3).
// Returns the base64 b= value, unfolded. Thread-safe.
Result<std::string> sign_header_hash_input(const DkimKey& key, std::string_view hash_input);

// Writes the key as PKCS#8 PEM readable only by its owner (mode 0600). The file appears
// complete or not at all (temporary file, fsync, then link or rename). An existing file is
// kept and kAlreadyExists returned unless overwrite is set.
Status write_key_file(const DkimKey& key, const std::string& path, bool overwrite = false);

// The zone file line to publish, e.g.
//   sel._domainkey.example.com. IN TXT "v=DKIM1; k=ed25519; p=..."
// with the value split into quoted strings of at most 255 characters (RFC 1035 character-strings;
// verifiers join them).
std::string dns_record_text(std::string_view domain, std::string_view selector, const DkimKey& key);

// Canonicalization, exposed for tests and for verification code.
enum class Canonicalization { kSimple, kRelaxed };
struct CanonicalizationPair {
  Canonicalization header = Canonicalization::kSimple;
  Canonicalization body = Canonicalization::kSimple;
};
// Parses a c= value: nullopt (no c= tag) is simple/simple; one word sets the header algorithm
// and leaves the body simple; anything but simple|relaxed[/simple|relaxed] is kInvalidArgument.
Result<CanonicalizationPair> parse_canonicalization_tag(std::optional<std::string_view> value);

// relaxed header: lower-case name, unfold, collapse WSP runs, trim; returns "name:value\r\n".
// Whitespace anywhere in the name is dropped (a legal name has none; this matches what other
// implementations do with malformed names). `value` may end with the field's CRLF or not.
std::string canonicalize_header_relaxed(std::string_view name, std::string_view value);
// simple header: the field unchanged, "name:value\r\n" (a CRLF is added when value lacks it).
std::string canonicalize_header_simple(std::string_view name, std::string_view value);
// Bodies: relaxed turns an empty body (or one of only empty lines) into "", simple into "\r\n".
std::string canonicalize_body_relaxed(std::string_view body);
std::string canonicalize_body_simple(std::string_view body);
// base64 of SHA-256 of the canonical body: the bh= value.
std::string body_hash(std::string_view body, Canonicalization canonicalization);

// One header field, as views into the message it was split from.
struct HeaderField {
  std::string_view name;   // text before the colon, as written
  std::string_view value;  // text after the colon, continuation lines included, no final CRLF
};
struct MessageParts {
  std::vector<HeaderField> fields;  // in message order
  std::string_view body;            // after the empty line; empty when there is none
};
// Splits a CRLF message at the first empty line. A line starting with SP or HTAB continues the
// field above it (the first line always starts a field). A header line without a colon is
// kInvalidArgument. The views point into `message`.
Result<MessageParts> split_message(std::string_view message);

}  // namespace magnetic::dkim
