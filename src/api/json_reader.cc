#include "api/json_reader.h"

#include <cmath>
#include <cstring>

#include "base/json_depth.h"

namespace magnetic::api {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

const char* type_name(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::array:
      return "a list";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      return "a number";
    default:
      return "null";
  }
}

}  // namespace

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
    for (size_t k = 1; k < n; ++k) {
      auto d = static_cast<unsigned char>(s[i + k]);
      if ((d >> 6) != 2) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    // Overlong forms, surrogates and values beyond U+10FFFF are not UTF-8.
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n;
  }
  return true;
}

std::optional<std::string> base64_decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    const char* at = c ? std::strchr(kAlphabet, c) : nullptr;
    if (!at) return std::nullopt;
    buffer = (buffer << 6) | static_cast<uint32_t>(at - kAlphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                 (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                 static_cast<unsigned char>(bytes[i + 2]);
    out.push_back(kAlphabet[v >> 18]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  if (size_t rest = bytes.size() - i; rest > 0) {
    uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out.push_back(kAlphabet[v >> 18]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

ParsedBody parse_body(std::string_view body) {
  ParsedBody out;
  size_t first = body.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) {
    out.json = nlohmann::json::object();
    return out;
  }
  if (json_nesting_exceeds(body, kMaxDataNesting)) {
    out.error = bad_request("The request body nests deeper than " +
                            std::to_string(kMaxDataNesting) + " levels.");
    return out;
  }
  out.json = nlohmann::json::parse(body, nullptr, false);
  if (out.json.is_discarded()) {
    out.error = bad_request("The request body is not valid JSON.");
  } else if (!out.json.is_object()) {
    out.error = bad_request("The request body must be a JSON object.");
  }
  return out;
}

JsonObject::JsonObject(const nlohmann::json* object, std::string path,
                       std::shared_ptr<ReadState> state)
    : object_(object), path_(std::move(path)), state_(std::move(state)) {
  if (!object_->is_object()) {
    state_->fail((path_.empty() ? std::string("The request body") : path_) +
                 " must be an object, not " + type_name(*object_) + ".");
  }
}

std::string JsonObject::field(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

bool JsonObject::has(std::string_view key) const {
  if (!object_->is_object()) return false;
  auto it = object_->find(key);
  return it != object_->end() && !it->is_null();
}

const nlohmann::json* JsonObject::member(std::string_view key, Need need) {
  read_.emplace(key);
  if (!ok() || !object_->is_object()) return nullptr;
  auto it = object_->find(key);
  if (it == object_->end() || it->is_null()) {
    if (need == Need::kRequired) state_->fail("Missing required field " + field(key) + ".");
    return nullptr;
  }
  return &*it;
}

std::optional<std::string> JsonObject::string(std::string_view key, Need need, size_t min_length,
                                              size_t max_length) {
  const nlohmann::json* v = member(key, need);
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    state_->fail(field(key) + " must be a string, not " + type_name(*v) + ".");
    return std::nullopt;
  }
  const std::string& s = v->get_ref<const std::string&>();
  if (!valid_utf8(s)) {
    state_->fail(field(key) + " is not valid UTF-8.");
    return std::nullopt;
  }
  if (s.size() < min_length) {
    state_->fail(field(key) + (min_length == 1 ? " must not be empty."
                                               : " must be at least " + std::to_string(min_length) +
                                                     " characters long."));
    return std::nullopt;
  }
  if (s.size() > max_length) {
    state_->fail(field(key) + " must be at most " + std::to_string(max_length) +
                 " characters long.");
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> JsonObject::enumeration(std::string_view key,
                                                   std::initializer_list<std::string_view> values,
                                                   Need need) {
  std::optional<std::string> s = string(key, need);
  if (!s) return std::nullopt;
  for (std::string_view v : values) {
    if (*s == v) return s;
  }
  std::string list;
  for (std::string_view v : values) {
    if (!list.empty()) list += ", ";
    list += v;
  }
  state_->fail(field(key) + " must be one of " + list + "; got '" + *s + "'.");
  return std::nullopt;
}

std::optional<bool> JsonObject::boolean(std::string_view key, Need need) {
  const nlohmann::json* v = member(key, need);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) {
    state_->fail(field(key) + " must be a boolean, not " + type_name(*v) + ".");
    return std::nullopt;
  }
  return v->get<bool>();
}

std::optional<int64_t> JsonObject::integer(std::string_view key, Need need, int64_t min,
                                           int64_t max) {
  const nlohmann::json* v = member(key, need);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) {
    state_->fail(field(key) + " must be an integer, not " + type_name(*v) + ".");
    return std::nullopt;
  }
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    state_->fail(field(key) + " must be at most " + std::to_string(max) + ".");
    return std::nullopt;
  }
  int64_t n = v->get<int64_t>();
  if (n < min || n > max) {
    state_->fail(field(key) + " must be between " + std::to_string(min) + " and " +
                 std::to_string(max) + "; got " + std::to_string(n) + ".");
    return std::nullopt;
  }
  return n;
}

std::optional<std::string> JsonObject::blob(std::string_view key, Need need) {
  const nlohmann::json* v = member(key, need);
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    state_->fail(field(key) + " must be a base64 string, not " + type_name(*v) + ".");
    return std::nullopt;
  }
  std::optional<std::string> bytes = base64_decode(v->get_ref<const std::string&>());
  if (!bytes) state_->fail(field(key) + " is not valid base64.");
  return bytes;
}

std::optional<int64_t> JsonObject::timestamp_ms(std::string_view key, Need need) {
  const nlohmann::json* v = member(key, need);
  if (!v) return std::nullopt;
  if (!v->is_number()) {
    state_->fail(field(key) + " must be a timestamp in epoch seconds, not " + type_name(*v) + ".");
    return std::nullopt;
  }
  double seconds = v->get<double>();
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 253402300799.0) {
    state_->fail(field(key) + " is not a timestamp between 1970 and 9999.");
    return std::nullopt;
  }
  return static_cast<int64_t>(std::llround(seconds * 1000));
}

std::optional<JsonObject> JsonObject::object(std::string_view key, Need need) {
  const nlohmann::json* v = member(key, need);
  if (!v) return std::nullopt;
  JsonObject o(v, field(key), state_);
  if (!o.ok()) return std::nullopt;
  return o;
}

std::optional<JsonArray> JsonObject::array(std::string_view key, Need need, size_t min_items,
                                           size_t max_items) {
  const nlohmann::json* v = member(key, need);
  if (!v) return std::nullopt;
  if (!v->is_array()) {
    state_->fail(field(key) + " must be a list, not " + type_name(*v) + ".");
    return std::nullopt;
  }
  if (v->size() < min_items) {
    state_->fail(field(key) + " must have at least " + std::to_string(min_items) +
                 (min_items == 1 ? " item." : " items."));
    return std::nullopt;
  }
  if (v->size() > max_items) {
    state_->fail(field(key) + " must have at most " + std::to_string(max_items) + " items; got " +
                 std::to_string(v->size()) + ".");
    return std::nullopt;
  }
  return JsonArray(v, field(key), state_);
}

const nlohmann::json* JsonObject::raw(std::string_view key) { return member(key, Need::kOptional); }

void JsonObject::finish(std::initializer_list<std::string_view> unsupported) {
  if (!ok() || !object_->is_object()) return;
  for (const auto& [key, value] : object_->items()) {
    if (read_.count(key) || value.is_null()) continue;
    for (std::string_view u : unsupported) {
      if (key == u) {
        state_->fail(field(key) + " is not supported by this service.");
        return;
      }
    }
    state_->fail("Unknown field " + field(key) + ".");
    return;
  }
}

std::optional<std::string> JsonArray::string(size_t i, size_t max_length) {
  if (state_->error) return std::nullopt;
  const nlohmann::json& v = (*array_)[i];
  if (!v.is_string()) {
    state_->fail(item_path(i) + " must be a string, not " + type_name(v) + ".");
    return std::nullopt;
  }
  const std::string& s = v.get_ref<const std::string&>();
  if (!valid_utf8(s)) {
    state_->fail(item_path(i) + " is not valid UTF-8.");
    return std::nullopt;
  }
  if (s.size() > max_length) {
    state_->fail(item_path(i) + " must be at most " + std::to_string(max_length) +
                 " characters long.");
    return std::nullopt;
  }
  return s;
}

std::optional<JsonObject> JsonArray::object(size_t i) {
  if (state_->error) return std::nullopt;
  JsonObject o(&(*array_)[i], item_path(i), state_);
  if (!o.ok()) return std::nullopt;
  return o;
}

std::optional<std::vector<std::string>> JsonArray::strings(size_t max_length) {
  std::vector<std::string> out;
  for (size_t i = 0; i < size(); ++i) {
    std::optional<std::string> s = string(i, max_length);
    if (!s) return std::nullopt;
    out.push_back(std::move(*s));
  }
  return out;
}

}  // namespace magnetic::api
