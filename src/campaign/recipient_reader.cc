// Recipient list reader: a hand-written incremental CSV state machine and a line splitter for JSON
// lines, both over one fixed read(2) buffer.
//
// Strategy: bytes are pulled from a 64 KiB buffer; runs of ordinary bytes are found with a lookup
// table and appended to one reused row buffer (field values back to back plus their end
// offsets), so parsing a row allocates nothing once the buffers have grown. Only a valid row's
// nlohmann::json data is built per row. skip() runs the same state machine without keeping bytes.
//
// Why by hand: a CSV library would hide what this reader must report (the physical line where a
// row starts, the column and offset of a stray quote, a row that swallowed the file through an
// open quote) and most read whole files or allocate per field. UTF-8 is checked by hand because the
// message names the byte and its offset, and glib's validator would bring glib into this module
// for one loop; the check has an ASCII fast path since most lists are ASCII.
//
// Decisions the header leaves open:
// - Rows end at CRLF, LF or a lone CR (old spreadsheet exports on the Mac write CR only). Inside
//   quotes every line break is kept as written. CRLF counts as one physical line.
// - Empty lines (nothing between two line breaks) are skipped: they are not rows, so they take no
//   row number, but they do count as physical lines. A line of spaces or a line `""` is a row.
// - Values stay strings, exactly as written: guessing numbers would turn the zip code "01234"
//   into 1234 and a phone number into a float. Only the email value is trimmed of spaces and tabs
//   before it is checked (spreadsheets leave trailing blanks); data["email"] holds it trimmed.
// - A header name that is empty, has an empty part ("a..b", ".a"), repeats another, or is both a
//   value and an object ("a" and "a.b") fails open(): every row would be ambiguous.
// - Error rows carry an empty data object. The first fault of a row is reported, in this order:
//   too long, unterminated quote, stray quote or text after a closing quote, field count, UTF-8
//   (first bad column), empty email, invalid address.
// - After a stray quote the rest of the field is taken literally and the row still ends at the
//   next line break outside quotes, so the rows after it come through. An unterminated quote runs
//   to the end of the file: that one row is reported and the reading ends.
// - JSON lines: the object is the data as written (typed values stay typed; a repeated member
//   keeps its last value, as nlohmann does). A line that is empty or only spaces, tabs and CR is
//   blank and skipped. Anything
//   nlohmann's parser rejects is an error row; when the line holds bytes that are not UTF-8 (which
//   nlohmann rejects too) the message names the first bad byte and its offset in the line.
#include "campaign/recipient_reader.h"

#include "base/json_depth.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>

namespace magnetic::campaign {
namespace {

constexpr size_t kNoInvalidByte = std::string_view::npos;

// The offset of the first byte of the first ill-formed UTF-8 sequence in s (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF), or kNoInvalidByte.
size_t find_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, p + i, 8);
      if ((word & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }

    // The lead byte fixes the length and the range of the second byte; the narrowed ranges are
    // what rule out overlongs (E0, F0), surrogates (ED) and code points above U+10FFFF (F4).
    size_t len;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c == 0xE0) {
      len = 3;
      lo = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      len = 3;
    } else if (c == 0xED) {
      len = 3;
      hi = 0x9F;
    } else if (c == 0xF0) {
      len = 4;
      lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
      len = 4;
    } else if (c == 0xF4) {
      len = 4;
      hi = 0x8F;
    } else {
      return i;  // a continuation byte, C0/C1 (always overlong) or F5..FF
    }
    if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
    }
    i += len;
  }
  return kNoInvalidByte;
}

std::string utf8_error(std::string_view s, size_t offset) {
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(s[offset]));
  return "not valid UTF-8 (byte " + std::string(hex) + " at offset " + std::to_string(offset) + ")";
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string row_prefix(uint64_t row) {
  return row == 0 ? std::string("header") : "row " + std::to_string(row);
}

// Runs the address check and fills email and domain, or returns the row's error. The check is
// the caller's code: an exception from it becomes the row's error instead of leaving the reader.
std::string check_address(const AddressCheck& check, uint64_t row_number, std::string_view written,
                          RecipientRow& row) {
  std::string_view address = trim(written);
  if (address.empty()) return row_prefix(row_number) + ": empty email";
  std::string why;
  try {
    Result<std::string> normalized = check(address);
    if (normalized.is_ok()) {
      row.email = std::move(normalized).value();
      size_t at = row.email.rfind('@');
      row.domain =
          lower_ascii(at == std::string::npos ? std::string_view()
                                              : std::string_view(row.email).substr(at + 1));
      return {};
    }
    why = normalized.status().message();
  } catch (const std::exception& e) {
    why = std::string("address check failed: ") + e.what();
  } catch (...) {
    why = "address check failed";
  }
  row.email.clear();
  row.domain.clear();
  return row_prefix(row_number) + ": invalid address '" + std::string(address) + "': " + why;
}

// The file, read through one fixed buffer. fill() makes at least one byte available or reports
// the end (or a read error, kept in error()).
class ByteSource {
 public:
  explicit ByteSource(int fd) : fd_(fd), buf_(RecipientReader::kReadBufferBytes) {}
  ~ByteSource() { ::close(fd_); }
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  bool fill() {
    if (pos_ < len_) return true;
    if (done_) return false;
    ssize_t n;
    do {
      n = ::read(fd_, buf_.data(), buf_.size());
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      if (n < 0) error_ = std::strerror(errno);
      done_ = true;
      return false;
    }
    base_ += len_;
    pos_ = 0;
    len_ = static_cast<size_t>(n);
    return true;
  }

  // The next byte without taking it, or -1 at the end.
  int peek() { return fill() ? static_cast<unsigned char>(buf_[pos_]) : -1; }
  const char* data() const { return buf_.data() + pos_; }
  size_t available() const { return len_ - pos_; }
  void advance(size_t n) { pos_ += n; }
  // Bytes taken since the start of the file.
  uint64_t offset() const { return base_ + pos_; }
  const std::string& error() const { return error_; }

 private:
  int fd_;
  std::vector<char> buf_;
  size_t pos_ = 0;
  size_t len_ = 0;
  uint64_t base_ = 0;
  bool done_ = false;
  std::string error_;
};

// Skips a UTF-8 byte order mark at the start of the file.
void skip_bom(ByteSource& src) {
  if (!src.fill()) return;
  // The three bytes may straddle reads only if a read returned fewer than three bytes, which a
  // regular file does not do at its start.
  if (src.available() >= 3 && std::memcmp(src.data(), "\xEF\xBB\xBF", 3) == 0) src.advance(3);
}

using StopTable = std::array<bool, 256>;

constexpr StopTable make_stops(std::string_view bytes) {
  StopTable t{};
  for (char c : bytes) t[static_cast<unsigned char>(c)] = true;
  return t;
}

constexpr StopTable kUnquotedStops = make_stops(",\"\r\n");
constexpr StopTable kQuotedStops = make_stops("\"\r\n");

// ---------------------------------------------------------------------------------------------
// CSV

enum class Fault { kNone, kStrayQuote, kTextAfterQuote, kUnterminated };

// One CSV record as parsed: field values back to back in `bytes`, field i ending at ends[i].
struct Record {
  uint64_t line = 0;
  std::string bytes;
  std::vector<size_t> ends;
  bool too_long = false;
  Fault fault = Fault::kNone;
  size_t fault_field = 0;
  uint64_t fault_offset = 0;  // bytes into the field as written, quotes included
  uint64_t quote_line = 0;    // where an unterminated quote opened

  std::string_view field(size_t i) const {
    size_t begin = i == 0 ? 0 : ends[i - 1];
    return std::string_view(bytes).substr(begin, ends[i] - begin);
  }
};

// A column of the header, with where its value goes in the data.
struct Column {
  std::string name;               // trimmed, as written
  std::vector<std::string> path;  // data keys: "a.b" -> {"a", "b"}; the email column -> {"email"}
};

class CsvReader final : public RecipientReader {
 public:
  CsvReader(int fd, AddressCheck check) : src_(fd), check_(std::move(check)) {}

  Status read_header();

  bool next(RecipientRow& row) override;
  const std::vector<std::string>& columns() const override { return names_; }
  void skip(uint64_t n) override;

 private:
  enum class FieldEnd { kComma, kRecordEnd };

  template <bool kKeep>
  bool read_record(Record& r);
  template <bool kKeep>
  FieldEnd read_field(Record& r);
  template <bool kKeep>
  void keep(Record& r, const char* p, size_t n);
  void set_fault(Record& r, Fault f, uint64_t field_start);

  std::string column_label(size_t i) const;
  std::string fault_message(const Record& r, uint64_t row_number) const;
  bool io_error_row(RecipientRow& row);

  ByteSource src_;
  AddressCheck check_;
  std::vector<std::string> names_;
  std::vector<Column> columns_;
  size_t email_column_ = 0;
  Record record_;
  uint64_t line_ = 1;
  uint64_t rows_ = 0;
  bool done_ = false;
};

template <bool kKeep>
void CsvReader::keep(Record& r, const char* p, size_t n) {
  if constexpr (kKeep) {
    if (r.too_long) return;
    if (r.bytes.size() + n > kMaxRowBytes) {
      r.too_long = true;
      return;
    }
    r.bytes.append(p, n);
  }
}

void CsvReader::set_fault(Record& r, Fault f, uint64_t field_start) {
  if (r.fault != Fault::kNone && f != Fault::kUnterminated) return;
  r.fault = f;
  r.fault_field = r.ends.size();
  r.fault_offset = src_.offset() - field_start;
}

// Reads one record (skipping empty lines before it); false at the end of the file or on a read
// error, with nothing read. With kKeep false only the structure is followed (for skip()).
template <bool kKeep>
bool CsvReader::read_record(Record& r) {
  for (;;) {
    int c = src_.peek();
    if (c < 0) return false;
    if (c != '\r' && c != '\n') break;
    src_.advance(1);
    if (c == '\r' && src_.peek() == '\n') src_.advance(1);
    ++line_;
  }

  r.line = line_;
  r.bytes.clear();
  r.ends.clear();
  r.too_long = false;
  r.fault = Fault::kNone;
  while (read_field<kKeep>(r) == FieldEnd::kComma) {
  }
  return true;
}

template <bool kKeep>
CsvReader::FieldEnd CsvReader::read_field(Record& r) {
  const uint64_t field_start = src_.offset();
  auto end_field = [&](FieldEnd how) {
    r.ends.push_back(r.bytes.size());
    return how;
  };
  // Takes the row terminator after the field (CRLF, LF or CR; nothing at the end of the file).
  auto end_record = [&]() {
    int c = src_.peek();
    if (c >= 0) {
      src_.advance(1);
      if (c == '\r' && src_.peek() == '\n') src_.advance(1);
      ++line_;
    }
    return end_field(FieldEnd::kRecordEnd);
  };

  // A quoted field: up to the closing quote; "" is a quote, line breaks are kept.
  if (src_.peek() == '"') {
    const uint64_t opened_on = line_;
    src_.advance(1);
    for (;;) {
      if (!src_.fill()) {
        set_fault(r, Fault::kUnterminated, field_start);
        r.quote_line = opened_on;
        return end_field(FieldEnd::kRecordEnd);
      }
      const char* p = src_.data();
      const size_t n = src_.available();
      size_t i = 0;
      while (i < n && !kQuotedStops[static_cast<unsigned char>(p[i])]) ++i;
      keep<kKeep>(r, p, i);
      src_.advance(i);
      if (i == n) continue;

      const char stop = p[i];
      src_.advance(1);
      if (stop == '"') {
        if (src_.peek() != '"') break;
        keep<kKeep>(r, "\"", 1);
        src_.advance(1);
        continue;
      }
      keep<kKeep>(r, &stop, 1);
      if (stop == '\r' && src_.peek() == '\n') {
        keep<kKeep>(r, "\n", 1);
        src_.advance(1);
      }
      ++line_;
    }

    int c = src_.peek();
    if (c == ',') {
      src_.advance(1);
      return end_field(FieldEnd::kComma);
    }
    if (c < 0 || c == '\r' || c == '\n') return end_record();
    set_fault(r, Fault::kTextAfterQuote, field_start);
    // The rest of the field is read as unquoted text below.
  }

  // An unquoted field: up to a comma or a line break.
  for (;;) {
    if (!src_.fill()) return end_field(FieldEnd::kRecordEnd);
    const char* p = src_.data();
    const size_t n = src_.available();
    size_t i = 0;
    while (i < n && !kUnquotedStops[static_cast<unsigned char>(p[i])]) ++i;
    keep<kKeep>(r, p, i);
    src_.advance(i);
    if (i == n) continue;

    const char stop = p[i];
    if (stop == '"') {
      set_fault(r, Fault::kStrayQuote, field_start);
      keep<kKeep>(r, "\"", 1);
      src_.advance(1);
      continue;
    }
    if (stop == ',') {
      src_.advance(1);
      return end_field(FieldEnd::kComma);
    }
    return end_record();
  }
}

std::string CsvReader::column_label(size_t i) const {
  if (i < names_.size()) return "column '" + names_[i] + "'";
  return "column " + std::to_string(i + 1);
}

std::string CsvReader::fault_message(const Record& r, uint64_t row_number) const {
  std::string prefix = row_prefix(row_number);
  if (r.too_long) return prefix + ": longer than " + std::to_string(kMaxRowBytes) + " bytes";
  std::string where = prefix + ", " + column_label(r.fault_field) + ": ";
  switch (r.fault) {
    case Fault::kUnterminated:
      return where + "unterminated quote opened on line " + std::to_string(r.quote_line);
    case Fault::kStrayQuote:
      return where + "stray quote in unquoted field (offset " + std::to_string(r.fault_offset) +
             ")";
    case Fault::kTextAfterQuote:
      return where + "text after closing quote (offset " + std::to_string(r.fault_offset) + ")";
    case Fault::kNone:
      break;
  }
  return {};
}

Status CsvReader::read_header() {
  skip_bom(src_);
  if (!read_record<true>(record_)) {
    if (!src_.error().empty()) return Status::io_error("reading the header: " + src_.error());
    return Status::invalid("empty file: no header row");
  }
  if (!src_.error().empty()) return Status::io_error("reading the header: " + src_.error());
  if (record_.too_long || record_.fault != Fault::kNone) {
    return Status::invalid(fault_message(record_, 0));
  }

  // Names: valid UTF-8, trimmed, not empty, no empty dotted part; the email column by name.
  bool have_email = false;
  for (size_t i = 0; i < record_.ends.size(); ++i) {
    std::string_view raw = record_.field(i);
    if (size_t bad = find_invalid_utf8(raw); bad != kNoInvalidByte) {
      return Status::invalid("header, column " + std::to_string(i + 1) + ": " +
                             utf8_error(raw, bad));
    }
    std::string name(trim(raw));
    if (name.empty()) {
      return Status::invalid("header, column " + std::to_string(i + 1) + ": empty name");
    }
    Column col{name, {}};
    if (lower_ascii(name) == "email") {
      if (have_email) {
        return Status::invalid("duplicate column '" + name + "' (columns " +
                               std::to_string(email_column_ + 1) + " and " + std::to_string(i + 1) +
                               ")");
      }
      have_email = true;
      email_column_ = i;
      col.path = {"email"};
    } else {
      size_t begin = 0;
      for (;;) {
        size_t dot = name.find('.', begin);
        std::string part = name.substr(begin, dot == std::string::npos ? dot : dot - begin);
        if (part.empty()) {
          return Status::invalid("column '" + name + "': empty part in dotted name");
        }
        col.path.push_back(std::move(part));
        if (col.path.size() > static_cast<size_t>(kMaxDataNesting)) {
          return Status::invalid("column '" + name.substr(0, 40) + "...': more than " +
                                 std::to_string(kMaxDataNesting) + " dotted parts");
        }
        if (dot == std::string::npos) break;
        begin = dot + 1;
      }
    }
    names_.push_back(name);
    columns_.push_back(std::move(col));
  }
  if (!have_email) return Status::invalid("no 'email' column in the header");

  // Each column's key path must be unique and must not be a prefix of another's ("a" is a value,
  // so "a.b" cannot make it an object). Headers are short: the quadratic check costs nothing.
  for (size_t i = 0; i < columns_.size(); ++i) {
    for (size_t j = 0; j < columns_.size(); ++j) {
      if (i == j) continue;
      const auto& a = columns_[i].path;
      const auto& b = columns_[j].path;
      if (a.size() > b.size() || !std::equal(a.begin(), a.end(), b.begin())) continue;
      if (a.size() == b.size()) {
        if (i > j) continue;
        return Status::invalid("duplicate column '" + columns_[j].name + "' (columns " +
                               std::to_string(i + 1) + " and " + std::to_string(j + 1) + ")");
      }
      return Status::invalid("columns '" + columns_[i].name + "' and '" + columns_[j].name +
                             "' conflict: '" + columns_[i].name +
                             "' cannot be both a value and an object");
    }
  }
  return Status::ok();
}

bool CsvReader::io_error_row(RecipientRow& row) {
  done_ = true;
  row = RecipientRow();
  row.row = rows_ + 1;
  row.line = line_;
  row.data = nlohmann::json::object();
  row.error = row_prefix(row.row) + ": read error: " + src_.error();
  return true;
}

bool CsvReader::next(RecipientRow& row) {
  if (done_) return false;
  bool got = read_record<true>(record_);
  if (!src_.error().empty()) return io_error_row(row);
  if (!got) {
    done_ = true;
    return false;
  }

  const Record& r = record_;
  ++rows_;
  row.row = rows_;
  row.line = r.line;
  row.email.clear();
  row.domain.clear();
  row.error.clear();
  row.data = nlohmann::json::object();

  // Structure, then every value's encoding, then the address.
  if (r.too_long || r.fault != Fault::kNone) {
    row.error = fault_message(r, rows_);
    return true;
  }
  if (r.ends.size() != columns_.size()) {
    row.error = row_prefix(rows_) + ": expected " + std::to_string(columns_.size()) +
                " fields, found " + std::to_string(r.ends.size());
    return true;
  }
  for (size_t i = 0; i < columns_.size(); ++i) {
    std::string_view value = r.field(i);
    if (size_t bad = find_invalid_utf8(value); bad != kNoInvalidByte) {
      row.error = row_prefix(rows_) + ", " + column_label(i) + ": " + utf8_error(value, bad);
      return true;
    }
  }
  row.error = check_address(check_, rows_, r.field(email_column_), row);
  if (!row.error.empty()) return true;

  // The data: the header checks made every intermediate key an object.
  for (size_t i = 0; i < columns_.size(); ++i) {
    const auto& path = columns_[i].path;
    std::string_view value = i == email_column_ ? trim(r.field(i)) : r.field(i);
    nlohmann::json* node = &row.data;
    for (size_t k = 0; k + 1 < path.size(); ++k) node = &(*node)[path[k]];
    (*node)[path.back()] = std::string(value);
  }
  return true;
}

void CsvReader::skip(uint64_t n) {
  for (uint64_t i = 0; i < n && !done_; ++i) {
    if (!read_record<false>(record_) || !src_.error().empty()) {
      // A read error is reported by the next call to next().
      if (src_.error().empty()) done_ = true;
      return;
    }
    ++rows_;
  }
}

// ---------------------------------------------------------------------------------------------
// JSON lines

class JsonLinesReader final : public RecipientReader {
 public:
  JsonLinesReader(int fd, AddressCheck check) : src_(fd), check_(std::move(check)) {
    skip_bom(src_);
  }

  bool next(RecipientRow& row) override;
  const std::vector<std::string>& columns() const override { return no_columns_; }
  void skip(uint64_t n) override;

 private:
  template <bool kKeep>
  bool read_line();
  bool io_error_row(RecipientRow& row);
  std::string row_error(RecipientRow& row);

  ByteSource src_;
  AddressCheck check_;
  const std::vector<std::string> no_columns_;
  std::string text_;  // the current line, without its LF
  bool blank_ = true;
  bool too_long_ = false;
  uint64_t line_ = 1;  // the line read next
  uint64_t rows_ = 0;
  bool done_ = false;
};

// Reads one physical line (its LF taken); false at the end of the file with nothing read or on
// a read error. Sets blank_ (only spaces, tabs and CR) and too_long_ (bytes not kept).
template <bool kKeep>
bool JsonLinesReader::read_line() {
  text_.clear();
  blank_ = true;
  too_long_ = false;
  bool any = false;
  for (;;) {
    if (!src_.fill()) return any && src_.error().empty();
    any = true;
    const char* p = src_.data();
    const size_t n = src_.available();
    const auto* nl = static_cast<const char*>(std::memchr(p, '\n', n));
    const size_t len = nl ? static_cast<size_t>(nl - p) : n;
    if (blank_) {
      for (size_t i = 0; i < len; ++i) {
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') {
          blank_ = false;
          break;
        }
      }
    }
    if constexpr (kKeep) {
      if (!too_long_ && text_.size() + len > kMaxRowBytes) {
        too_long_ = true;
        text_.clear();
      }
      if (!too_long_) text_.append(p, len);
    }
    src_.advance(nl ? len + 1 : len);
    if (nl) return true;
  }
}

bool JsonLinesReader::io_error_row(RecipientRow& row) {
  done_ = true;
  row = RecipientRow();
  row.row = rows_ + 1;
  row.line = line_;
  row.data = nlohmann::json::object();
  row.error = row_prefix(row.row) + ": read error: " + src_.error();
  return true;
}

// Parses text_ into row (data, email, domain); returns the row's error or "".
std::string JsonLinesReader::row_error(RecipientRow& row) {
  const std::string prefix = row_prefix(rows_);
  if (too_long_) return prefix + ": longer than " + std::to_string(kMaxRowBytes) + " bytes";

  // TODO: a million JSON lines take about 1.4 s, nearly all of it in nlohmann's parser (about
  // 1.2 s for the same lines alone); simdjson, which DESIGN.md names for hot parsing, would cut
  // it, but it is not among the installed packages yet.
  if (json_nesting_exceeds(text_, kMaxDataNesting)) {
    return prefix + ": nested deeper than " + std::to_string(kMaxDataNesting) + " levels";
  }
  nlohmann::json value;
  try {
    value = nlohmann::json::parse(text_);
  } catch (const nlohmann::json::exception& e) {
    if (size_t bad = find_invalid_utf8(text_); bad != kNoInvalidByte) {
      return prefix + ": " + utf8_error(text_, bad);
    }
    // nlohmann's messages start with "[json.exception.parse_error.101] ": keep what follows.
    std::string_view what = e.what();
    if (size_t close = what.find("] "); close != std::string_view::npos) {
      what.remove_prefix(close + 2);
    }
    return prefix + ": not valid JSON: " + std::string(what);
  }
  if (!value.is_object()) return prefix + ": not a JSON object";
  auto email = value.find("email");
  if (email == value.end()) return prefix + ": no \"email\" member";
  if (!email->is_string()) return prefix + ": \"email\" is not a string";

  std::string error = check_address(check_, rows_, email->get_ref<const std::string&>(), row);
  if (!error.empty()) return error;
  row.data = std::move(value);
  return {};
}

bool JsonLinesReader::next(RecipientRow& row) {
  if (done_) return false;
  for (;;) {
    const uint64_t line = line_;
    bool got = read_line<true>();
    if (!src_.error().empty()) return io_error_row(row);
    if (!got) {
      done_ = true;
      return false;
    }
    ++line_;
    if (blank_) continue;

    ++rows_;
    row.row = rows_;
    row.line = line;
    row.email.clear();
    row.domain.clear();
    row.data = nlohmann::json::object();
    row.error = row_error(row);
    if (!row.error.empty()) {
      row.email.clear();
      row.domain.clear();
      row.data = nlohmann::json::object();
    }
    return true;
  }
}

void JsonLinesReader::skip(uint64_t n) {
  uint64_t skipped = 0;
  while (skipped < n && !done_) {
    if (!read_line<false>()) {
      if (src_.error().empty()) done_ = true;
      return;
    }
    ++line_;
    if (!blank_) {
      ++skipped;
      ++rows_;
    }
  }
}

Result<ListFormat> format_of(const std::string& path) {
  std::string lower = lower_ascii(path);
  auto ends_with = [&](std::string_view suffix) {
    return lower.size() >= suffix.size() &&
           std::string_view(lower).substr(lower.size() - suffix.size()) == suffix;
  };
  if (ends_with(".csv")) return ListFormat::kCsv;
  if (ends_with(".jsonl") || ends_with(".ndjson") || ends_with(".json")) {
    return ListFormat::kJsonLines;
  }
  return Status::invalid("'" + path +
                         "': unknown list format (expected .csv, .jsonl, .ndjson or .json)");
}

}  // namespace

Result<std::unique_ptr<RecipientReader>> RecipientReader::open(const std::string& path,
                                                               AddressCheck check) {
  Result<ListFormat> format = format_of(path);
  if (!format.is_ok()) return format.status();
  return open(path, *format, std::move(check));
}

Result<std::unique_ptr<RecipientReader>> RecipientReader::open(const std::string& path,
                                                               ListFormat format,
                                                               AddressCheck check) {
  if (!check) return Status::invalid("no address check given");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    std::string why = std::strerror(err);
    if (err == ENOENT) return Status::not_found("cannot open '" + path + "': " + why);
    return Status::io_error("cannot open '" + path + "': " + why);
  }

  if (format == ListFormat::kJsonLines) {
    return std::unique_ptr<RecipientReader>(
        std::make_unique<JsonLinesReader>(fd, std::move(check)));
  }
  auto csv = std::make_unique<CsvReader>(fd, std::move(check));
  if (Status s = csv->read_header(); !s.is_ok()) return s;
  return std::unique_ptr<RecipientReader>(std::move(csv));
}

}  // namespace magnetic::campaign
