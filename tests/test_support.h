// Helpers shared by the tests: where the third-party corpora are, temporary folders.
#pragma once

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace magnetic::testing {

// The corpora folder: $MAGNETIC_CORPORA, else ../shared/corpora beside the source tree.
inline std::optional<std::filesystem::path> corpora_dir() {
  if (const char* env = std::getenv("MAGNETIC_CORPORA"); env && *env) {
    if (std::filesystem::is_directory(env)) return std::filesystem::path(env);
    return std::nullopt;
  }
  auto p = std::filesystem::path(MAGNETIC_SOURCE_DIR) / ".." / "shared" / "corpora";
  if (std::filesystem::is_directory(p)) return std::filesystem::canonical(p);
  return std::nullopt;
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Decodes standard base64 (with padding); empty on malformed input.
inline std::string base64_decode(std::string_view text) {
  std::string out(text.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return {};
  size_t len = static_cast<size_t>(n);
  // EVP_DecodeBlock counts the padding as zero bytes.
  if (text.ends_with("=="))
    len -= 2;
  else if (text.ends_with("="))
    len -= 1;
  out.resize(len);
  return out;
}

// Every LF that is not already part of a CRLF becomes CRLF.
inline std::string crlf_lines(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out.push_back('\r');
    out.push_back(text[i]);
  }
  return out;
}

// A fresh empty folder under the system temp dir, removed when the object goes away.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "magnetic-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace magnetic::testing

// Skips the current test when the corpora are absent (a fresh clone without ../shared).
#define MAGNETIC_REQUIRE_CORPORA(var)                                                          \
  auto var##_opt = ::magnetic::testing::corpora_dir();                                         \
  if (!var##_opt) GTEST_SKIP() << "corpora not found (../shared/corpora or MAGNETIC_CORPORA)"; \
  const std::filesystem::path var = *var##_opt
