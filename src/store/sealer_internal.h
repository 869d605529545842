// Sealing of the store's secrets, internal to store/.
//
// Strategy: AES-256-GCM under the 32-byte master key of the data directory. Every value gets
// a fresh random 12-byte nonce, and the row it belongs to (table and identity) is bound in as
// additional authenticated data, so a sealed value copied onto another row, or any byte of it
// changed, fails to open instead of yielding a wrong secret. Layout of a sealed value:
//   version (1 byte, 0x01) | nonce (12) | ciphertext (as long as the plaintext) | tag (16)
// The version byte leaves room for another cipher or a rotated key without guessing.
//
// Thread-safety: a Sealer is immutable after construction; any thread may use it.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "base/status.h"

namespace magnetic::store {

inline constexpr size_t kMasterKeySize = 32;

class Sealer {
 public:
  // Reads the master key at `path`, or creates it (32 bytes from the CSPRNG, mode 0600, never
  // over an existing file) when it is missing. A key file that group or others may access, that
  // is not a regular file, or that is not exactly 32 bytes is refused with kInvalidArgument.
  static Result<Sealer> open_master_key(const std::string& path);

  explicit Sealer(const std::array<unsigned char, kMasterKeySize>& key) : key_(key) {}
  Sealer(const Sealer&) = default;
  Sealer& operator=(const Sealer&) = default;
  ~Sealer();

  // `aad` names the row the value belongs to; unseal must be given the same.
  Result<std::string> seal(std::string_view plaintext, std::string_view aad) const;
  // kInternal when the value is damaged, sealed for another row, or under another key.
  Result<std::string> unseal(std::string_view sealed, std::string_view aad) const;

 private:
  std::array<unsigned char, kMasterKeySize> key_;
};

}  // namespace magnetic::store
