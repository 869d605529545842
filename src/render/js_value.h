// JavaScript value semantics over nlohmann::json, as handlebars.js applies them: String() of
// values (JS number formatting, comma-joined arrays, "[object Object]"), truthiness and
// Handlebars' isEmpty, loose equality (==) for its context-stack rule, Object.keys order and
// own-property lookup. Internal to the render module.
//
// The functions whose cost grows with the data rather than with the template (a comparison that
// turns an array into a string, `.length` or `[i]` of a long string) add what they read to a
// `work` counter, which the renderer charges to its step limit: otherwise a template could loop
// over cheap steps that each read a large value, with no output to stop it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace magnetic::render::detail {

struct Overlay;

// A value seen by a template: a node of the caller's data or of the template's literals, or a
// value made during the render (@index, length, a partial's merged context). Cheap to copy; it
// never owns what it points to.
struct Value {
  enum class Kind : uint8_t {
    kUndefined,
    kJson,         // json (possibly a json null)
    kNumber,       // @index, array length
    kBool,         // @first, @last
    kString,       // @key of an object
    kNullContext,  // handlebars' sealed {} that helpers get as `this` for a null context
    kOverlay,      // a partial's context with hash arguments merged in
  };
  Kind kind = Kind::kUndefined;
  bool boolean = false;
  double number = 0;
  std::string_view string;
  const nlohmann::json* json = nullptr;
  const Overlay* overlay = nullptr;

  static Value of(const nlohmann::json& j) {
    Value v;
    v.kind = Kind::kJson;
    v.json = &j;
    return v;
  }
  static Value of_number(double d) {
    Value v;
    v.kind = Kind::kNumber;
    v.number = d;
    return v;
  }
  static Value of_bool(bool b) {
    Value v;
    v.kind = Kind::kBool;
    v.boolean = b;
    return v;
  }
  static Value of_string(std::string_view s) {
    Value v;
    v.kind = Kind::kString;
    v.string = s;
    return v;
  }
  static Value null_context() {
    Value v;
    v.kind = Kind::kNullContext;
    return v;
  }

  bool is_undefined() const { return kind == Kind::kUndefined; }
  bool is_json_null() const { return kind == Kind::kJson && json->is_null(); }
  bool is_nullish() const { return is_undefined() || is_json_null(); }  // JS `== null`
  bool is_array() const { return kind == Kind::kJson && json->is_array(); }
  // typeof value === 'object' && value !== null
  bool is_object_like() const {
    return kind == Kind::kNullContext || kind == Kind::kOverlay ||
           (kind == Kind::kJson && (json->is_object() || json->is_array()));
  }
};

// A partial's context `{{> p ctx a=1}}`: Object.assign({}, ctx, {a: 1}).
struct Overlay {
  Value base;
  std::vector<std::pair<std::string_view, Value>> hash;
};

// JS truthiness (!!value).
bool truthy(const Value& v);
// Handlebars' Utils.isEmpty: falsy but not 0, or an empty array.
bool is_empty(const Value& v);

// No bound on the size of `out` below.
inline constexpr size_t kNoLimit = std::numeric_limits<size_t>::max();

// Appends what `{{value}}` writes before escaping: nothing for null and undefined, else
// String(value). Returns false when that would make `out` longer than `limit` bytes; `out` then
// holds part of it, never more than `limit` bytes.
bool append_output(const Value& v, std::string& out, size_t limit = kNoLimit);
// Appends String(value) ("null", "undefined" included), as JS does for a property key. `limit`
// as for append_output.
bool append_js_string(const Value& v, std::string& out, size_t limit = kNoLimit);
// Appends a number as JS Number.prototype.toString() writes it.
void append_js_number(double d, std::string& out);

// JS `a == b` with objects compared by identity. Adds to `work` the array elements and string
// bytes the comparison reads.
bool loose_equal(const Value& a, const Value& b, size_t& work);

// lookupProperty(parent, key): own properties only (handlebars' default prototype rules).
// `index` is `key` read as an array index, or -1. Adds to `work` the bytes of a string it scans
// (for `length` and indexes of strings).
Value property(const Value& parent, std::string_view key, int64_t index, size_t& work);

// `key` read as a canonical JS array index, or -1.
int64_t array_index(std::string_view key);

// Calls f(key_value, item_value) for each entry as handlebars' #each visits it: array elements
// in order (key is the index), or Object.keys() order for objects. Returns false as soon as f
// does.
template <typename F>
bool for_each_entry(const Value& v, F&& f);

// Object.keys order of a json object: array-index keys ascending, then the rest in the order
// the json holds them.
// TODO: #each over an object visits non-index keys sorted, not in insertion order as
// handlebars.js does, because nlohmann::json keeps keys in a std::map; honouring the order needs
// a render overload taking nlohmann::ordered_json, and callers that parse with it.
void object_key_order(const nlohmann::json& object,
                      std::vector<nlohmann::json::const_iterator>& order);

template <typename F>
bool for_each_entry(const Value& v, F&& f) {
  if (v.kind == Value::Kind::kJson && v.json->is_array()) {
    const auto& arr = *v.json;
    for (size_t i = 0; i < arr.size(); ++i) {
      if (!f(Value::of_number(static_cast<double>(i)), Value::of(arr[i]), i, i + 1 == arr.size()))
        return false;
    }
    return true;
  }
  if (v.kind == Value::Kind::kJson && v.json->is_object()) {
    const auto& obj = *v.json;
    // Only keys that look like array indexes change the order; most objects have none.
    bool has_index_key = false;
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      if (array_index(it.key()) >= 0) {
        has_index_key = true;
        break;
      }
    }
    size_t i = 0, n = obj.size();
    if (!has_index_key) {
      for (auto it = obj.begin(); it != obj.end(); ++it, ++i) {
        if (!f(Value::of_string(it.key()), Value::of(it.value()), i, i + 1 == n)) return false;
      }
      return true;
    }
    std::vector<nlohmann::json::const_iterator> order;
    object_key_order(obj, order);
    for (const auto& it : order) {
      if (!f(Value::of_string(it.key()), Value::of(it.value()), i, i + 1 == n)) return false;
      ++i;
    }
    return true;
  }
  if (v.kind == Value::Kind::kOverlay) {
    // Object.assign order: the base's keys (with hash values where a hash key repeats one),
    // then the hash keys that are new. The base's keys are distinct already, so only the hash
    // keys (as many as the template wrote) are looked for: a large base costs its size times
    // their number, not its size squared.
    std::vector<std::pair<std::string_view, Value>> entries;
    const Value& base = v.overlay->base;
    if (base.kind == Value::Kind::kJson && base.json->is_object()) {
      std::vector<nlohmann::json::const_iterator> order;
      object_key_order(*base.json, order);
      entries.reserve(order.size() + v.overlay->hash.size());
      for (const auto& it : order) entries.emplace_back(it.key(), Value::of(it.value()));
    }
    for (const auto& h : v.overlay->hash) {
      auto same = std::find_if(entries.begin(), entries.end(),
                               [&](const auto& e) { return e.first == h.first; });
      if (same != entries.end()) {
        same->second = h.second;
      } else {
        entries.emplace_back(h.first, h.second);
      }
    }
    for (size_t i = 0; i < entries.size(); ++i) {
      if (!f(Value::of_string(entries[i].first), entries[i].second, i, i + 1 == entries.size()))
        return false;
    }
    return true;
  }
  return true;
}

}  // namespace magnetic::render::detail

namespace magnetic::render::detail {

// Length in bytes of the JS whitespace character (\s) starting at s[i], or 0. Covers the ASCII
// spaces and the Unicode ones JS adds (U+00A0, U+1680, U+2000-200A, U+2028/9, U+202F, U+205F,
// U+3000, U+FEFF) in UTF-8.
size_t js_space_at(std::string_view s, size_t i);
// Length in bytes of the JS whitespace character ending just before s[end], or 0.
size_t js_space_before(std::string_view s, size_t end);

}  // namespace magnetic::render::detail
