// Streaming reader of a campaign's recipient list: CSV (RFC 4180) or JSON lines.
//
// The file is read in chunks; only the current row is in memory, so a list of millions of
// rows costs the same memory as one of ten. Each row becomes a RecipientRow: its address
// (column/key "email", validated and normalized by mail::parse_address) and its template data.
//
// CSV: the first row is the header; a UTF-8 BOM is skipped; fields may be quoted with embedded
// commas, doubled quotes and line breaks (CRLF or LF); a column named "a.b" puts the value at
// data["a"]["b"]. Header names are trimmed; "email" is matched case-insensitively.
// JSON lines: one object per line with "email" and any other members as data; blank lines are
// skipped.
//
// A bad row never stops the reading: next() returns it with `error` set (row number, column
// and why: invalid address, wrong number of fields, bytes that are not UTF-8, not a JSON
// object, ...), and the caller reports it and goes on. Row numbers are 1-based data rows
// (the CSV header is row 0); `line` is the physical line where the row starts.
//
// Not thread-safe: one reader per thread.
#pragma once

#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/status.h"

namespace magnetic::campaign {

enum class ListFormat { kCsv, kJsonLines };

struct RecipientRow {
  uint64_t row = 0;     // 1-based data row number
  uint64_t line = 0;    // 1-based physical line where the row starts
  std::string email;    // normalized address (A-label domain); empty when error is set
  std::string domain;   // lower-case A-label domain of email
  nlohmann::json data;  // template data: every column but email (the email column is kept too,
                        // as data["email"], so templates can use {{email}})
  std::string error;    // non-empty: the row is invalid and says why
};

// Validates one address as written in the list; returns the normalized address
// ("local@a-label-domain") or an error saying why it is invalid.
using AddressCheck = std::function<Result<std::string>(std::string_view)>;

class RecipientReader {
 public:
  // Opens path. The format comes from the extension (.csv; .jsonl, .ndjson, .json).
  // For CSV the header row is read here: a missing header or no "email" column is an error.
  static Result<std::unique_ptr<RecipientReader>> open(const std::string& path, AddressCheck check);
  static Result<std::unique_ptr<RecipientReader>> open(const std::string& path, ListFormat format,
                                                       AddressCheck check);

  virtual ~RecipientReader() = default;

  // The file is read in chunks of this size.
  static constexpr size_t kReadBufferBytes = 64 * 1024;
  // A row longer than this (bytes of field values) comes back as an error row and its bytes are
  // not kept, so one stray quote cannot make the reader hold the rest of the file in memory.
  static constexpr size_t kMaxRowBytes = 1024 * 1024;

  // The next row, or false at the end of the file. I/O errors come back as a row with error set
  // and then end the reading.
  virtual bool next(RecipientRow& row) = 0;

  // CSV: the column names from the header row, as written. JSON lines: empty.
  virtual const std::vector<std::string>& columns() const = 0;

  // Skips the first n data rows without validating them (used by --resume). Called after some
  // next() calls it skips the n rows that follow. Quotes are honoured and empty lines are not
  // rows, exactly as in next(), so the row after a skip(n) from the start is row n + 1.
  virtual void skip(uint64_t n) = 0;
};

}  // namespace magnetic::campaign
