// RFC 2047 decoding of field values (decode_words in header.h).
//
// Strategy: one scan over the raw value. Outside encoded-words a fold loses its line break and
// keeps its whitespace (RFC 5322 2.2.3). An encoded-word is "=?charset?Q|B?text?=". Adjacent
// words (only whitespace between them) drop that whitespace, and their bytes are gathered while
// the charset stays the same, so that a multi-byte character split across two words (as some
// senders do) is converted whole. Charsets are converted with iconv from the C library; the
// decoder itself is hand-written because GMime's g_mime_utils_header_decode_text does not keep
// the exact whitespace that the round-trip tests of our own encoder need.
#include <iconv.h>

#include <cerrno>
#include <string>
#include <string_view>

#include "mail/header.h"
#include "mail/utf8.h"

namespace magnetic::mail {
namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

// Length of the fold (CRLF or LF, then at least one WSP) at s[i], without the WSP; 0 if none.
size_t fold_at(std::string_view s, size_t i) {
  size_t n = 0;
  if (i < s.size() && s[i] == '\r') n = 1;
  if (i + n < s.size() && s[i + n] == '\n') {
    ++n;
  } else {
    return 0;
  }
  return (i + n < s.size() && is_wsp(s[i + n])) ? n : 0;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// The text of an encoded-word with folds (and the whitespace after them) taken out: a fold
// inside a word is never part of the text, whatever the word's encoding.
std::string unfold_inside(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (size_t f = fold_at(text, i); f > 0) {
      i += f;
      while (i < text.size() && is_wsp(text[i])) ++i;
      continue;
    }
    out.push_back(text[i++]);
  }
  return out;
}

void decode_q(std::string_view text, std::string& out) {
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '_') {
      out.push_back(' ');
    } else if (c == '=') {
      // Some senders put whitespace between '=' and the hex digits; skip it.
      size_t j = i + 1;
      while (j < text.size() && is_wsp(text[j])) ++j;
      if (j + 1 < text.size() && hex_value(text[j]) >= 0 && hex_value(text[j + 1]) >= 0) {
        out.push_back(static_cast<char>(hex_value(text[j]) * 16 + hex_value(text[j + 1])));
        i = j + 1;
      } else {
        out.push_back('=');
      }
    } else {
      out.push_back(c);
    }
  }
}

void decode_b(std::string_view text, std::string& out) {
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    int v = base64_value(c);
    if (v < 0) continue;  // whitespace and stray characters
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
}

struct Word {
  std::string_view charset;  // without an RFC 2231 "*lang" suffix
  std::string bytes;         // decoded, still in charset
  size_t end = 0;            // index just past "?="
};

// Parses the encoded-word starting at s[i] ("=?"); false when it is not a well-formed one.
bool parse_word(std::string_view s, size_t i, Word& word) {
  size_t p = i + 2;
  size_t charset_start = p;
  while (p < s.size() && s[p] != '?') {
    char c = s[p];
    if (is_wsp(c) || c == '\r' || c == '\n' || c == '=' || p - charset_start > 64) return false;
    ++p;
  }
  if (p == charset_start || p + 2 >= s.size()) return false;
  std::string_view charset = s.substr(charset_start, p - charset_start);
  if (size_t star = charset.find('*'); star != std::string_view::npos) {
    charset = charset.substr(0, star);
  }
  if (charset.empty()) return false;
  char encoding = s[p + 1];
  if (s[p + 2] != '?') return false;
  bool q = encoding == 'Q' || encoding == 'q';
  if (!q && encoding != 'B' && encoding != 'b') return false;

  size_t text_start = p + 3;
  size_t close = s.find("?=", text_start);
  if (close == std::string_view::npos) return false;
  std::string text = unfold_inside(s.substr(text_start, close - text_start));
  word.charset = charset;
  word.bytes.clear();
  if (q) {
    decode_q(text, word.bytes);
  } else {
    decode_b(text, word.bytes);
  }
  word.end = close + 2;
  return true;
}

bool same_charset(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Appends bytes in charset to out as UTF-8; false when iconv does not know the charset.
bool convert(std::string_view charset, std::string_view bytes, std::string& out) {
  if (same_charset(charset, "utf-8") || same_charset(charset, "us-ascii") ||
      same_charset(charset, "utf8")) {
    // Copied, with malformed sequences marked, so the result is always valid UTF-8.
    for (size_t i = 0; i < bytes.size();) {
      size_t n = utf8::sequence_length(bytes, i);
      if (n == 0) {
        out.append(utf8::kReplacement);
        ++i;
      } else {
        out.append(bytes.substr(i, n));
        i += n;
      }
    }
    return true;
  }
  std::string name(charset);
  iconv_t cd = iconv_open("UTF-8", name.c_str());
  if (cd == reinterpret_cast<iconv_t>(-1)) return false;
  std::string in(bytes);
  char* inp = in.data();
  size_t inleft = in.size();
  char buffer[256];
  while (true) {
    char* outp = buffer;
    size_t outleft = sizeof(buffer);
    size_t rc = iconv(cd, inleft > 0 ? &inp : nullptr, &inleft, &outp, &outleft);
    out.append(buffer, sizeof(buffer) - outleft);
    if (rc != static_cast<size_t>(-1)) {
      if (inleft == 0) {
        // Flush the shift state of stateful charsets (ISO-2022-JP).
        outp = buffer;
        outleft = sizeof(buffer);
        iconv(cd, nullptr, nullptr, &outp, &outleft);
        out.append(buffer, sizeof(buffer) - outleft);
        break;
      }
      continue;
    }
    if (errno == E2BIG) continue;
    // An invalid or truncated sequence: mark it and go on with the next byte.
    out.append(utf8::kReplacement);
    if (inleft == 0) break;
    ++inp;
    --inleft;
  }
  iconv_close(cd);
  return true;
}

}  // namespace

std::string decode_words(std::string_view s) {
  std::string out;
  out.reserve(s.size());

  std::string pending;  // bytes of adjacent words in one charset
  std::string_view pending_charset;
  std::string_view pending_raw;  // their original text, for an unknown charset
  size_t pending_raw_start = 0;
  auto flush = [&] {
    if (pending_charset.empty()) return;
    if (!convert(pending_charset, pending, out)) out.append(pending_raw);
    pending.clear();
    pending_charset = {};
  };

  Word word;
  size_t i = 0;
  size_t last_word_end = std::string_view::npos;  // where the previous word ended
  while (i < s.size()) {
    if (s[i] == '=' && i + 1 < s.size() && s[i + 1] == '?' && parse_word(s, i, word)) {
      if (last_word_end != std::string_view::npos && !pending_charset.empty() &&
          same_charset(word.charset, pending_charset)) {
        pending.append(word.bytes);
        pending_raw = s.substr(pending_raw_start, word.end - pending_raw_start);
      } else {
        flush();
        pending_charset = word.charset;
        pending = word.bytes;
        pending_raw_start = i;
        pending_raw = s.substr(i, word.end - i);
      }
      i = word.end;
      last_word_end = i;
      continue;
    }

    // Whitespace after a word is held back: it is dropped if another word follows.
    if (last_word_end != std::string_view::npos) {
      size_t j = i;
      while (j < s.size()) {
        if (is_wsp(s[j])) {
          ++j;
        } else if (size_t f = fold_at(s, j); f > 0) {
          j += f;
        } else {
          break;
        }
      }
      if (j < s.size() && s[j] == '=' && j + 1 < s.size() && s[j + 1] == '?' &&
          parse_word(s, j, word)) {
        i = j;
        continue;
      }
      flush();
      last_word_end = std::string_view::npos;
    }

    if (size_t f = fold_at(s, i); f > 0) {
      i += f;
      continue;
    }
    out.push_back(s[i++]);
  }
  flush();
  return out;
}

}  // namespace magnetic::mail
