// The compiled form of a template: a tree of programs (statement lists) built once by the parser
// and read, never changed, by every render. Internal to the render module.
//
// Paths are split into segments at compile time (with array indexes pre-parsed), block
// parameters are resolved to (frame distance, index) pairs, and helper names are resolved to an
// enum, so a render does no string parsing and no name lookups beyond the data itself.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace magnetic::render::detail {

struct Program;

// One property name in a path. `index` is the name read as a JS array index (canonical
// decimal below 2^32 - 1), or -1.
struct Segment {
  std::string name;
  int64_t index = -1;
};

struct PathExpr {
  enum class Head : uint8_t {
    kContext,     // a.b, this.a, ../a
    kData,        // @index, @root.a, @../key
    kBlockParam,  // `item.a` inside `as |item|`
  };
  Head head = Head::kContext;
  int depth = 0;        // number of ../ (for kContext and kData)
  bool scoped = false;  // starts with this or ./ : never a helper, never a compat lookup
  int param_frame = 0;  // kBlockParam: how many declaring blocks out
  int param_index = 0;  // kBlockParam: which of that block's parameters
  std::vector<Segment> parts;
  std::string original;  // as written, e.g. "../a.b"
  int line = 0;
  int column = 0;
};

struct Call;

// A helper argument or hash value.
struct Expr {
  enum class Kind : uint8_t { kPath, kLiteral, kCall };
  Kind kind = Kind::kPath;
  PathExpr path;
  nlohmann::json literal;  // string, number, bool or null; a discarded json means undefined
  std::unique_ptr<Call> call;
};

struct HashPair {
  std::string key;
  Expr value;
};

// The head of a mustache or block: either a built-in helper with arguments, or a plain path.
struct Call {
  enum class Helper : uint8_t { kNone, kIf, kUnless, kEach, kWith, kLookup, kLog };
  Helper helper = Helper::kNone;
  PathExpr path;  // kNone: the value to print or the section to open
  std::vector<Expr> params;
  std::vector<HashPair> hash;
  int line = 0;
  int column = 0;
};

struct StripFlags {
  bool open = false;   // {{~
  bool close = false;  // ~}}
};

struct Node {
  enum class Kind : uint8_t {
    kContent,
    kComment,
    kMustache,
    kBlock,
    kPartial,
    kPartialBlock,
    kInline,
  };
  Kind kind = Kind::kContent;
  int line = 0;
  int column = 0;

  // kContent: `original` as lexed, `value` after whitespace control.
  std::string original;
  std::string value;
  bool left_stripped = false;
  bool right_stripped = false;

  StripFlags strip;                                   // kMustache, kComment, kPartial
  StripFlags open_strip, inverse_strip, close_strip;  // blocks
  bool has_inverse_strip = false;

  // kMustache, kBlock: what is called. kPartial/kPartialBlock: params[0] is the context and
  // hash the extra properties.
  Call call;
  bool escaped = true;  // kMustache: {{x}} rather than {{{x}}} or {{&x}}

  std::unique_ptr<Program> program;  // kBlock: the main body; kPartialBlock, kInline: the body
  std::unique_ptr<Program> inverse;  // kBlock: the {{else}} body

  // kPartial, kPartialBlock, kInline: the partial's name, or a subexpression giving it.
  std::string partial_name;
  std::unique_ptr<Expr> dynamic_name;
  std::string indent;  // standalone partial: written before each line of its output
};

struct InlinePartial {
  std::string name;
  const Program* body = nullptr;
};

struct Program {
  std::vector<Node> body;
  std::vector<std::string> block_params;  // as |a b|
  bool chained = false;                   // the inverse of a block holding an {{else x}} chain
  // {{#*inline}} definitions made directly in this program; they are visible while it runs.
  std::vector<InlinePartial> inlines;
  std::vector<std::unique_ptr<Program>> inline_storage;  // owns the bodies `inlines` points to
};

}  // namespace magnetic::render::detail
