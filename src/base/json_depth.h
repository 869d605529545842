// A guard before parsing JSON that comes from users: nlohmann::json builds, copies and frees
// values recursively, so a 200 KB line of nested brackets would overflow the stack. Counting the
// nesting first, by hand, costs one pass over bytes already in memory.
#pragma once

#include <string_view>

namespace magnetic {

// True when arrays and objects in text nest deeper than max_depth (brackets inside strings do
// not count). Malformed text is left to the parser to report.
inline bool json_nesting_exceeds(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

// How deep recipient data may nest: far beyond what a template reads, far below the stack.
constexpr int kMaxDataNesting = 64;

}  // namespace magnetic
