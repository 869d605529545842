// JS value semantics for the renderer; see js_value.h. Numbers follow ECMAScript's
// Number::toString (shortest round-trip digits, exponent form below 1e-6 and from 1e21), which
// std::to_chars gives us the digits for.
#include "render/js_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace magnetic::render::detail {
namespace {

using nlohmann::json;

double json_number(const json& j) {
  if (j.is_number_integer() && !j.is_number_unsigned())
    return static_cast<double>(j.get<int64_t>());
  if (j.is_number_unsigned()) return static_cast<double>(j.get<uint64_t>());
  return j.get<double>();
}

// Number of UTF-16 code units in a UTF-8 string (JS String.length).
double utf16_length(std::string_view s) {
  double n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) n += 1;  // a lead byte starts a code point
    if (c >= 0xF0) n += 1;           // outside the BMP: a surrogate pair
  }
  return n;
}

bool is_js_space_ascii(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// StringToNumber for the ASCII forms that matter here: decimal, Infinity, 0x/0o/0b; the empty
// (or all-space) string is 0; anything else is NaN.
double string_to_number(std::string_view s) {
  while (!s.empty() && is_js_space_ascii(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_js_space_ascii(s.back())) s.remove_suffix(1);
  if (s.empty()) return 0;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (s.size() > 2 && s[0] == '0' &&
      (s[1] == 'x' || s[1] == 'X' || s[1] == 'o' || s[1] == 'O' || s[1] == 'b' || s[1] == 'B')) {
    int base = (s[1] == 'x' || s[1] == 'X') ? 16 : (s[1] == 'o' || s[1] == 'O') ? 8 : 2;
    double v = 0;
    for (char c : s.substr(2)) {
      int d = (c >= '0' && c <= '9')   ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                       : 99;
      if (d >= base) return nan;
      v = v * base + d;
    }
    return v;
  }
  std::string_view body = s;
  bool negative = false;
  if (body[0] == '+' || body[0] == '-') {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body == "Infinity") {
    return negative ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
  }
  // Digits, at most one point, an optional exponent; nothing else (strtod would also take
  // "inf", "nan" and hex floats, which JS does not).
  bool digits = false, point = false;
  size_t i = 0;
  for (; i < body.size(); ++i) {
    char c = body[i];
    if (c >= '0' && c <= '9') {
      digits = true;
    } else if (c == '.' && !point) {
      point = true;
    } else {
      break;
    }
  }
  if (!digits) return nan;
  if (i < body.size()) {
    if (body[i] != 'e' && body[i] != 'E') return nan;
    ++i;
    if (i < body.size() && (body[i] == '+' || body[i] == '-')) ++i;
    size_t exp_start = i;
    while (i < body.size() && body[i] >= '0' && body[i] <= '9') ++i;
    if (i == exp_start || i != body.size()) return nan;
  }
  std::string copy(s);
  return std::strtod(copy.c_str(), nullptr);
}

// ToPrimitive then ToNumber for a value that is not an object.
double primitive_to_number(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNumber:
      return v.number;
    case Value::Kind::kBool:
      return v.boolean ? 1 : 0;
    case Value::Kind::kString:
      return string_to_number(v.string);
    case Value::Kind::kJson:
      if (v.json->is_number()) return json_number(*v.json);
      if (v.json->is_boolean()) return v.json->get<bool>() ? 1 : 0;
      if (v.json->is_string()) return string_to_number(v.json->get_ref<const std::string&>());
      return 0;  // null
    default:
      return std::numeric_limits<double>::quiet_NaN();
  }
}

bool is_string(const Value& v) {
  return v.kind == Value::Kind::kString || (v.kind == Value::Kind::kJson && v.json->is_string());
}
std::string_view string_of(const Value& v) {
  return v.kind == Value::Kind::kString ? v.string
                                        : std::string_view(v.json->get_ref<const std::string&>());
}
bool is_number_like(const Value& v) {
  return v.kind == Value::Kind::kNumber || (v.kind == Value::Kind::kJson && v.json->is_number());
}
bool is_bool_like(const Value& v) {
  return v.kind == Value::Kind::kBool || (v.kind == Value::Kind::kJson && v.json->is_boolean());
}

const void* identity(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kJson:
      return v.json;
    case Value::Kind::kOverlay:
      return v.overlay;
    default:
      return nullptr;  // the null context: one object shared by all
  }
}

// Appends s unless that makes out longer than limit.
bool put(std::string_view s, std::string& out, size_t limit) {
  if (out.size() > limit || s.size() > limit - out.size()) return false;
  out.append(s);
  return true;
}

bool put_number(double d, std::string& out, size_t limit) {
  size_t before = out.size();
  append_js_number(d, out);  // a few dozen bytes at most: written, then taken back if too long
  if (out.size() <= limit) return true;
  out.resize(before);
  return false;
}

bool append_array(const json& arr, std::string& out, size_t limit) {
  bool first = true;
  for (const auto& item : arr) {
    if (!first && !put(",", out, limit)) return false;
    first = false;
    if (!append_output(Value::of(item), out, limit)) return false;
  }
  return true;
}

// ToNumber(String(array)) without building the string: two or more elements put a comma in
// it, which makes it NaN, so only a chain of one-element arrays down to a scalar can give a
// number. Adds the arrays and string bytes read to `work`.
double array_to_number(const json& arr, size_t& work) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const json* j = &arr;
  while (j->is_array()) {
    ++work;
    if (j->empty()) return 0;  // ""
    if (j->size() > 1) return nan;
    j = &(*j)[0];
  }
  switch (j->type()) {
    case json::value_t::null:
      return 0;  // an element that is null joins as ""
    case json::value_t::string:
      work += j->get_ref<const std::string&>().size();
      return string_to_number(j->get_ref<const std::string&>());
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return json_number(*j);  // String() of a number reads back as the same number
    default:
      return nan;  // "true", "false", "[object Object]", "undefined"
  }
}

// "abc".length and "abc"[i]. An index inside a character outside the BMP names half of a
// surrogate pair in JS, which Node writes out as U+FFFD.
Value string_property(std::string_view s, std::string_view key, int64_t index, size_t& work) {
  if (key == "length") {
    work += s.size();
    return Value::of_number(utf16_length(s));
  }
  if (index < 0) return Value();
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  int64_t unit = 0;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    len = std::min(len, s.size() - i);
    int64_t units = len == 4 ? 2 : 1;
    if (index < unit + units) {
      work += i;
      return Value::of_string(units == 2 ? kReplacement : s.substr(i, len));
    }
    unit += units;
    i += len;
  }
  work += s.size();
  return Value();
}

}  // namespace

bool truthy(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kNumber:
      return v.number != 0 && !std::isnan(v.number);
    case Value::Kind::kBool:
      return v.boolean;
    case Value::Kind::kString:
      return !v.string.empty();
    case Value::Kind::kNullContext:
    case Value::Kind::kOverlay:
      return true;
    case Value::Kind::kJson:
      switch (v.json->type()) {
        case json::value_t::null:
        case json::value_t::discarded:
          return false;
        case json::value_t::boolean:
          return v.json->get<bool>();
        case json::value_t::string:
          return !v.json->get_ref<const std::string&>().empty();
        case json::value_t::number_integer:
        case json::value_t::number_unsigned:
        case json::value_t::number_float: {
          double d = json_number(*v.json);
          return d != 0 && !std::isnan(d);
        }
        default:
          return true;  // objects, arrays, binary
      }
  }
  return false;
}

bool is_empty(const Value& v) {
  if (!truthy(v)) return !(is_number_like(v) && primitive_to_number(v) == 0);
  return v.is_array() && v.json->empty();
}

void append_js_number(double d, std::string& out) {
  if (std::isnan(d)) {
    out += "NaN";
    return;
  }
  if (std::isinf(d)) {
    out += d < 0 ? "-Infinity" : "Infinity";
    return;
  }
  if (d == 0) {  // also -0
    out.push_back('0');
    return;
  }
  if (d < 0) {
    out.push_back('-');
    d = -d;
  }

  // Shortest round-trip digits in scientific form: "d[.ddd]e[+-]xx".
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  size_t e_pos = sci.find('e');
  char digits[32];
  int k = 0;
  for (size_t i = 0; i < e_pos; ++i) {
    if (sci[i] != '.') digits[k++] = sci[i];
  }
  int exponent = 0;
  std::from_chars(sci.data() + e_pos + (sci[e_pos + 1] == '+' ? 2 : 1), sci.data() + sci.size(),
                  exponent);
  int n = exponent + 1;  // the decimal point sits after n digits

  if (k <= n && n <= 21) {
    out.append(digits, static_cast<size_t>(k));
    out.append(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out.append(digits, static_cast<size_t>(n));
    out.push_back('.');
    out.append(digits + n, static_cast<size_t>(k - n));
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-n), '0');
    out.append(digits, static_cast<size_t>(k));
  } else {
    out.push_back(digits[0]);
    if (k > 1) {
      out.push_back('.');
      out.append(digits + 1, static_cast<size_t>(k - 1));
    }
    out.push_back('e');
    out.push_back(n - 1 < 0 ? '-' : '+');
    out += std::to_string(std::abs(n - 1));
  }
}

bool append_output(const Value& v, std::string& out, size_t limit) {
  if (v.is_nullish()) return true;
  return append_js_string(v, out, limit);
}

bool append_js_string(const Value& v, std::string& out, size_t limit) {
  switch (v.kind) {
    case Value::Kind::kUndefined:
      return put("undefined", out, limit);
    case Value::Kind::kNumber:
      return put_number(v.number, out, limit);
    case Value::Kind::kBool:
      return put(v.boolean ? "true" : "false", out, limit);
    case Value::Kind::kString:
      return put(v.string, out, limit);
    case Value::Kind::kNullContext:
    case Value::Kind::kOverlay:
      return put("[object Object]", out, limit);
    case Value::Kind::kJson:
      break;
  }
  const json& j = *v.json;
  switch (j.type()) {
    case json::value_t::null:
      return put("null", out, limit);
    case json::value_t::boolean:
      return put(j.get<bool>() ? "true" : "false", out, limit);
    case json::value_t::string:
      return put(j.get_ref<const std::string&>(), out, limit);
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return put_number(json_number(j), out, limit);
    case json::value_t::array:
      return append_array(j, out, limit);
    case json::value_t::discarded:
      return put("undefined", out, limit);
    default:
      return put("[object Object]", out, limit);
  }
}

bool loose_equal(const Value& a, const Value& b, size_t& work) {
  // null and undefined equal each other and nothing else.
  if (a.is_nullish() || b.is_nullish()) return a.is_nullish() && b.is_nullish();

  bool a_obj = a.is_object_like(), b_obj = b.is_object_like();
  if (a_obj && b_obj) return a.kind == b.kind && identity(a) == identity(b);
  if (a_obj || b_obj) {
    // ToPrimitive(object) is its String(); compare that with the primitive.
    const Value& obj = a_obj ? a : b;
    const Value& prim = a_obj ? b : a;
    if (is_string(prim)) {
      // A String() longer than the primitive cannot equal it: build no more than one byte past.
      std::string_view p = string_of(prim);
      std::string s;
      bool whole = append_js_string(obj, s, p.size());
      if (obj.is_array()) work += s.size();
      return whole && s == p;
    }
    if (obj.is_array()) return array_to_number(*obj.json, work) == primitive_to_number(prim);
    return false;  // "[object Object]" is NaN, equal to no number
  }
  if (is_string(a) && is_string(b)) {
    std::string_view sa = string_of(a), sb = string_of(b);
    if (sa.size() != sb.size()) return false;
    work += sa.size();
    return sa == sb;
  }
  if (is_string(a)) work += string_of(a).size();
  if (is_string(b)) work += string_of(b).size();
  if (is_bool_like(a) && is_bool_like(b)) return primitive_to_number(a) == primitive_to_number(b);
  return primitive_to_number(a) == primitive_to_number(b);
}

int64_t array_index(std::string_view key) {
  if (key.empty() || key.size() > 10) return -1;
  if (key.size() > 1 && key[0] == '0') return -1;
  int64_t v = 0;
  for (char c : key) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v < 4294967295LL ? v : -1;
}

Value property(const Value& parent, std::string_view key, int64_t index, size_t& work) {
  switch (parent.kind) {
    case Value::Kind::kJson: {
      const json& j = *parent.json;
      if (j.is_object()) {
        auto it = j.find(key);
        return it == j.end() ? Value() : Value::of(*it);
      }
      if (j.is_array()) {
        if (index >= 0 && static_cast<size_t>(index) < j.size()) {
          return Value::of(j[static_cast<size_t>(index)]);
        }
        if (key == "length") return Value::of_number(static_cast<double>(j.size()));
        return Value();
      }
      if (j.is_string()) {
        return string_property(j.get_ref<const std::string&>(), key, index, work);
      }
      return Value();
    }
    case Value::Kind::kString:
      return string_property(parent.string, key, index, work);
    case Value::Kind::kOverlay: {
      const auto& hash = parent.overlay->hash;
      for (auto it = hash.rbegin(); it != hash.rend(); ++it) {
        if (it->first == key) return it->second;
      }
      return property(parent.overlay->base, key, index, work);
    }
    default:
      return Value();  // numbers, booleans, the null context: no own properties
  }
}

void object_key_order(const json& object, std::vector<json::const_iterator>& order) {
  order.clear();
  order.reserve(object.size());
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (array_index(it.key()) >= 0) order.push_back(it);
  }
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return array_index(a.key()) < array_index(b.key());
  });
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (array_index(it.key()) < 0) order.push_back(it);
  }
}

}  // namespace magnetic::render::detail

namespace magnetic::render::detail {

size_t js_space_at(std::string_view s, size_t i) {
  if (i >= s.size()) return 0;
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return is_js_space_ascii(static_cast<char>(c)) ? 1 : 0;
  auto at = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0; };
  if (c == 0xC2 && at(1) == 0xA0) return 2;
  if (c == 0xE1 && at(1) == 0x9A && at(2) == 0x80) return 3;
  if (c == 0xE2 && at(1) == 0x80 &&
      ((at(2) >= 0x80 && at(2) <= 0x8A) || at(2) == 0xA8 || at(2) == 0xA9 || at(2) == 0xAF))
    return 3;
  if (c == 0xE2 && at(1) == 0x81 && at(2) == 0x9F) return 3;
  if (c == 0xE3 && at(1) == 0x80 && at(2) == 0x80) return 3;
  if (c == 0xEF && at(1) == 0xBB && at(2) == 0xBF) return 3;
  return 0;
}

size_t js_space_before(std::string_view s, size_t end) {
  if (end == 0) return 0;
  if (static_cast<unsigned char>(s[end - 1]) < 0x80) {
    return is_js_space_ascii(s[end - 1]) ? 1 : 0;
  }
  for (size_t len = 2; len <= 3 && len <= end; ++len) {
    if (js_space_at(s, end - len) == len) return len;
  }
  return 0;
}

}  // namespace magnetic::render::detail
