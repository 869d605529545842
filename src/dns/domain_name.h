// Internal to dns/: the checks that routes and resolve() share on domain and host names.
#pragma once

#include <cctype>
#include <string>
#include <string_view>

namespace magnetic::dns {

inline std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A name as DNS carries it: labels of 1 to 63 letters, digits, '-' or '_' (the underscore
// appears in real host names although RFC 952 forbids it), 253 characters at most, no empty
// label. IDN must arrive as A-labels, so any other byte is an error.
inline bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    if (++label > 63) return false;
  }
  return label > 0;
}

}  // namespace magnetic::dns
