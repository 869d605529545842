// Parser: handlebars.js 4.x syntax, rebuilt by hand (no Handlebars parser is packaged for C++).
//
// Strategy: one pass of a lexer that follows handlebars' own lexer rule for rule (content, the
// `\{{` escape states, the tag openers in the same order, IDs ending only where its lookahead
// allows), then recursive descent over the tokens for its grammar (blocks, {{else}} and
// {{else x}} chains built as nested blocks the way its parser builds them), then its
// whitespace-control pass over each statement list: `~` strips, and tags alone on a line
// (blocks, {{else}}, comments, partials) take their line with them. Standalone partials remember
// their indentation. Last, the tree is trimmed for rendering (comments and empty text dropped,
// inline partials hoisted into their program) and the root variables are collected.
//
// Helper calls are checked here rather than at render time: only the built-in helpers exist, so
// an unknown helper, a wrong argument count or a helper used where it cannot work is a compile
// error with its position (handlebars.js throws these when the tag is rendered).
#include "render/parser.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include "render/js_value.h"

namespace magnetic::render::detail {
namespace {

// Deeper nesting (blocks in blocks, subexpressions in subexpressions) is refused so that a
// hostile template cannot exhaust the stack of the parser or the renderer.
constexpr int kMaxNesting = 200;

enum class T : uint8_t {
  kContent,
  kComment,
  kOpen,              // {{  {{&  {{*
  kOpenUnescaped,     // {{{
  kOpenBlock,         // {{#  {{#*
  kOpenEndBlock,      // {{/
  kOpenInverse,       // {{^x
  kOpenInverseChain,  // {{else x
  kInverse,           // {{^}} {{else}}
  kOpenPartial,       // {{>
  kOpenPartialBlock,  // {{#>
  kClose,             // }}
  kCloseUnescaped,    // }}}
  kOpenSexpr,
  kCloseSexpr,
  kId,
  kSep,
  kData,
  kString,
  kNumber,
  kBoolean,
  kUndefined,
  kNull,
  kEquals,
  kOpenBlockParams,
  kCloseBlockParams,
  kEof,
};

struct Token {
  T type = T::kEof;
  std::string text;  // content text, ID (with [brackets]), string value, number text
  size_t pos = 0;
  bool strip_open = false;   // openers, comments, {{else}}: {{~
  bool strip_close = false;  // closers, comments, {{else}}: ~}}
  bool decorator = false;    // {{#* and {{*
  bool escaped = true;       // kOpen: false for {{&
};

bool is_id_char(unsigned char c) {
  if (c >= 0x80) return true;
  if (c <= ' ') return !(c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f');
  switch (c) {
    case '!':
    case '"':
    case '#':
    case '%':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case '.':
    case '/':
    case ';':
    case '<':
    case '=':
    case '>':
    case '@':
    case '[':
    case '\\':
    case ']':
    case '^':
    case '`':
    case '{':
    case '|':
    case '}':
    case '~':
      return false;
    default:
      return true;
  }
}

bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

class Parser {
 public:
  Parser(std::string_view src, std::string_view name) : src_(src), name_(name) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src.size(); ++i) {
      if (src[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  Result<Parsed> run() {
    if (src_.find('\0') != std::string_view::npos) {
      fail(src_.find('\0'), "template contains a NUL byte");
      return error_;
    }
    if (!lex()) return error_;
    auto root = std::make_unique<Program>();
    if (!parse_program(*root, 0)) return error_;
    const Token& t = tok();
    if (t.type != T::kEof) {
      if (t.type == T::kOpenEndBlock) {
        fail(t.pos, "{{/" + peek_name(1) + "}} closes a block that was never opened");
      } else {
        fail(t.pos, "{{else}} outside of a block");
      }
      return error_;
    }
    whitespace_program(*root, true);
    finish_program(*root);
    Parsed parsed;
    collect_variables(*root, 0, parsed.root_variables);
    parsed.root = std::move(root);
    return parsed;
  }

 private:
  // ---- positions and errors ----

  // Columns count characters, not bytes. Counting from the line start for every node is
  // quadratic on a template that is one long line (minified HTML), so the count of character
  // starts is kept at checkpoints every kCheckpoint bytes: a position costs at most that many
  // steps, whatever the line length.
  static constexpr size_t kCheckpoint = 64;
  size_t chars_before(size_t pos) const {
    if (checkpoints_.empty()) {
      checkpoints_.reserve(src_.size() / kCheckpoint + 1);
      size_t count = 0;
      for (size_t i = 0; i < src_.size(); ++i) {
        if (i % kCheckpoint == 0) checkpoints_.push_back(count);
        if ((static_cast<unsigned char>(src_[i]) & 0xC0) != 0x80) ++count;
      }
      if (src_.size() % kCheckpoint == 0) checkpoints_.push_back(count);
    }
    pos = std::min(pos, src_.size());
    size_t base = pos / kCheckpoint;
    size_t count = checkpoints_[base];
    for (size_t i = base * kCheckpoint; i < pos; ++i) {
      if ((static_cast<unsigned char>(src_[i]) & 0xC0) != 0x80) ++count;
    }
    return count;
  }

  std::pair<int, int> line_col(size_t pos) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), pos);
    size_t line = static_cast<size_t>(it - line_starts_.begin());
    size_t start = line_starts_[line - 1];
    size_t col = 1 + chars_before(pos) - chars_before(std::min(start, pos));
    return {static_cast<int>(line), static_cast<int>(col)};
  }
  mutable std::vector<size_t> checkpoints_;

  bool fail(size_t pos, const std::string& what) {
    if (!failed_) {
      auto [line, col] = line_col(pos);
      error_ = Status::invalid(std::string(name_) + ": line " + std::to_string(line) + ", column " +
                               std::to_string(col) + ": " + what);
      failed_ = true;
    }
    return false;
  }

  // ---- lexer ----

  void emit(T type, std::string text, size_t pos) {
    Token t;
    t.type = type;
    t.text = std::move(text);
    t.pos = pos;
    tokens_.push_back(std::move(t));
  }

  bool starts(size_t p, std::string_view s) const { return src_.substr(p, s.size()) == s; }

  size_t skip_space(size_t p) const {
    while (size_t n = js_space_at(src_, p)) p += n;
    return p;
  }

  bool lex() {
    size_t pos = 0, n = src_.size();
    while (pos < n) {
      // Text up to the next {{; a backslash before it escapes it (two print one backslash).
      size_t open = src_.find("{{", pos);
      if (open == std::string_view::npos) {
        emit(T::kContent, std::string(src_.substr(pos)), pos);
        break;
      }
      std::string text(src_.substr(pos, open - pos));
      bool escaped = false;
      if (text.size() >= 2 && text.compare(text.size() - 2, 2, "\\\\") == 0) {
        text.pop_back();
      } else if (!text.empty() && text.back() == '\\') {
        text.pop_back();
        escaped = true;
      }
      if (!text.empty()) emit(T::kContent, std::move(text), pos);
      pos = open;
      if (escaped) {
        // The escaped tag is text, up to (not including) the next {{ or \{{.
        size_t p = pos + 2;
        while (p < n && !starts(p, "{{") && !starts(p, "\\{{") && !starts(p, "\\\\{{")) ++p;
        emit(T::kContent, std::string(src_.substr(pos, p - pos)), pos);
        pos = p;
        continue;
      }
      if (!lex_tag(pos)) return false;
    }
    emit(T::kEof, "", n);
    return true;
  }

  // Lexes one tag starting at `start` ("{{"); moves pos past its closer.
  bool lex_tag(size_t& pos) {
    size_t start = pos;
    if (starts(start, "{{{{")) return fail(start, "raw blocks ({{{{raw}}}}) are not supported");
    size_t p = start + 2;
    bool strip = false;
    if (p < src_.size() && src_[p] == '~') {
      strip = true;
      ++p;
    }
    auto opener = [&](T type, size_t after) {
      emit(type, std::string(src_.substr(start, after - start)), start);
      tokens_.back().strip_open = strip;
      return after;
    };
    // The inverse tags {{^}} and {{else}} are whole tokens.
    auto whole_inverse = [&](size_t q) -> bool {
      q = skip_space(q);
      bool strip_close = false;
      if (q < src_.size() && src_[q] == '~') {
        strip_close = true;
        ++q;
      }
      if (!starts(q, "}}")) return false;
      opener(T::kInverse, q + 2);
      tokens_.back().strip_close = strip_close;
      pos = q + 2;
      return true;
    };

    char c = p < src_.size() ? src_[p] : '\0';
    size_t after_space = skip_space(p);
    bool is_else = starts(after_space, "else") &&
                   (after_space + 4 >= src_.size() || !is_word_char(src_[after_space + 4]));
    if (c == '>') {
      p = opener(T::kOpenPartial, p + 1);
    } else if (c == '#' && starts(p + 1, ">")) {
      p = opener(T::kOpenPartialBlock, p + 2);
    } else if (c == '#') {
      bool deco = starts(p + 1, "*");
      p = opener(T::kOpenBlock, p + 1 + (deco ? 1 : 0));
      tokens_.back().decorator = deco;
    } else if (c == '/') {
      p = opener(T::kOpenEndBlock, p + 1);
    } else if (c == '^' && whole_inverse(p + 1)) {
      return true;
    } else if (is_else && whole_inverse(after_space + 4)) {
      return true;
    } else if (c == '^') {
      p = opener(T::kOpenInverse, p + 1);
    } else if (is_else) {
      p = opener(T::kOpenInverseChain, after_space + 4);
    } else if (c == '{') {
      p = opener(T::kOpenUnescaped, p + 1);
    } else if (c == '&') {
      p = opener(T::kOpen, p + 1);
      tokens_.back().escaped = false;
    } else if (c == '!') {
      return lex_comment(start, p, strip, pos);
    } else if (c == '*') {
      p = opener(T::kOpen, p + 1);
      tokens_.back().decorator = true;
    } else {
      p = opener(T::kOpen, p);
    }
    return lex_tag_body(start, p, pos);
  }

  bool lex_comment(size_t start, size_t bang, bool strip, size_t& pos) {
    size_t end;  // index of the closing "}}"
    if (starts(bang, "!--")) {
      // Up to the first "--}}" or "--~}}" (the opening dashes may be the closing ones).
      size_t q = bang + 1;
      for (;;) {
        q = src_.find("--", q);
        if (q == std::string_view::npos) return fail(start, "unterminated comment {{!-- (no --}})");
        if (starts(q + 2, "}}")) {
          end = q + 2;
          break;
        }
        if (starts(q + 2, "~}}")) {
          end = q + 3;
          break;
        }
        ++q;
      }
    } else {
      end = src_.find("}}", bang + 1);
      if (end == std::string_view::npos) return fail(start, "unterminated comment {{! (no }})");
    }
    emit(T::kComment, "", start);
    tokens_.back().strip_open = strip;
    tokens_.back().strip_close = src_[end - 1] == '~' && end - 1 > bang;
    pos = end + 2;
    return true;
  }

  // Tokens inside a tag, up to and including its closer.
  bool lex_tag_body(size_t start, size_t p, size_t& pos) {
    tag_start_ = start;
    auto lookahead_id = [&](size_t q) {  // [=~}\s\/.)|]
      if (q >= src_.size()) return false;
      char c = src_[q];
      return c == '=' || c == '~' || c == '}' || c == '/' || c == '.' || c == ')' || c == '|' ||
             js_space_at(src_, q) > 0;
    };
    auto lookahead_literal = [&](size_t q) {  // [~}\s)]
      if (q >= src_.size()) return false;
      char c = src_[q];
      return c == '~' || c == '}' || c == ')' || js_space_at(src_, q) > 0;
    };
    for (;;) {
      p = skip_space(p);
      if (p >= src_.size()) return fail(start, "unterminated tag: {{ without }}");
      char c = src_[p];
      if (starts(p, "}}}}")) return fail(p, "unexpected }}}}");
      if (c == '(') {
        emit(T::kOpenSexpr, "(", p++);
      } else if (c == ')') {
        emit(T::kCloseSexpr, ")", p++);
      } else if (c == '=') {
        emit(T::kEquals, "=", p++);
      } else if (starts(p, "..")) {
        emit(T::kId, "..", p);
        p += 2;
      } else if (c == '.' && lookahead_id(p + 1)) {
        emit(T::kId, ".", p++);
      } else if (c == '.' || c == '/') {
        emit(T::kSep, std::string(1, c), p++);
      } else if (starts(p, "}}}") || starts(p, "}~}}")) {
        bool strip = src_[p + 1] == '~';
        emit(T::kCloseUnescaped, "}}}", p);
        tokens_.back().strip_close = strip;
        pos = p + (strip ? 4 : 3);
        return true;
      } else if (starts(p, "}}") || starts(p, "~}}")) {
        bool strip = c == '~';
        emit(T::kClose, "}}", p);
        tokens_.back().strip_close = strip;
        pos = p + (strip ? 3 : 2);
        return true;
      } else if (c == '"' || c == '\'') {
        std::string value;
        size_t q = p + 1;
        for (;;) {
          if (q >= src_.size()) return fail(p, "unterminated string literal");
          if (src_[q] == '\\' && q + 1 < src_.size() && src_[q + 1] == c) {
            value.push_back(c);
            q += 2;
          } else if (src_[q] == c) {
            break;
          } else {
            value.push_back(src_[q++]);
          }
        }
        emit(T::kString, std::move(value), p);
        p = q + 1;
      } else if (c == '@') {
        emit(T::kData, "@", p++);
      } else if (size_t len = keyword_at(p, lookahead_literal)) {
        std::string word(src_.substr(p, len));
        emit(word == "true" || word == "false" ? T::kBoolean
             : word == "undefined"             ? T::kUndefined
                                               : T::kNull,
             word, p);
        p += len;
      } else if (size_t len = number_at(p); len && lookahead_literal(p + len)) {
        emit(T::kNumber, std::string(src_.substr(p, len)), p);
        p += len;
      } else if (starts(p, "as") && js_space_at(src_, p + 2)) {
        size_t q = skip_space(p + 2);
        if (q < src_.size() && src_[q] == '|') {
          emit(T::kOpenBlockParams, "as |", p);
          p = q + 1;
        } else if (!lex_id(p, lookahead_id)) {
          return false;
        } else {
          p = next_pos_;
        }
      } else if (c == '|') {
        emit(T::kCloseBlockParams, "|", p++);
      } else if (c == '[') {
        size_t q = p + 1;
        while (q < src_.size() && src_[q] != ']')
          q += (src_[q] == '\\' && q + 1 < src_.size() && src_[q + 1] == ']') ? 2 : 1;
        if (q >= src_.size()) return fail(p, "unterminated [segment literal]");
        std::string text;
        for (size_t i = p; i <= q; ++i) {
          if (src_[i] == '\\' && i + 1 < q + 1 && (src_[i + 1] == '\\' || src_[i + 1] == ']')) ++i;
          text.push_back(src_[i]);
        }
        emit(T::kId, std::move(text), p);
        p = q + 1;
      } else if (!lex_id(p, lookahead_id)) {
        return false;
      } else {
        p = next_pos_;
      }
    }
  }

  template <typename Look>
  bool lex_id(size_t p, Look&& lookahead) {
    size_t q = p;
    while (q < src_.size() && is_id_char(static_cast<unsigned char>(src_[q])) &&
           js_space_at(src_, q) == 0)
      ++q;
    if (q == p) {
      return fail(p, std::string("unexpected character '") + src_[p] + "' in tag");
    }
    if (!lookahead(q)) {
      if (q >= src_.size()) return fail(tag_start_, "unterminated tag: {{ without }}");
      return fail(q, std::string("unexpected character '") + src_[q] + "' after '" +
                         std::string(src_.substr(p, q - p)) + "'");
    }
    emit(T::kId, std::string(src_.substr(p, q - p)), p);
    next_pos_ = q;
    return true;
  }

  template <typename Look>
  size_t keyword_at(size_t p, Look&& lookahead) const {
    for (std::string_view w : {"true", "false", "undefined", "null"}) {
      if (starts(p, w) && lookahead(p + w.size())) return w.size();
    }
    return 0;
  }

  // -?[0-9]+(\.[0-9]+)?
  size_t number_at(size_t p) const {
    size_t q = p;
    if (q < src_.size() && src_[q] == '-') ++q;
    size_t digits = q;
    while (q < src_.size() && src_[q] >= '0' && src_[q] <= '9') ++q;
    if (q == digits) return 0;
    if (q + 1 < src_.size() && src_[q] == '.' && src_[q + 1] >= '0' && src_[q + 1] <= '9') {
      q += 1;
      while (q < src_.size() && src_[q] >= '0' && src_[q] <= '9') ++q;
    }
    return q - p;
  }

  // ---- grammar ----

  const Token& tok() const { return tokens_[cur_]; }
  const Token& advance() { return tokens_[cur_ < tokens_.size() - 1 ? cur_++ : cur_]; }

  // The name after an opener, for messages.
  std::string peek_name(size_t offset) const {
    size_t i = cur_ + offset;
    std::string name;
    while (i < tokens_.size() && (tokens_[i].type == T::kId || tokens_[i].type == T::kSep ||
                                  tokens_[i].type == T::kData)) {
      name += tokens_[i++].text;
    }
    if (name.empty() && i < tokens_.size() &&
        (tokens_[i].type == T::kString || tokens_[i].type == T::kNumber))
      name = tokens_[i].text;
    return name;
  }

  bool unexpected(const Token& t) {
    switch (t.type) {
      case T::kEof:
        return fail(t.pos, "unexpected end of template");
      case T::kClose:
      case T::kCloseUnescaped:
        return fail(t.pos, "unexpected '" + t.text + "'");
      default:
        return fail(t.pos, "unexpected '" + t.text + "' in tag");
    }
  }

  // program: statement*
  bool parse_program(Program& program, int nesting) {
    if (nesting > kMaxNesting) return fail(tok().pos, "blocks nested too deeply");
    for (;;) {
      const Token& t = tok();
      switch (t.type) {
        case T::kContent: {
          Node node;
          node.kind = Node::Kind::kContent;
          node.original = t.text;
          node.value = t.text;
          set_pos(node, t.pos);
          program.body.push_back(std::move(node));
          advance();
          break;
        }
        case T::kComment: {
          Node node;
          node.kind = Node::Kind::kComment;
          node.strip = {t.strip_open, t.strip_close};
          set_pos(node, t.pos);
          program.body.push_back(std::move(node));
          advance();
          break;
        }
        case T::kOpen:
        case T::kOpenUnescaped:
          if (!parse_mustache(program)) return false;
          break;
        case T::kOpenBlock:
        case T::kOpenInverse:
          if (!parse_block(program, nesting)) return false;
          break;
        case T::kOpenPartial:
        case T::kOpenPartialBlock:
          if (!parse_partial(program, nesting)) return false;
          break;
        default:
          return true;  // a closer, an inverse or the end: the caller decides
      }
    }
  }

  void set_pos(Node& node, size_t pos) const {
    auto [line, col] = line_col(pos);
    node.line = line;
    node.column = col;
  }

  // The parts of an open tag: helperName param* hash? blockParams? and its closer.
  struct OpenTag {
    size_t pos = 0;
    Expr head;
    std::vector<Expr> params;
    std::vector<HashPair> hash;
    std::vector<std::string> block_params;
    StripFlags strip;
    bool decorator = false;
    bool escaped = true;
    bool has_head = false;
  };

  bool parse_open(OpenTag& open, bool allow_block_params, bool unescaped_close, int nesting,
                  bool allow_sexpr_head = false) {
    const Token& opener = advance();
    open.pos = opener.pos;
    open.strip.open = opener.strip_open;
    open.decorator = opener.decorator;
    open.escaped = opener.escaped && opener.type != T::kOpenUnescaped;
    if (allow_sexpr_head && tok().type == T::kOpenSexpr) {
      if (!parse_sexpr(open.head, nesting + 1)) return false;
    } else if (!parse_helper_name(open.head)) {
      return false;
    }
    open.has_head = true;
    if (!parse_args(open.params, open.hash, nesting)) return false;
    if (tok().type == T::kOpenBlockParams) {
      if (!allow_block_params) return unexpected(tok());
      advance();
      while (tok().type == T::kId) open.block_params.push_back(advance().text);
      if (open.block_params.empty() || tok().type != T::kCloseBlockParams)
        return fail(tok().pos, "block parameters must read as |name ...|");
      advance();
    }
    const Token& close = tok();
    T want = unescaped_close ? T::kCloseUnescaped : T::kClose;
    if (close.type != want) {
      if (close.type == T::kClose || close.type == T::kCloseUnescaped) {
        return fail(close.pos, unescaped_close ? "{{{ closed with }} instead of }}}"
                                               : "tag closed with }}} instead of }}");
      }
      return unexpected(close);
    }
    open.strip.close = close.strip_close;
    advance();
    return true;
  }

  // param* hash?
  bool parse_args(std::vector<Expr>& params, std::vector<HashPair>& hash, int nesting) {
    for (;;) {
      const Token& t = tok();
      if (t.type == T::kId && cur_ + 1 < tokens_.size() && tokens_[cur_ + 1].type == T::kEquals) {
        HashPair pair;
        pair.key = strip_brackets(t.text);
        advance();
        advance();
        if (!parse_param(pair.value, nesting)) return false;
        hash.push_back(std::move(pair));
        continue;
      }
      if (!hash.empty()) return true;  // only hash pairs may follow a hash pair
      if (t.type == T::kId || t.type == T::kData || t.type == T::kString || t.type == T::kNumber ||
          t.type == T::kBoolean || t.type == T::kUndefined || t.type == T::kNull ||
          t.type == T::kOpenSexpr) {
        Expr e;
        if (!parse_param(e, nesting)) return false;
        params.push_back(std::move(e));
        continue;
      }
      return true;
    }
  }

  bool parse_param(Expr& e, int nesting) {
    if (tok().type == T::kOpenSexpr) return parse_sexpr(e, nesting + 1);
    return parse_helper_name(e);
  }

  // ( helperName param* hash? )
  bool parse_sexpr(Expr& e, int nesting) {
    if (nesting > kMaxNesting) return fail(tok().pos, "subexpressions nested too deeply");
    size_t pos = advance().pos;
    Expr head;
    if (!parse_helper_name(head)) return false;
    auto call = std::make_unique<Call>();
    if (!parse_args(call->params, call->hash, nesting)) return false;
    if (tok().type != T::kCloseSexpr) return unexpected(tok());
    advance();
    if (!make_call(*call, std::move(head), pos, CallSite::kSubexpression)) return false;
    e.kind = Expr::Kind::kCall;
    e.call = std::move(call);
    return true;
  }

  static std::string strip_brackets(const std::string& id) {
    if (id.size() >= 2 && id.front() == '[' && id.back() == ']') return id.substr(1, id.size() - 2);
    return id;
  }

  // helperName: path | dataName | STRING | NUMBER | BOOLEAN | UNDEFINED | NULL
  bool parse_helper_name(Expr& e) {
    const Token& t = tok();
    switch (t.type) {
      case T::kString:
        e.kind = Expr::Kind::kLiteral;
        e.literal = t.text;
        e.path.original = t.text;
        advance();
        return true;
      case T::kNumber: {
        e.kind = Expr::Kind::kLiteral;
        e.literal = std::strtod(t.text.c_str(), nullptr);
        std::string s;
        append_js_number(e.literal.get<double>(), s);
        e.path.original = s;
        advance();
        return true;
      }
      case T::kBoolean:
        e.kind = Expr::Kind::kLiteral;
        e.literal = t.text == "true";
        e.path.original = t.text;
        advance();
        return true;
      case T::kUndefined:
        e.kind = Expr::Kind::kLiteral;
        e.literal = nlohmann::json(nlohmann::json::value_t::discarded);
        e.path.original = "undefined";
        advance();
        return true;
      case T::kNull:
        e.kind = Expr::Kind::kLiteral;
        e.literal = nullptr;
        e.path.original = "null";
        advance();
        return true;
      case T::kData:
        advance();
        e.kind = Expr::Kind::kPath;
        return parse_path(e.path, true, t.pos);
      case T::kId:
        e.kind = Expr::Kind::kPath;
        return parse_path(e.path, false, t.pos);
      default:
        return unexpected(t);
    }
  }

  // pathSegments: ID (SEP ID)*, with handlebars' rules for this, . and .. (only in front).
  bool parse_path(PathExpr& path, bool data, size_t pos) {
    auto [line, col] = line_col(pos);
    path.line = line;
    path.column = col;
    path.head = data ? PathExpr::Head::kData : PathExpr::Head::kContext;
    std::string original = data ? "@" : "";
    bool first = true;
    for (;;) {
      if (tok().type != T::kId) return unexpected(tok());
      const Token& id = advance();
      std::string part = strip_brackets(id.text);
      bool literal = part != id.text;
      if (!first) original += tokens_[cur_ - 2].text;  // the separator
      original += part;
      first = false;
      if (!literal && (part == ".." || part == "." || part == "this")) {
        if (!path.parts.empty()) return fail(pos, "invalid path: " + original);
        if (part == "..") ++path.depth;
      } else {
        Segment seg;
        seg.index = array_index(part);
        seg.name = std::move(part);
        path.parts.push_back(std::move(seg));
      }
      if (tok().type != T::kSep) break;
      advance();
    }
    path.original = original;
    // handlebars' scopedId: /^\.|this\b/ on the original text.
    size_t t = original.find("this");
    path.scoped = (!original.empty() && original[0] == '.');
    while (!path.scoped && t != std::string::npos) {
      if (t + 4 >= original.size() || !is_word_char(original[t + 4])) path.scoped = true;
      t = original.find("this", t + 1);
    }
    if (data) return true;

    // A block parameter in scope, innermost first.
    if (path.depth == 0 && !path.scoped && !path.parts.empty()) {
      int frame = 0;
      // Only blocks that declare parameters get a frame at render time, so only they count.
      for (auto it = block_params_.rbegin(); it != block_params_.rend(); ++it) {
        const auto& names = **it;
        if (names.empty()) continue;
        auto found = std::find(names.begin(), names.end(), path.parts[0].name);
        if (found != names.end()) {
          path.head = PathExpr::Head::kBlockParam;
          path.param_frame = frame;
          path.param_index = static_cast<int>(found - names.begin());
          path.parts.erase(path.parts.begin());
          break;
        }
        ++frame;
      }
    }
    return true;
  }

  enum class CallSite { kMustache, kBlock, kSubexpression };

  // Resolves the head of a tag or subexpression to a built-in helper or a plain value, and
  // checks the arguments the helper takes.
  bool make_call(Call& call, Expr head, size_t pos, CallSite site) {
    auto [line, col] = line_col(pos);
    call.line = line;
    call.column = col;
    if (head.kind == Expr::Kind::kCall) return fail(pos, "a subexpression cannot be called");
    if (head.kind == Expr::Kind::kLiteral) {
      // As handlebars does, a literal in call position names a property: {{"a b"}}, {{12}}.
      PathExpr p;
      p.original = head.path.original;
      Segment seg;
      seg.name = p.original;
      seg.index = array_index(seg.name);
      p.parts.push_back(std::move(seg));
      p.scoped = p.original.rfind('.', 0) == 0 || p.original.find("this") != std::string::npos;
      p.line = line;
      p.column = col;
      head.path = std::move(p);
    }
    call.path = std::move(head.path);
    const PathExpr& path = call.path;
    bool simple = path.head == PathExpr::Head::kContext && path.parts.size() == 1 &&
                  path.depth == 0 && !path.scoped;
    bool has_args = !call.params.empty() || !call.hash.empty();
    std::string name = simple ? path.parts[0].name : "";
    if (simple) {
      if (name == "if")
        call.helper = Call::Helper::kIf;
      else if (name == "unless")
        call.helper = Call::Helper::kUnless;
      else if (name == "each")
        call.helper = Call::Helper::kEach;
      else if (name == "with")
        call.helper = Call::Helper::kWith;
      else if (name == "lookup")
        call.helper = Call::Helper::kLookup;
      else if (name == "log")
        call.helper = Call::Helper::kLog;
      else if (name == "helperMissing" || name == "blockHelperMissing")
        return fail(pos, "'" + name + "' cannot be called from a template");
    }
    switch (call.helper) {
      case Call::Helper::kNone:
        if (has_args && site != CallSite::kSubexpression) {
          return fail(pos, "unknown helper '" + path.original +
                               "' (only if, unless, each, with, lookup and log exist)");
        }
        if (has_args) {
          return fail(pos, "unknown helper '" + path.original + "' in subexpression");
        }
        return true;
      case Call::Helper::kIf:
      case Call::Helper::kUnless:
      case Call::Helper::kEach:
      case Call::Helper::kWith:
        if (site != CallSite::kBlock) {
          return fail(pos, "'" + name + "' is a block helper: write {{#" + name + " ...}}");
        }
        if (call.params.size() != 1) {
          return fail(pos, "#" + name + " takes exactly one argument, got " +
                               std::to_string(call.params.size()));
        }
        return true;
      case Call::Helper::kLookup:
        if (site == CallSite::kBlock) return fail(pos, "'lookup' cannot open a block");
        if (call.params.size() != 2) {
          return fail(pos, "lookup takes two arguments (object and key), got " +
                               std::to_string(call.params.size()));
        }
        return true;
      case Call::Helper::kLog:
        if (site == CallSite::kBlock) return fail(pos, "'log' cannot open a block");
        return true;
    }
    return true;
  }

  bool parse_mustache(Program& program) {
    bool unescaped = tok().type == T::kOpenUnescaped;
    OpenTag open;
    if (!parse_open(open, false, unescaped, 0)) return false;
    if (open.decorator) return fail(open.pos, "decorators ({{* ...}}) are not supported");
    Node node;
    node.kind = Node::Kind::kMustache;
    set_pos(node, open.pos);
    node.strip = open.strip;
    node.escaped = open.escaped;
    node.call.params = std::move(open.params);
    node.call.hash = std::move(open.hash);
    if (!make_call(node.call, std::move(open.head), open.pos, CallSite::kMustache)) return false;
    program.body.push_back(std::move(node));
    return true;
  }

  // An {{else}} or {{else x}} section after a block's main program.
  struct InverseSection {
    StripFlags strip;
    std::unique_ptr<Program> program;
    bool chain = false;
  };

  // closeBlock: {{/name}} matching `name`.
  bool parse_close(const std::string& name, size_t open_pos, StripFlags& strip,
                   const std::string& what) {
    const Token& t = tok();
    if (t.type != T::kOpenEndBlock) {
      if (t.type == T::kEof) {
        return fail(open_pos, what + " is never closed (expected {{/" + name + "}})");
      }
      if (t.type == T::kInverse || t.type == T::kOpenInverseChain) {
        return fail(t.pos, "{{else}} is not allowed in " + what);
      }
      return unexpected(t);
    }
    strip.open = t.strip_open;
    size_t pos = advance().pos;
    Expr closer;
    if (!parse_helper_name(closer)) return false;
    if (tok().type != T::kClose) return unexpected(tok());
    strip.close = advance().strip_close;
    if (closer.path.original != name) {
      auto [line, col] = line_col(open_pos);
      return fail(pos, "{{/" + closer.path.original + "}} does not match {{#" + name +
                           "}} opened at line " + std::to_string(line) + ", column " +
                           std::to_string(col));
    }
    return true;
  }

  Node make_block(OpenTag& open, std::unique_ptr<Program> program,
                  std::optional<InverseSection> inverse, const StripFlags* close_strip,
                  bool inverted) {
    Node node;
    node.kind = Node::Kind::kBlock;
    set_pos(node, open.pos);
    node.open_strip = open.strip;
    program->block_params = std::move(open.block_params);
    if (inverse) {
      if (inverse->chain && close_strip) inverse->program->body[0].close_strip = *close_strip;
      node.inverse_strip = inverse->strip;
      node.has_inverse_strip = true;
      node.inverse = std::move(inverse->program);
    }
    node.program = std::move(program);
    if (close_strip) node.close_strip = *close_strip;
    if (inverted) std::swap(node.program, node.inverse);
    return node;
  }

  // inverseChain: {{else x}} program inverseChain? | {{else}} program
  bool parse_inverse_chain(std::optional<InverseSection>& out, int nesting) {
    if (nesting > kMaxNesting) return fail(tok().pos, "blocks nested too deeply");
    const Token& t = tok();
    if (t.type == T::kInverse) {
      InverseSection section;
      section.strip = {t.strip_open, t.strip_close};
      advance();
      section.program = std::make_unique<Program>();
      if (!parse_program(*section.program, nesting + 1)) return false;
      out = std::move(section);
      return true;
    }
    // {{else x ...}}: a block of its own, the only statement of the inverse program.
    OpenTag open;
    if (!parse_open(open, true, false, nesting)) return false;
    Expr head = std::move(open.head);
    auto program = std::make_unique<Program>();
    block_params_.push_back(&open.block_params);
    bool ok = parse_program(*program, nesting + 1);
    block_params_.pop_back();
    if (!ok) return false;
    std::optional<InverseSection> next;
    if (tok().type == T::kInverse || tok().type == T::kOpenInverseChain) {
      if (!parse_inverse_chain(next, nesting + 1)) return false;
    }
    StripFlags next_strip = next ? next->strip : StripFlags{};
    Call call;
    call.params = std::move(open.params);
    call.hash = std::move(open.hash);
    if (!make_call(call, std::move(head), open.pos, CallSite::kBlock)) return false;
    Node block =
        make_block(open, std::move(program), std::move(next), next ? &next_strip : nullptr, false);
    block.call = std::move(call);
    InverseSection section;
    section.strip = open.strip;
    section.program = std::make_unique<Program>();
    section.program->chained = true;
    section.program->body.push_back(std::move(block));
    section.chain = true;
    out = std::move(section);
    return true;
  }

  bool parse_block(Program& parent, int nesting) {
    bool inverted = tok().type == T::kOpenInverse;
    OpenTag open;
    if (!parse_open(open, true, false, nesting)) return false;
    std::string name = open.head.path.original;

    auto program = std::make_unique<Program>();
    block_params_.push_back(&open.block_params);
    bool ok = parse_program(*program, nesting + 1);
    block_params_.pop_back();
    if (!ok) return false;

    if (open.decorator) return parse_inline(parent, open, std::move(program), name);

    std::optional<InverseSection> inverse;
    if (tok().type == T::kInverse || (tok().type == T::kOpenInverseChain && !inverted)) {
      if (!parse_inverse_chain(inverse, nesting + 1)) return false;
    }
    StripFlags close_strip;
    if (!parse_close(name, open.pos, close_strip, "{{#" + name + "}}")) return false;

    Call call;
    call.params = std::move(open.params);
    call.hash = std::move(open.hash);
    if (!make_call(call, std::move(open.head), open.pos, CallSite::kBlock)) return false;
    Node node = make_block(open, std::move(program), std::move(inverse), &close_strip, inverted);
    node.call = std::move(call);
    parent.body.push_back(std::move(node));
    return true;
  }

  // {{#*inline "name"}}body{{/inline}}
  bool parse_inline(Program& parent, OpenTag& open, std::unique_ptr<Program> body,
                    const std::string& name) {
    if (name != "inline") {
      return fail(open.pos, "decorator '" + name + "' is not supported (only {{#*inline}})");
    }
    if (open.params.size() != 1 || open.params[0].kind != Expr::Kind::kLiteral ||
        open.params[0].literal.is_discarded() || open.params[0].literal.is_null()) {
      return fail(open.pos, "{{#*inline}} takes the partial's name as a string");
    }
    StripFlags close_strip;
    if (!parse_close("inline", open.pos, close_strip, "{{#*inline}}")) return false;
    Node node;
    node.kind = Node::Kind::kInline;
    set_pos(node, open.pos);
    node.open_strip = open.strip;
    node.close_strip = close_strip;
    node.partial_name = open.params[0].path.original;
    node.program = std::move(body);
    parent.body.push_back(std::move(node));
    return true;
  }

  // {{> name context? hash?}} and {{#> name ...}}fallback{{/name}}
  bool parse_partial(Program& parent, int nesting) {
    bool block = tok().type == T::kOpenPartialBlock;
    OpenTag open;
    if (!parse_open(open, false, false, nesting, true)) return false;
    Node node;
    node.kind = block ? Node::Kind::kPartialBlock : Node::Kind::kPartial;
    set_pos(node, open.pos);
    node.strip = open.strip;
    node.open_strip = open.strip;
    if (open.head.kind == Expr::Kind::kCall) {
      node.dynamic_name = std::make_unique<Expr>(std::move(open.head));
    } else {
      node.partial_name = open.head.path.original;
    }
    if (open.params.size() > 1) {
      return fail(open.pos, "a partial takes at most one context argument, got " +
                                std::to_string(open.params.size()));
    }
    node.call.params = std::move(open.params);
    node.call.hash = std::move(open.hash);
    auto [line, col] = line_col(open.pos);
    node.call.line = line;
    node.call.column = col;
    if (block) {
      node.program = std::make_unique<Program>();
      if (!parse_program(*node.program, nesting + 1)) return false;
      std::string name = node.dynamic_name ? "" : node.partial_name;
      if (!parse_close(name, open.pos, node.close_strip, "{{#> " + name + "}}")) return false;
    }
    parent.body.push_back(std::move(node));
    return true;
  }

  // ---- whitespace control (handlebars' WhitespaceControl visitor) ----

  // Content that ends with a newline and then only whitespace (or is all whitespace, at the
  // edge of the template).
  static bool trailing_ws_has_newline(std::string_view s, bool or_all_space) {
    size_t end = s.size();
    while (size_t n = js_space_before(s, end)) {
      if (n == 1 && s[end - 1] == '\n') return true;
      end -= n;
    }
    return or_all_space && end == 0;
  }
  static bool leading_ws_has_newline(std::string_view s, bool or_all_space) {
    size_t i = 0;
    while (size_t n = js_space_at(s, i)) {
      if (n == 1 && s[i] == '\n') return true;
      i += n;
    }
    return or_all_space && i == s.size();
  }

  // `i` is the index of the statement; body.size() means "after the last one".
  static std::optional<bool> is_prev_whitespace(const std::vector<Node>& body, size_t i,
                                                bool is_root) {
    if (i == 0) return is_root;
    const Node& prev = body[i - 1];
    if (prev.kind != Node::Kind::kContent) return std::nullopt;
    bool sibling = i >= 2;
    return trailing_ws_has_newline(prev.original, !(sibling || !is_root));
  }
  // `i` is the index of the statement; -1 means "before the first one".
  static std::optional<bool> is_next_whitespace(const std::vector<Node>& body, long i,
                                                bool is_root) {
    size_t next_i = static_cast<size_t>(i + 1);
    if (next_i >= body.size()) return is_root;
    const Node& next = body[next_i];
    if (next.kind != Node::Kind::kContent) return std::nullopt;
    bool sibling = next_i + 1 < body.size();
    return leading_ws_has_newline(next.original, !(sibling || !is_root));
  }

  // Strips the start of the content after statement i (i < 0: the first statement).
  static void omit_right(std::vector<Node>& body, long i, bool multiple) {
    size_t at = i < 0 ? 0 : static_cast<size_t>(i + 1);
    if (at >= body.size()) return;
    Node& current = body[at];
    if (current.kind != Node::Kind::kContent || (!multiple && current.right_stripped)) return;
    std::string& v = current.value;
    size_t cut = 0;
    if (multiple) {
      while (size_t n = js_space_at(v, cut)) cut += n;
    } else {
      while (cut < v.size() && (v[cut] == ' ' || v[cut] == '\t')) ++cut;
      if (cut < v.size() && v[cut] == '\r' && cut + 1 < v.size() && v[cut + 1] == '\n')
        cut += 2;
      else if (cut < v.size() && v[cut] == '\n')
        cut += 1;
    }
    v.erase(0, cut);
    current.right_stripped = cut > 0;
  }

  // Strips the end of the content before statement i (i == size: the last statement).
  static bool omit_left(std::vector<Node>& body, size_t i, bool multiple) {
    if (i == 0 || i > body.size()) return false;
    Node& current = body[i - 1];
    if (current.kind != Node::Kind::kContent || (!multiple && current.left_stripped)) return false;
    std::string& v = current.value;
    size_t end = v.size();
    if (multiple) {
      while (size_t n = js_space_before(v, end)) end -= n;
    } else {
      while (end > 0 && (v[end - 1] == ' ' || v[end - 1] == '\t')) --end;
    }
    bool changed = end != v.size();
    v.resize(end);
    current.left_stripped = changed;
    return changed;
  }

  struct Strip {
    bool open = false, close = false;
    bool open_standalone = false, close_standalone = false, inline_standalone = false;
    bool any = false;
  };

  void whitespace_program(Program& program, bool is_root) {
    auto& body = program.body;
    for (size_t i = 0; i < body.size(); ++i) {
      Node& current = body[i];
      Strip strip = whitespace_node(current);
      if (!strip.any) continue;
      bool prev_ws = is_prev_whitespace(body, i, is_root).value_or(false);
      bool next_ws = is_next_whitespace(body, static_cast<long>(i), is_root).value_or(false);
      bool open_standalone = strip.open_standalone && prev_ws;
      bool close_standalone = strip.close_standalone && next_ws;
      bool inline_standalone = strip.inline_standalone && prev_ws && next_ws;
      long li = static_cast<long>(i);

      if (strip.close) omit_right(body, li, true);
      if (strip.open) omit_left(body, i, true);
      if (inline_standalone) {
        omit_right(body, li, false);
        if (omit_left(body, i, false) && current.kind == Node::Kind::kPartial) {
          const std::string& orig = body[i - 1].original;
          size_t end = orig.size(), start = end;
          while (start > 0 && (orig[start - 1] == ' ' || orig[start - 1] == '\t')) --start;
          current.indent = orig.substr(start, end - start);
        }
      }
      if (open_standalone) {
        Program* inner = current.program ? current.program.get() : current.inverse.get();
        if (inner) omit_right(inner->body, -1, false);
        omit_left(body, i, false);
      }
      if (close_standalone) {
        omit_right(body, li, false);
        Program* inner = current.inverse ? current.inverse.get() : current.program.get();
        if (inner) omit_left(inner->body, inner->body.size(), false);
      }
    }
  }

  Strip whitespace_node(Node& node) {
    Strip s;
    switch (node.kind) {
      case Node::Kind::kContent:
        return s;
      case Node::Kind::kMustache:
        s.any = true;
        s.open = node.strip.open;
        s.close = node.strip.close;
        return s;
      case Node::Kind::kPartial:
      case Node::Kind::kComment:
        s.any = true;
        s.inline_standalone = true;
        s.open = node.strip.open;
        s.close = node.strip.close;
        return s;
      case Node::Kind::kBlock:
      case Node::Kind::kPartialBlock:
      case Node::Kind::kInline:
        break;
    }
    if (node.program) whitespace_program(*node.program, false);
    if (node.inverse) whitespace_program(*node.inverse, false);

    Program* program = node.program ? node.program.get() : node.inverse.get();
    Program* inverse = node.program ? node.inverse.get() : nullptr;
    Program* first_inverse = inverse;
    Program* last_inverse = inverse;
    if (inverse && inverse->chained) {
      first_inverse = inverse->body[0].program.get();
      while (last_inverse && last_inverse->chained) {
        last_inverse = last_inverse->body.back().program.get();
      }
    }
    s.any = true;
    s.open = node.open_strip.open;
    s.close = node.close_strip.close;
    if (!program) return s;
    s.open_standalone = is_next_whitespace(program->body, -1, false).value_or(false);
    Program* close_ref = first_inverse ? first_inverse : program;
    s.close_standalone =
        is_prev_whitespace(close_ref->body, close_ref->body.size(), false).value_or(false);

    if (node.open_strip.close) omit_right(program->body, -1, true);
    if (inverse) {
      if (node.inverse_strip.open) omit_left(program->body, program->body.size(), true);
      if (node.inverse_strip.close && first_inverse) omit_right(first_inverse->body, -1, true);
      if (node.close_strip.open && last_inverse)
        omit_left(last_inverse->body, last_inverse->body.size(), true);
      // A standalone {{else}}.
      if (first_inverse &&
          is_prev_whitespace(program->body, program->body.size(), false).value_or(false) &&
          is_next_whitespace(first_inverse->body, -1, false).value_or(false)) {
        omit_left(program->body, program->body.size(), false);
        omit_right(first_inverse->body, -1, false);
      }
    } else if (node.close_strip.open) {
      omit_left(program->body, program->body.size(), true);
    }
    return s;
  }

  // ---- trimming for render ----

  void finish_program(Program& program) {
    std::vector<Node> kept;
    kept.reserve(program.body.size());
    for (auto& node : program.body) {
      if (node.program) finish_program(*node.program);
      if (node.inverse) finish_program(*node.inverse);
      switch (node.kind) {
        case Node::Kind::kComment:
          continue;
        case Node::Kind::kContent:
          if (node.value.empty()) continue;
          node.original.clear();
          // Adjacent text (split by an escape or a comment) renders as one piece.
          if (!kept.empty() && kept.back().kind == Node::Kind::kContent) {
            kept.back().value += node.value;
            continue;
          }
          break;
        case Node::Kind::kInline: {
          // Later definitions of a name win, as in handlebars.
          auto& inl = program.inlines;
          auto it = std::find_if(inl.begin(), inl.end(), [&](const InlinePartial& p) {
            return p.name == node.partial_name;
          });
          program.inline_storage.push_back(std::move(node.program));
          const Program* body = program.inline_storage.back().get();
          if (it != inl.end()) {
            it->body = body;
          } else {
            inl.push_back({node.partial_name, body});
          }
          continue;
        }
        default:
          break;
      }
      kept.push_back(std::move(node));
    }
    program.body = std::move(kept);
  }

 private:
  // ---- root variables ----

  void add_variable(const PathExpr& path, size_t from, std::vector<VariableRef>& out) {
    if (from >= path.parts.size()) return;
    std::string name;
    for (size_t i = from; i < path.parts.size(); ++i) {
      if (i > from) name.push_back('.');
      name += path.parts[i].name;
    }
    for (const auto& v : out) {
      if (v.path == name) return;
    }
    out.push_back({std::move(name), path.line, path.column});
  }

  void collect_path(const PathExpr& path, int level, std::vector<VariableRef>& out) {
    switch (path.head) {
      case PathExpr::Head::kBlockParam:
        return;
      case PathExpr::Head::kData:
        if (path.depth == 0 && !path.parts.empty() && path.parts[0].name == "root") {
          add_variable(path, 1, out);
        }
        return;
      case PathExpr::Head::kContext:
        if (path.depth == level) add_variable(path, 0, out);
        return;
    }
  }

  void collect_expr(const Expr& e, int level, std::vector<VariableRef>& out) {
    if (e.kind == Expr::Kind::kPath) collect_path(e.path, level, out);
    if (e.kind == Expr::Kind::kCall) collect_call(*e.call, level, out);
  }

  void collect_call(const Call& call, int level, std::vector<VariableRef>& out) {
    if (call.helper == Call::Helper::kNone) collect_path(call.path, level, out);
    for (const auto& p : call.params) collect_expr(p, level, out);
    for (const auto& h : call.hash) collect_expr(h.value, level, out);
  }

  void collect_variables(const Program& program, int level, std::vector<VariableRef>& out) {
    // Inline partials are counted as if rendered where they are defined.
    for (const auto& inl : program.inlines) collect_variables(*inl.body, level, out);
    for (const auto& node : program.body) {
      switch (node.kind) {
        case Node::Kind::kMustache:
          collect_call(node.call, level, out);
          break;
        case Node::Kind::kBlock: {
          collect_call(node.call, level, out);
          // #each, #with and sections ({{#x}}) render their body in a new context.
          bool same =
              node.call.helper == Call::Helper::kIf || node.call.helper == Call::Helper::kUnless;
          if (node.program) collect_variables(*node.program, same ? level : level + 1, out);
          if (node.inverse) collect_variables(*node.inverse, level, out);
          break;
        }
        case Node::Kind::kPartial:
        case Node::Kind::kPartialBlock:
          if (node.dynamic_name) collect_expr(*node.dynamic_name, level, out);
          collect_call(node.call, level, out);
          if (node.program) {
            collect_variables(*node.program, node.call.params.empty() ? level : level + 1, out);
          }
          break;
        default:
          break;
      }
    }
  }

  std::string_view src_;
  std::string_view name_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
  size_t cur_ = 0;
  size_t next_pos_ = 0;
  size_t tag_start_ = 0;
  std::vector<const std::vector<std::string>*> block_params_;
  Status error_;
  bool failed_ = false;
};

}  // namespace

Result<Parsed> parse_template(std::string_view source, std::string_view name) {
  Parser parser(source, name);
  return parser.run();
}

}  // namespace magnetic::render::detail
