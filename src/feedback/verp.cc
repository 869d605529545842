#include "feedback/verp.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cctype>

namespace magnetic::feedback {
namespace {

constexpr size_t kTagLength = 8;

std::string tag_of(std::string_view row_text, std::string_view key) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(row_text.data()), row_text.size(), mac, &len);
  static constexpr char kBase32[] = "abcdefghijklmnopqrstuvwxyz234567";
  std::string tag;
  // 8 characters of 5 bits: the first 40 bits of the MAC.
  uint64_t bits = 0;
  for (int i = 0; i < 5; ++i) bits = (bits << 8) | mac[i];
  for (size_t i = 0; i < kTagLength; ++i) tag += kBase32[(bits >> (35 - 5 * i)) & 31];
  return tag;
}

std::string base36(int64_t v) {
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  if (v <= 0) return "0";
  std::string out;
  for (auto u = static_cast<uint64_t>(v); u; u /= 36) out.insert(out.begin(), kDigits[u % 36]);
  return out;
}

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

}  // namespace

std::string verp_token(int64_t row, std::string_view key) {
  std::string r = base36(row);
  return r + "-" + tag_of(r, key);
}

std::string verp_address(int64_t row, std::string_view domain, std::string_view key) {
  return std::string(kVerpPrefix) + verp_token(row, key) + "@" + std::string(domain);
}

std::optional<int64_t> verp_row(std::string_view token, std::string_view key) {
  size_t dash = token.find('-');
  if (dash == 0 || dash == std::string_view::npos || dash > 12) return std::nullopt;
  if (token.size() != dash + 1 + kTagLength) return std::nullopt;
  std::string row_text;
  uint64_t row = 0;
  for (size_t i = 0; i < dash; ++i) {
    char c = lower(token[i]);
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'z' ? c - 'a' + 10 : -1;
    if (d < 0) return std::nullopt;
    row = row * 36 + static_cast<uint64_t>(d);
    row_text += c;
  }
  if (row == 0 || row > static_cast<uint64_t>(INT64_MAX) ||
      base36(static_cast<int64_t>(row)) != row_text)
    return std::nullopt;
  std::string want = tag_of(row_text, key);
  std::string got;
  for (char c : token.substr(dash + 1)) got += lower(c);
  if (CRYPTO_memcmp(want.data(), got.data(), kTagLength) != 0) return std::nullopt;
  return static_cast<int64_t>(row);
}

std::string verp_token_of(std::string_view address, std::string_view domain) {
  size_t at = address.rfind('@');
  if (at == std::string_view::npos || at < kVerpPrefix.size()) return "";
  std::string_view dom = address.substr(at + 1);
  if (dom.size() != domain.size()) return "";
  for (size_t i = 0; i < dom.size(); ++i) {
    if (lower(dom[i]) != lower(domain[i])) return "";
  }
  for (size_t i = 0; i < kVerpPrefix.size(); ++i) {
    if (lower(address[i]) != kVerpPrefix[i]) return "";
  }
  return std::string(address.substr(kVerpPrefix.size(), at - kVerpPrefix.size()));
}

}  // namespace magnetic::feedback
