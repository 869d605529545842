// Internal to api/: reading a JSON request body the way the SES v2 model describes it.
//
// Every member is checked for its type and limits as it is read; required members must be
// there; members the handler did not read are refused when the object is closed (finish()), so
// a misspelt or unsupported field is never dropped in silence. The first problem wins: it is kept
// as a BadRequestException naming the field by its path ("Content.Simple.Subject.Data",
// "BulkEmailEntries[3].Destination"), and every read after it returns nothing. A JSON null
// counts as an absent member (no SDK sends one).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "api/errors.h"

namespace magnetic::api {

struct ReadState {
  std::optional<ApiError> error;
  void fail(std::string message) {
    if (!error) error = bad_request(std::move(message));
  }
};

enum class Need { kOptional, kRequired };

class JsonArray;

class JsonObject {
 public:
  // A view of object (which must outlive this) at path; a non-object fails the read.
  JsonObject(const nlohmann::json* object, std::string path, std::shared_ptr<ReadState> state);

  bool ok() const { return !state_->error; }
  const std::shared_ptr<ReadState>& state() const { return state_; }
  const std::string& path() const { return path_; }
  std::string field(std::string_view key) const;  // the path of a member
  bool has(std::string_view key) const;           // present and not null (does not mark read)

  // Strings: lengths in bytes of UTF-8; a string with invalid UTF-8 fails.
  std::optional<std::string> string(std::string_view key, Need need = Need::kOptional,
                                    size_t min_length = 0, size_t max_length = SIZE_MAX);
  // One of the given values.
  std::optional<std::string> enumeration(std::string_view key,
                                         std::initializer_list<std::string_view> values,
                                         Need need = Need::kOptional);
  std::optional<bool> boolean(std::string_view key, Need need = Need::kOptional);
  std::optional<int64_t> integer(std::string_view key, Need need, int64_t min, int64_t max);
  // A blob: standard base64 text (padding optional), returned decoded.
  std::optional<std::string> blob(std::string_view key, Need need = Need::kOptional);
  // Epoch seconds (a JSON number), returned in milliseconds.
  std::optional<int64_t> timestamp_ms(std::string_view key, Need need = Need::kOptional);
  std::optional<JsonObject> object(std::string_view key, Need need = Need::kOptional);
  std::optional<JsonArray> array(std::string_view key, Need need = Need::kOptional,
                                 size_t min_items = 0, size_t max_items = SIZE_MAX);
  // The member as it is, for handlers that store a group whole (marked read).
  const nlohmann::json* raw(std::string_view key);

  // Refuses members that were not read: "Unknown field <path>" (or, when `unsupported` names
  // the member, "<path> is not supported by this service").
  void finish(std::initializer_list<std::string_view> unsupported = {});

 private:
  const nlohmann::json* member(std::string_view key, Need need);

  const nlohmann::json* object_;
  std::string path_;
  std::shared_ptr<ReadState> state_;
  std::set<std::string, std::less<>> read_;
};

class JsonArray {
 public:
  JsonArray(const nlohmann::json* array, std::string path, std::shared_ptr<ReadState> state)
      : array_(array), path_(std::move(path)), state_(std::move(state)) {}
  size_t size() const { return array_->size(); }
  std::string item_path(size_t i) const { return path_ + "[" + std::to_string(i) + "]"; }
  std::optional<std::string> string(size_t i, size_t max_length = SIZE_MAX);
  std::optional<JsonObject> object(size_t i);
  // All items as strings (nullopt when one is not).
  std::optional<std::vector<std::string>> strings(size_t max_length = SIZE_MAX);

 private:
  const nlohmann::json* array_;
  std::string path_;
  std::shared_ptr<ReadState> state_;
};

// Parses a request body. An empty body is an empty object (SDKs send none for operations
// without body members). Not JSON, not an object, or nested deeper than 64: BadRequestException.
struct ParsedBody {
  nlohmann::json json;
  std::optional<ApiError> error;
};
ParsedBody parse_body(std::string_view body);

// Strict standard base64 (RFC 4648 section 4), padding optional; nullopt when malformed.
std::optional<std::string> base64_decode(std::string_view text);
std::string base64_encode(std::string_view bytes);

// True when s is valid UTF-8.
bool valid_utf8(std::string_view s);

}  // namespace magnetic::api
