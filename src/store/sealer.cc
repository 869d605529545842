#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "store/sealer_internal.h"

namespace magnetic::store {
namespace {

constexpr unsigned char kVersion = 0x01;
constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

std::string errno_text() { return std::strerror(errno); }

// Writes a new key file. The key is written to a temporary file (O_CREAT|O_EXCL, 0600) and
// linked into place, so another process opening the same data directory at the same moment
// sees either no key or the whole key, never a partly written one; link() never replaces an
// existing file, so when two processes race, both go on with the key that was linked first.
Status create_key_file(const std::string& path) {
  std::array<unsigned char, kMasterKeySize> key{};
  unsigned char suffix[8];
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1 ||
      RAND_bytes(suffix, sizeof suffix) != 1) {
    return Status::internal("cannot make a master key: the random generator failed");
  }
  std::string tmp = path + ".new-";
  for (unsigned char c : suffix) tmp += "0123456789abcdef"[c & 15];

  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    OPENSSL_cleanse(key.data(), key.size());
    return Status::io_error("cannot create master key '" + path + "': " + errno_text());
  }
  bool ok = ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  OPENSSL_cleanse(key.data(), key.size());
  if (!ok) {
    Status s = Status::io_error("cannot write master key '" + path + "': " + errno_text());
    ::unlink(tmp.c_str());
    return s;
  }
  int rc = ::link(tmp.c_str(), path.c_str());
  int link_errno = errno;
  ::unlink(tmp.c_str());
  if (rc != 0 && link_errno != EEXIST) {
    return Status::io_error("cannot create master key '" + path +
                            "': " + std::strerror(link_errno));
  }

  // The new name must survive a crash as surely as the secrets sealed under it.
  std::string dir = path.substr(0, path.find_last_of('/') + 1);
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::ok();
}

}  // namespace

Sealer::~Sealer() { OPENSSL_cleanse(key_.data(), key_.size()); }

Result<Sealer> Sealer::open_master_key(const std::string& path) {
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) {
    if (Status s = create_key_file(path); !s) return s;
  }

  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Status::io_error("cannot open master key '" + path + "': " + errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Status s = Status::io_error("cannot stat master key '" + path + "': " + errno_text());
    ::close(fd);
    return s;
  }
  // Checked on the open descriptor, so the file judged is the file read.
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::invalid("master key '" + path + "' is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::invalid("master key '" + path + "' is accessible by group or others (mode " +
                           mode + "); make it owner-only with chmod 600");
  }
  if (st.st_size != static_cast<off_t>(kMasterKeySize)) {
    ::close(fd);
    return Status::invalid("master key '" + path + "' has " + std::to_string(st.st_size) +
                           " bytes; a master key has exactly 32");
  }
  std::array<unsigned char, kMasterKeySize> key{};
  ssize_t n = ::read(fd, key.data(), key.size());
  ::close(fd);
  if (n != static_cast<ssize_t>(key.size())) {
    OPENSSL_cleanse(key.data(), key.size());
    return Status::io_error("cannot read master key '" + path + "'");
  }
  Sealer sealer(key);
  OPENSSL_cleanse(key.data(), key.size());
  return sealer;
}

Result<std::string> Sealer::seal(std::string_view plaintext, std::string_view aad) const {
  std::string out(1 + kNonceSize + plaintext.size() + kTagSize, '\0');
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  bytes[0] = kVersion;
  unsigned char* nonce = bytes + 1;
  unsigned char* cipher = nonce + kNonceSize;
  if (RAND_bytes(nonce, static_cast<int>(kNonceSize)) != 1) {
    return Status::internal("cannot seal a secret: the random generator failed");
  }

  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  bool ok =
      ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr) == 1 &&
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key_.data(), nonce) == 1 &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) == 1 &&
      EVP_EncryptUpdate(ctx.get(), cipher, &len,
                        reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) == 1 &&
      EVP_EncryptFinal_ex(ctx.get(), cipher + len, &len) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, cipher + plaintext.size()) ==
          1;
  if (!ok) return Status::internal("cannot seal a secret: AES-256-GCM failed");
  return out;
}

Result<std::string> Sealer::unseal(std::string_view sealed, std::string_view aad) const {
  if (sealed.size() < 1 + kNonceSize + kTagSize ||
      static_cast<unsigned char>(sealed[0]) != kVersion) {
    return Status::internal("sealed value is malformed");
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(sealed.data());
  const unsigned char* nonce = bytes + 1;
  const unsigned char* cipher = nonce + kNonceSize;
  size_t cipher_size = sealed.size() - 1 - kNonceSize - kTagSize;
  std::string out(cipher_size, '\0');
  auto* plain = reinterpret_cast<unsigned char*>(out.data());

  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  // The tag is set before the final step; EVP_DecryptFinal_ex is where GCM checks it.
  bool ok = ctx &&
            EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr) == 1 &&
            EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key_.data(), nonce) == 1 &&
            EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                              reinterpret_cast<const unsigned char*>(aad.data()),
                              static_cast<int>(aad.size())) == 1 &&
            EVP_DecryptUpdate(ctx.get(), plain, &len, cipher, static_cast<int>(cipher_size)) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize,
                                const_cast<unsigned char*>(cipher + cipher_size)) == 1 &&
            EVP_DecryptFinal_ex(ctx.get(), plain + len, &len) == 1;
  if (!ok) {
    OPENSSL_cleanse(out.data(), out.size());
    return Status::internal(
        "sealed value does not open: damaged, moved from another row, or under another master "
        "key");
  }
  return out;
}

}  // namespace magnetic::store
