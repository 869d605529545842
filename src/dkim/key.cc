// DKIM keys: loading, generating, PEM and DNS record forms, and writing key files.
//
// OpenSSL does the key work; this file only checks what DKIM accepts (RSA of at least 1024
// bits per RFC 8301, Ed25519 per RFC 8463) and formats the TXT record.
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "dkim/canonicalize_internal.h"
#include "dkim/signer.h"

namespace magnetic::dkim {
namespace {

constexpr int kMinRsaBits = 1024;
constexpr int kMaxRsaBits = 8192;

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// An encrypted PEM must fail instead of OpenSSL prompting on the terminal.
int no_passphrase(char*, int, int, void*) { return 0; }

}  // namespace

// Wraps a freshly loaded or generated key after checking DKIM accepts it (friend of DkimKey).
struct DkimKeyAccess {
  static Result<DkimKey> adopt(EVP_PKEY* raw) {
    std::shared_ptr<EVP_PKEY> pkey(raw, EVP_PKEY_free);
    DkimKey key;
    if (EVP_PKEY_is_a(raw, "RSA")) {
      int bits = EVP_PKEY_get_bits(raw);
      if (bits < kMinRsaBits) {
        return Status::invalid("RSA key of " + std::to_string(bits) +
                               " bits refused: DKIM needs at least 1024 (RFC 8301)");
      }
      key.algorithm_ = Algorithm::kRsaSha256;
    } else if (EVP_PKEY_is_a(raw, "ED25519")) {
      key.algorithm_ = Algorithm::kEd25519Sha256;
    } else {
      return Status::invalid(std::string("key type ") + EVP_PKEY_get0_type_name(raw) +
                             " is not usable for DKIM (RSA or Ed25519 only)");
    }
    key.pkey_ = std::move(pkey);
    return key;
  }
};

Result<DkimKey> DkimKey::from_pem(std::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (!bio) return Status::internal("out of memory reading PEM");
  EVP_PKEY* raw = PEM_read_bio_PrivateKey(bio, nullptr, no_passphrase, nullptr);
  BIO_free(bio);
  if (!raw) return Status::invalid("no private key in PEM: " + openssl_error());
  return DkimKeyAccess::adopt(raw);
}

Result<DkimKey> DkimKey::load_pem_file(const std::string& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) return Status::io_error("cannot read key file " + path + ": " + ec.message());
  if (size > 64 * 1024) return Status::invalid("key file " + path + " is too large for a key");

  std::string pem(size, '\0');
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::io_error("cannot open key file " + path + ": " + std::strerror(errno));
  size_t got = std::fread(pem.data(), 1, pem.size(), f);
  std::fclose(f);
  pem.resize(got);

  auto key = from_pem(pem);
  if (!key) return Status(key.status().code(), path + ": " + key.status().message());
  return key;
}

Result<DkimKey> DkimKey::generate(Algorithm algorithm, int bits) {
  EVP_PKEY* raw = nullptr;
  if (algorithm == Algorithm::kEd25519Sha256) {
    raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  } else {
    if (bits < kMinRsaBits || bits > kMaxRsaBits) {
      return Status::invalid("RSA key size " + std::to_string(bits) + " out of range (1024..8192)");
    }
    raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits));
  }
  if (!raw) return Status::internal("key generation failed: " + openssl_error());
  return DkimKeyAccess::adopt(raw);
}

Result<DkimKey> DkimKey::from_ed25519_seed(std::string_view seed) {
  if (seed.size() != 32) {
    return Status::invalid("an Ed25519 seed has 32 bytes, not " + std::to_string(seed.size()));
  }
  EVP_PKEY* raw = EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(seed.data()), 32);
  if (!raw) return Status::invalid("bad Ed25519 seed: " + openssl_error());
  return DkimKeyAccess::adopt(raw);
}

int DkimKey::bits() const { return pkey_ ? EVP_PKEY_get_bits(pkey_.get()) : 0; }

std::string DkimKey::private_pem() const {
  if (!pkey_) return {};
  BIO* bio = BIO_new(BIO_s_mem());
  std::string out;
  if (bio && PEM_write_bio_PrivateKey(bio, pkey_.get(), nullptr, nullptr, 0, nullptr, nullptr)) {
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    out.assign(data, static_cast<size_t>(n));
  }
  BIO_free(bio);
  return out;
}

std::string DkimKey::dns_txt_value() const {
  if (!pkey_) return {};
  std::string public_bytes;
  if (algorithm_ == Algorithm::kEd25519Sha256) {
    // RFC 8463 section 4: p= is the raw 32-byte public key, not a SubjectPublicKeyInfo.
    size_t len = 32;
    public_bytes.resize(len);
    EVP_PKEY_get_raw_public_key(pkey_.get(), reinterpret_cast<unsigned char*>(public_bytes.data()),
                                &len);
    public_bytes.resize(len);
    return "v=DKIM1; k=ed25519; p=" + base64_encode(public_bytes);
  }
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(pkey_.get(), &der);
  if (len > 0) public_bytes.assign(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return "v=DKIM1; k=rsa; p=" + base64_encode(public_bytes);
}

Status write_key_file(const DkimKey& key, const std::string& path, bool overwrite) {
  std::string pem = key.private_pem();
  if (pem.empty()) return Status::invalid("no key to write");

  std::error_code ec;
  if (!overwrite && std::filesystem::exists(path, ec)) {
    return Status(StatusCode::kAlreadyExists, "key file " + path + " exists; not overwritten");
  }

  // The temporary file is created 0600 by mkstemp, so the key is never readable by others,
  // not even for a moment, whatever the umask.
  std::string tmp = path + ".tmp-XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return Status::io_error("cannot create " + tmp + ": " + std::strerror(errno));
  auto fail = [&](const std::string& what) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return Status::io_error(what + " " + path + ": " + std::strerror(err));
  };
  if (::fchmod(fd, 0600) != 0) return fail("cannot set mode of");
  for (size_t done = 0; done < pem.size();) {
    ssize_t n = ::write(fd, pem.data() + done, pem.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("cannot write");
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("cannot sync");
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Status::io_error("cannot close " + tmp + ": " + std::strerror(errno));
  }

  // link() refuses an existing target, so a file that appeared meanwhile is still not clobbered.
  int rc = overwrite ? ::rename(tmp.c_str(), path.c_str()) : ::link(tmp.c_str(), path.c_str());
  int err = errno;
  if (!overwrite) ::unlink(tmp.c_str());
  if (rc != 0) {
    if (overwrite) ::unlink(tmp.c_str());
    if (err == EEXIST) {
      return Status(StatusCode::kAlreadyExists, "key file " + path + " exists; not overwritten");
    }
    return Status::io_error("cannot install key file " + path + ": " + std::strerror(err));
  }
  return Status::ok();
}

std::string dns_record_text(std::string_view domain, std::string_view selector,
                            const DkimKey& key) {
  std::string line(selector);
  line.append("._domainkey.").append(domain);
  if (!line.ends_with('.')) line.push_back('.');
  line.append(" IN TXT");

  // A TXT character-string holds at most 255 bytes; the value has no quotes or backslashes.
  std::string value = key.dns_txt_value();
  for (size_t pos = 0; pos < value.size(); pos += 255) {
    line.append(" \"").append(value, pos, 255).append("\"");
  }
  return line;
}

}  // namespace magnetic::dkim
