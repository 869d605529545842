// Header field writing: RFC 5322 folding and RFC 2047 encoded-words.
//
// Strategy. A value is first made safe: every run of control characters (CR, LF, TAB, NUL, DEL,
// ...) becomes one space and invalid UTF-8 becomes U+FFFD, so nothing a recipient's data holds
// can end the field. The clean value is cut into units, each a run of spaces and the word after
// it. A unit is written literally when it is ASCII, does not contain "=?" and fits on a line;
// otherwise it joins an encoded segment with its neighbours that need encoding too. A segment is
// written as encoded-words of at most 75 characters that never split a UTF-8 character; each
// word is Q or B, whichever carries more of the text in the room left on the line. Folding puts
// a CRLF before a unit's spaces (or between two encoded-words, where readers drop the space),
// so unfolding gives back the exact value. Lines stay within 78 characters, and within 76 where
// they hold an encoded-word (RFC 2047 section 2); only a single literal word longer than that is
// written on a line of its own, up to 998.
//
// Written by hand rather than with GMime's g_mime_utils_header_encode_text: that allocates
// several GStrings per call and chooses its own charsets, while this runs once per message on
// the delivery hot path and must always write UTF-8 with the injection guarantee above.
#include "mail/header.h"

#include <algorithm>
#include <cstdint>

#include "mail/utf8.h"

namespace magnetic::mail {
namespace {

constexpr size_t kFoldAt = 78;       // RFC 5322 2.1.1 SHOULD
constexpr size_t kEncodedLine = 76;  // RFC 2047 2: lines holding encoded-words
constexpr size_t kMaxWord = 75;      // RFC 2047 2: one encoded-word
constexpr size_t kMaxLine = 998;     // RFC 5322 2.1.1 MUST
constexpr std::string_view kQPrefix = "=?UTF-8?Q?";
constexpr std::string_view kBPrefix = "=?UTF-8?B?";
constexpr size_t kWordOverhead = 12;  // prefix and "?="

constexpr char kHex[] = "0123456789ABCDEF";
constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

bool is_printable_ascii(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// RFC 2047 5(3): the characters a Q word may carry literally in a phrase. Using the phrase set
// everywhere keeps one encoder valid in Subject and display names alike.
bool q_literal(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '!' ||
         c == '*' || c == '+' || c == '-' || c == '/';
}

bool is_atext(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) !=
         std::string_view::npos;
}

// The clean form of a value: control runs become one space, invalid UTF-8 becomes U+FFFD.
void sanitize(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size();) {
    auto c = static_cast<unsigned char>(in[i]);
    if (is_control(c)) {
      while (i < in.size() && is_control(static_cast<unsigned char>(in[i]))) ++i;
      out.push_back(' ');
      continue;
    }
    size_t n = utf8::sequence_length(in, i);
    if (n == 0) {
      out.append(utf8::kReplacement);
      ++i;
      continue;
    }
    out.append(in.substr(i, n));
    i += n;
  }
}

// One encoded-word's worth of text: how many bytes, and in which encoding.
struct Chunk {
  size_t bytes = 0;
  bool base64 = false;
};

size_t q_cost(unsigned char c) { return (q_literal(c) || c == ' ') ? 1 : 3; }

// The longest prefix of text (whole UTF-8 characters) that fits in a word of max_word
// characters, Q or B. text is clean UTF-8, so character lengths are known to be valid.
Chunk fit_chunk(std::string_view text, size_t max_word) {
  Chunk best;
  if (max_word <= kWordOverhead) return best;
  size_t payload = max_word - kWordOverhead;
  size_t b_budget = payload / 4 * 3;

  size_t q_bytes = 0, q_len = 0, b_bytes = 0;
  bool q_open = true, b_open = true;
  for (size_t i = 0; i < text.size() && (q_open || b_open);) {
    size_t n = utf8::sequence_length(text, i);
    if (n == 0) n = 1;  // cannot happen on clean text; keeps the loop finite
    if (q_open) {
      size_t cost = 0;
      for (size_t k = 0; k < n; ++k) cost += q_cost(static_cast<unsigned char>(text[i + k]));
      if (q_len + cost <= payload) {
        q_len += cost;
        q_bytes = i + n;
      } else {
        q_open = false;
      }
    }
    if (b_open) {
      if (i + n <= b_budget) {
        b_bytes = i + n;
      } else {
        b_open = false;
      }
    }
    i += n;
  }
  if (q_bytes > b_bytes) return {q_bytes, false};
  if (b_bytes > q_bytes) return {b_bytes, true};
  // Same text either way: the shorter word wins (B on a tie is never shorter, so prefer Q).
  size_t b_len = (b_bytes + 2) / 3 * 4;
  return {q_bytes, b_len < q_len};
}

void append_word(std::string& out, std::string_view text, bool base64) {
  if (base64) {
    out.append(kBPrefix);
    size_t i = 0;
    for (; i + 3 <= text.size(); i += 3) {
      uint32_t v = (static_cast<unsigned char>(text[i]) << 16) |
                   (static_cast<unsigned char>(text[i + 1]) << 8) |
                   static_cast<unsigned char>(text[i + 2]);
      out.push_back(kBase64[v >> 18]);
      out.push_back(kBase64[(v >> 12) & 63]);
      out.push_back(kBase64[(v >> 6) & 63]);
      out.push_back(kBase64[v & 63]);
    }
    if (size_t rest = text.size() - i; rest > 0) {
      uint32_t v = static_cast<unsigned char>(text[i]) << 16;
      if (rest == 2) v |= static_cast<unsigned char>(text[i + 1]) << 8;
      out.push_back(kBase64[v >> 18]);
      out.push_back(kBase64[(v >> 12) & 63]);
      out.push_back(rest == 2 ? kBase64[(v >> 6) & 63] : '=');
      out.push_back('=');
    }
  } else {
    out.append(kQPrefix);
    for (unsigned char c : text) {
      if (q_literal(c)) {
        out.push_back(static_cast<char>(c));
      } else if (c == ' ') {
        out.push_back('_');
      } else {
        out.push_back('=');
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
      }
    }
  }
  out.append("?=");
}

enum class Context { kText, kPhrase };

// Writes one field value unit by unit, keeping track of the current line.
class FieldWriter {
 public:
  // fold=false writes everything on one line (encode_words); lead is what goes before the first
  // unit (" " after "Name:", nothing for encode_words).
  FieldWriter(std::string& out, size_t line_len, bool fold, std::string_view lead)
      : out_(out), line_len_(line_len), fold_(fold), lead_(lead) {}

  void literal(std::string_view ws, std::string_view token) {
    size_t len = lead_.size() + ws.size() + token.size();
    if (fold_ && started_ && !token.empty() && line_len_ + len > limit()) break_line();
    emit(lead_);
    lead_ = {};
    emit(ws);
    started_ = true;
    if (line_len_ + token.size() <= kMaxLine || !fold_) {
      emit(token);
      return;
    }
    // Only format_structured gets here (a single token longer than a line): break it hard,
    // which changes the value but keeps the message valid.
    while (!token.empty()) {
      size_t room = kMaxLine > line_len_ ? kMaxLine - line_len_ : 0;
      if (room == 0) {
        out_.append("\r\n ");
        line_len_ = 1;
        continue;
      }
      emit(token.substr(0, room));
      token.remove_prefix(std::min(room, token.size()));
    }
  }

  // text: what the encoded-words carry; sep: the literal space before the first one.
  void encoded(std::string_view sep, std::string_view text) {
    bool first = true;
    while (!text.empty()) {
      // The value's first word follows only the lead; later ones a space, which readers drop
      // between two encoded-words.
      std::string_view before = !started_ ? lead_ : (first ? sep : std::string_view(" "));
      Chunk chunk;
      if (fold_) {
        size_t used = line_len_ + before.size();
        size_t room = used < kEncodedLine ? kEncodedLine - used : 0;
        chunk = fit_chunk(text, std::min(kMaxWord, room));
        if (chunk.bytes == 0) {
          break_line();
          if (before.empty()) before = " ";
          chunk = fit_chunk(text, std::min(kMaxWord, kEncodedLine - before.size()));
        }
      } else {
        chunk = fit_chunk(text, kMaxWord);
      }
      emit(before);
      lead_ = {};
      started_ = true;
      size_t at = out_.size();
      append_word(out_, text.substr(0, chunk.bytes), chunk.base64);
      line_len_ += out_.size() - at;
      has_word_ = true;
      text.remove_prefix(chunk.bytes);
      first = false;
    }
  }

 private:
  size_t limit() const { return has_word_ ? kEncodedLine : kFoldAt; }
  void break_line() {
    out_.append("\r\n");
    line_len_ = 0;
    has_word_ = false;
  }
  void emit(std::string_view s) {
    out_.append(s);
    line_len_ += s.size();
  }

  std::string& out_;
  size_t line_len_;
  bool fold_;
  std::string_view lead_;
  bool started_ = false;
  bool has_word_ = false;  // the current line holds an encoded-word
};

bool needs_encoding(std::string_view ws, std::string_view token, size_t first_line_used, bool fold,
                    Context context) {
  for (unsigned char c : token) {
    if (c >= 0x80) return true;
    if (context == Context::kPhrase && !is_atext(c)) return true;
  }
  if (token.find("=?") != std::string_view::npos) return true;
  return fold && first_line_used + ws.size() + token.size() > kMaxLine;
}

// Writes a clean value (see sanitize) as literal units and encoded segments.
void write_value(FieldWriter& writer, std::string_view clean, size_t name_used, bool fold,
                 Context context) {
  std::string segment;
  size_t i = 0;
  bool first = true;
  bool in_segment = false;
  std::string_view segment_sep;
  auto flush = [&] {
    if (in_segment) writer.encoded(segment_sep, segment);
    in_segment = false;
    segment.clear();
  };
  while (i < clean.size()) {
    size_t ws_start = i;
    while (i < clean.size() && clean[i] == ' ') ++i;
    size_t token_start = i;
    while (i < clean.size() && clean[i] != ' ') ++i;
    // Trailing spaces stay with the last word: alone they could neither fold nor end a line.
    if (clean.find_first_not_of(' ', i) == std::string_view::npos) i = clean.size();
    std::string_view ws = clean.substr(ws_start, token_start - ws_start);
    std::string_view token = clean.substr(token_start, i - token_start);

    if (!needs_encoding(ws, token, first ? name_used : 0, fold, context)) {
      flush();
      writer.literal(ws, token);
    } else if (in_segment) {
      segment.append(ws);
      segment.append(token);
    } else {
      // The first space stays literal as the separator; further spaces go inside the word.
      in_segment = true;
      if (first || ws.empty()) {
        segment_sep = {};
        segment.append(ws);
      } else {
        segment_sep = ws.substr(0, 1);
        segment.append(ws.substr(1));
      }
      segment.append(token);
    }
    first = false;
  }
  flush();
}

void append_name(std::string& out, std::string_view name) {
  // A field name is the caller's constant; anything outside ftext is dropped so that even a
  // bad one cannot break the header.
  for (unsigned char c : name) {
    if (c > 32 && c < 127 && c != ':') out.push_back(static_cast<char>(c));
  }
  out.push_back(':');
}

bool is_atom_phrase(std::string_view s) {
  if (s.empty() || s.front() == ' ' || s.back() == ' ') return false;
  if (s.find("  ") != std::string_view::npos || s.find("=?") != std::string_view::npos) {
    return false;
  }
  for (unsigned char c : s) {
    if (c != ' ' && !is_atext(c)) return false;
  }
  return true;
}

void append_quoted(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

// The address as is, except that control characters (which parse_address never lets through,
// but a Mailbox can be built by hand) become a space rather than a line break.
void append_address(std::string& out, const Mailbox& mailbox) {
  auto put = [&out](std::string_view s) {
    for (char c : s) out.push_back(is_control(static_cast<unsigned char>(c)) ? ' ' : c);
  };
  put(mailbox.local);
  out.push_back('@');
  put(mailbox.domain);
}

}  // namespace

void append_unstructured(std::string& out, std::string_view name, std::string_view text) {
  size_t start = out.size();
  append_name(out, name);
  size_t used = out.size() - start;
  if (!text.empty()) {
    FieldWriter writer(out, used, true, " ");
    if (is_printable_ascii(text)) {  // already clean: no copy
      write_value(writer, text, used + 1, true, Context::kText);
    } else {
      std::string clean;
      sanitize(text, clean);
      write_value(writer, clean, used + 1, true, Context::kText);
    }
  }
  out.append("\r\n");
}

void append_mailbox(std::string& out, std::string_view name, const Mailbox& mailbox) {
  size_t start = out.size();
  append_name(out, name);
  size_t used = out.size() - start;
  FieldWriter writer(out, used, true, " ");

  if (!mailbox.display_name.empty()) {
    std::string clean;
    sanitize(mailbox.display_name, clean);
    if (is_atom_phrase(clean)) {
      write_value(writer, clean, used + 1, true, Context::kText);
    } else if (is_printable_ascii(clean) && clean.find("=?") == std::string_view::npos) {
      // A quoted-string is kept on the first line; a longer name is split into words instead.
      std::string quoted;
      append_quoted(quoted, clean);
      if (used + 1 + quoted.size() <= kFoldAt) {
        writer.literal({}, quoted);
      } else {
        write_value(writer, clean, used + 1, true, Context::kPhrase);
      }
    } else {
      write_value(writer, clean, used + 1, true, Context::kPhrase);
    }
    std::string address;
    address.reserve(mailbox.local.size() + mailbox.domain.size() + 3);
    address.push_back('<');
    append_address(address, mailbox);
    address.push_back('>');
    writer.literal(" ", address);
  } else {
    out.push_back(' ');
    append_address(out, mailbox);
  }
  out.append("\r\n");
}

void append_structured(std::string& out, std::string_view name, std::string_view value) {
  size_t start = out.size();
  append_name(out, name);
  size_t used = out.size() - start;
  if (!value.empty()) {
    FieldWriter writer(out, used, true, " ");
    // Units are cut at spaces only; other bytes pass through (the caller promised ASCII).
    std::string clean;
    clean.reserve(value.size());
    for (size_t i = 0; i < value.size();) {
      if (is_control(static_cast<unsigned char>(value[i]))) {
        while (i < value.size() && is_control(static_cast<unsigned char>(value[i]))) ++i;
        clean.push_back(' ');
      } else {
        clean.push_back(value[i++]);
      }
    }
    size_t i = 0;
    while (i < clean.size()) {
      size_t ws_start = i;
      while (i < clean.size() && clean[i] == ' ') ++i;
      size_t token_start = i;
      while (i < clean.size() && clean[i] != ' ') ++i;
      if (clean.find_first_not_of(' ', i) == std::string::npos) i = clean.size();
      writer.literal(std::string_view(clean).substr(ws_start, token_start - ws_start),
                     std::string_view(clean).substr(token_start, i - token_start));
    }
  }
  out.append("\r\n");
}

void append_mailbox_list(std::string& out, std::string_view name,
                         const std::vector<Mailbox>& mailboxes) {
  // Each mailbox as text first (a phrase's encoded-words on one line), then the whole value
  // folded at its spaces: every space in it is a place where FWS may stand.
  std::string value;
  for (size_t i = 0; i < mailboxes.size(); ++i) {
    const Mailbox& mailbox = mailboxes[i];
    if (i > 0) value.append(", ");
    if (!mailbox.display_name.empty()) {
      std::string clean;
      sanitize(mailbox.display_name, clean);
      if (is_atom_phrase(clean)) {
        value.append(clean);
      } else if (is_printable_ascii(clean) && clean.find("=?") == std::string_view::npos) {
        append_quoted(value, clean);
      } else {
        FieldWriter writer(value, 0, false, "");
        write_value(writer, clean, 0, false, Context::kPhrase);
      }
      value.append(" <");
      append_address(value, mailbox);
      value.push_back('>');
    } else {
      append_address(value, mailbox);
    }
  }

  size_t start = out.size();
  append_name(out, name);
  size_t line = out.size() - start;
  size_t i = 0;
  bool first = true;
  while (i < value.size()) {
    size_t end = value.find(' ', i);
    if (end == std::string::npos) end = value.size();
    std::string_view token = std::string_view(value).substr(i, end - i);
    if (!first && !token.empty() && line + 1 + token.size() > kFoldAt) {
      out.append("\r\n");
      line = 0;
    }
    out.push_back(' ');
    out.append(token);
    line += 1 + token.size();
    first = false;
    i = end + 1;
  }
  out.append("\r\n");
}

std::string format_mailbox_list(std::string_view name, const std::vector<Mailbox>& mailboxes) {
  std::string out;
  append_mailbox_list(out, name, mailboxes);
  return out;
}

std::string format_unstructured(std::string_view name, std::string_view text) {
  std::string out;
  append_unstructured(out, name, text);
  return out;
}

std::string format_mailbox(std::string_view name, const Mailbox& mailbox) {
  std::string out;
  append_mailbox(out, name, mailbox);
  return out;
}

std::string format_structured(std::string_view name, std::string_view value) {
  std::string out;
  append_structured(out, name, value);
  return out;
}

std::string encode_words(std::string_view text) {
  if (is_printable_ascii(text) && text.find("=?") == std::string_view::npos) {
    return std::string(text);
  }
  std::string clean;
  sanitize(text, clean);
  std::string out;
  FieldWriter writer(out, 0, false, "");
  write_value(writer, clean, 0, false, Context::kText);
  return out;
}

}  // namespace magnetic::mail
