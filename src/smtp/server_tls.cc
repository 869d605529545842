#include "smtp/server_tls.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/log.h"

namespace magnetic::smtp::internal {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

constexpr int kPersistentDays = 825;

struct KeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct CertFree {
  void operator()(X509* p) const { X509_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using CertPtr = std::unique_ptr<X509, CertFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

struct KeyAndCert {
  KeyPtr key;
  CertPtr cert;
};

// The oldest OpenSSL error queued, as text, and the queue emptied.
std::string openssl_error() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  if (const char* reason = ERR_reason_error_string(code)) return reason;
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

Result<KeyAndCert> make_certificate(const std::string& hostname, int days) {
  KeyAndCert out{KeyPtr(EVP_EC_gen("P-256")), CertPtr(X509_new())};
  if (!out.key || !out.cert) return Status::internal("cannot make a key: " + openssl_error());
  X509* cert = out.cert.get();

  // A random serial: clients that cache certificates by issuer and serial must not confuse two
  // self-signed certificates made for the same hostname.
  unsigned char serial[16];
  bool ok = RAND_bytes(serial, sizeof serial) == 1;
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = ok ? BN_bin2bn(serial, sizeof serial, nullptr) : nullptr;
  ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != nullptr;
  BN_free(bn);

  ok = ok && X509_set_version(cert, 2) == 1 &&
       X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != nullptr &&
       X509_gmtime_adj(X509_getm_notAfter(cert), static_cast<long>(days) * 86400) != nullptr &&
       X509_set_pubkey(cert, out.key.get()) == 1;
  X509_NAME* name = X509_get_subject_name(cert);
  ok = ok &&
       X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                  reinterpret_cast<const unsigned char*>(hostname.c_str()), -1, -1,
                                  0) == 1 &&
       X509_set_issuer_name(cert, name) == 1;

  // subjectAltName DNS:hostname, built as a structure rather than from a configuration string
  // so that no character of the hostname is read as syntax.
  if (ok) {
    GENERAL_NAMES* names = sk_GENERAL_NAME_new_null();
    GENERAL_NAME* dns = GENERAL_NAME_new();
    ASN1_IA5STRING* text = ASN1_IA5STRING_new();
    ok = names && dns && text &&
         ASN1_STRING_set(text, hostname.data(), static_cast<int>(hostname.size())) == 1;
    if (ok) {
      GENERAL_NAME_set0_value(dns, GEN_DNS, text);
      text = nullptr;
      ok = sk_GENERAL_NAME_push(names, dns) > 0;
      if (ok) dns = nullptr;
    }
    ok = ok && X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, 0) == 1;
    ASN1_IA5STRING_free(text);
    GENERAL_NAME_free(dns);
    GENERAL_NAMES_free(names);
  }

  ok = ok && X509_sign(cert, out.key.get(), EVP_sha256()) > 0;
  if (!ok) return Status::internal("cannot make a self-signed certificate: " + openssl_error());
  return out;
}

std::shared_ptr<asio::ssl::context> base_context() {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* ctx = context->native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  return context;
}

Result<std::shared_ptr<asio::ssl::context>> context_with(const KeyAndCert& pair) {
  auto context = base_context();
  if (SSL_CTX_use_certificate(context->native_handle(), pair.cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(context->native_handle(), pair.key.get()) != 1) {
    return Status::internal("cannot use the self-signed certificate: " + openssl_error());
  }
  return context;
}

Result<std::string> to_pem(const KeyAndCert& pair, bool key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  bool ok = bio && (key ? PEM_write_bio_PrivateKey(bio.get(), pair.key.get(), nullptr, nullptr, 0,
                                                   nullptr, nullptr)
                        : PEM_write_bio_X509(bio.get(), pair.cert.get())) == 1;
  if (!ok) return Status::internal("cannot encode the certificate as PEM: " + openssl_error());
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// Writes a new file at path with the given mode: the bytes go to a temporary file beside it,
// which is synced and then linked to path, so path never exists half written and an existing
// path is never replaced (link fails with EEXIST).
Status write_new_file(const std::string& field, const std::string& path, const std::string& data,
                      mode_t mode) {
  std::error_code ec;
  fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  if (ec)
    return Status::io_error(field + " " + path + ": cannot create its folder: " + ec.message());

  std::string tmp = path + ".tmp-XXXXXX";
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);  // mode 0600 from the start
  if (fd < 0)
    return Status::io_error(field + " " + path + ": cannot create: " + std::strerror(errno));
  auto fail = [&](const char* what, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return Status::io_error(field + " " + path + ": cannot " + what + ": " + std::strerror(err));
  };
  if (::fchmod(fd, mode) != 0) return fail("set its mode", errno);
  size_t written = 0;
  while (written < data.size()) {
    ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("write", n < 0 ? errno : EIO);
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("sync", errno);
  ::close(fd);

  int linked = ::link(tmp.c_str(), path.c_str());
  int err = errno;
  ::unlink(tmp.c_str());
  if (linked != 0) {
    return Status::io_error(field + " " + path + ": cannot create: " + std::strerror(err));
  }
  int dir = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return Status::ok();
}

Result<std::shared_ptr<asio::ssl::context>> load_files(const std::string& cert_file,
                                                       const std::string& key_file) {
  auto context = base_context();
  SSL_CTX* ctx = context->native_handle();
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return Status::invalid("tls_cert_file " + cert_file +
                           ": not a PEM certificate: " + openssl_error());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return Status::invalid("tls_key_file " + key_file +
                           ": not a PEM private key: " + openssl_error());
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return Status::invalid("tls_key_file " + key_file + ": does not match the certificate in " +
                           cert_file + ": " + openssl_error());
  }

  struct stat st {};
  if (::stat(key_file.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    logger("smtp-in")->warn("tls_key_file {} can be read by others than its owner (mode {:o})",
                            key_file, st.st_mode & 0777);
  }
  X509* cert = SSL_CTX_get0_certificate(ctx);
  if (cert && (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0 ||
               X509_cmp_current_time(X509_get0_notBefore(cert)) > 0)) {
    logger("smtp-in")->warn(
        "tls_cert_file {}: the certificate is not valid now (expired or not yet valid); "
        "a self-signed one is made again if both files are removed",
        cert_file);
  }
  return context;
}

}  // namespace

Result<std::shared_ptr<asio::ssl::context>> self_signed_tls_context(const std::string& hostname,
                                                                    int days) {
  auto pair = make_certificate(hostname, days);
  if (!pair) return pair.status();
  return context_with(*pair);
}

Result<std::shared_ptr<asio::ssl::context>> server_tls_context(const std::string& hostname,
                                                               const std::string& cert_file,
                                                               const std::string& key_file) {
  if (cert_file.empty() != key_file.empty()) {
    return Status::invalid(cert_file.empty()
                               ? "tls_cert_file is empty while tls_key_file is set: set both"
                               : "tls_key_file is empty while tls_cert_file is set: set both");
  }
  if (cert_file.empty()) return self_signed_tls_context(hostname, kPersistentDays);

  std::error_code ec;
  bool have_cert = fs::exists(cert_file, ec);
  bool have_key = fs::exists(key_file, ec);
  if (have_cert && have_key) return load_files(cert_file, key_file);
  if (have_cert != have_key) {
    return Status::invalid(have_cert
                               ? "tls_key_file " + key_file + " is missing while tls_cert_file " +
                                     cert_file + " exists: provide it or remove both"
                               : "tls_cert_file " + cert_file + " is missing while tls_key_file " +
                                     key_file + " exists: provide it or remove both");
  }

  auto pair = make_certificate(hostname, kPersistentDays);
  if (!pair) return pair.status();
  auto key_pem = to_pem(*pair, true);
  if (!key_pem) return key_pem.status();
  auto cert_pem = to_pem(*pair, false);
  if (!cert_pem) return cert_pem.status();
  // The key first: a crash between the two leaves a key without a certificate, which the next
  // start reports instead of silently pairing it with something else.
  if (Status s = write_new_file("tls_key_file", key_file, *key_pem, 0600); !s) return s;
  if (Status s = write_new_file("tls_cert_file", cert_file, *cert_pem, 0644); !s) return s;
  logger("smtp-in")->info("made a self-signed certificate for {} in {} (key in {})", hostname,
                          cert_file, key_file);
  return context_with(*pair);
}

}  // namespace magnetic::smtp::internal
