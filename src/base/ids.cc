#include "base/ids.h"

#include <openssl/rand.h>

#include <chrono>
#include <cstdlib>

namespace magnetic {
namespace {

constexpr char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";

void fill_random(unsigned char* out, size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1) std::abort();  // no entropy is not recoverable
}

std::string base32(const unsigned char* in, size_t n) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    buffer = (buffer << 8) | in[i];
    bits += 8;
    while (bits >= 5) {
      out.push_back(kAlphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

}  // namespace

std::string new_id() {
  unsigned char raw[16];
  uint64_t ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  for (int i = 0; i < 6; ++i) raw[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  fill_random(raw + 6, 10);
  return base32(raw, 16).substr(0, 26);
}

std::string random_token(size_t bytes) {
  unsigned char raw[64];
  if (bytes > sizeof(raw)) bytes = sizeof(raw);
  fill_random(raw, bytes);
  return base32(raw, bytes);
}

}  // namespace magnetic
