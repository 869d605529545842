// Renderer: walks the compiled tree (ast.h) once per message, appending to the caller's string.
//
// Strategy: the state handlebars.js keeps in closures (the context stack used by ../, block
// parameters, @data frames, inline partials in scope, the current @partial-block) lives in
// small frames on the C++ stack, each pointing at its parent, so a render allocates nothing of
// its own beyond what the output string needs (a partial with hash arguments, an #each over an
// object with numeric keys and a value turned into a string to compare it are the exceptions).
// The rules of the context stack are handlebars.js's: a block body gets a new stack entry only
// when its context differs (by JS ==) from the current top; helpers see a null context as an
// empty object.
//
// Limits: a template is the sender's input, and a few nested #each over a modest array expand
// without bound, so every render runs against two budgets of RenderOptions. The output limit is
// checked before each append to the caller's string (the only buffer output goes to; values
// turned into strings on the way are built with the same bound), so it is never passed, not
// merely detected afterwards. The step limit counts nodes visited and block iterations, which
// bounds loops that write nothing, plus what a conversion reads from the data (a context compared
// with an array, `.length` of a long string), so that no step is unboundedly expensive. The
// nesting of programs is bounded too, as the thread's stack would not be.
//
// Written by hand: no Handlebars implementation is packaged for C++ (Debian has mustache
// libraries only, which lack #each/@index, else-if chains, inline partials and handlebars'
// whitespace and escaping rules).
#include "render/template.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "render/ast.h"
#include "render/js_value.h"
#include "render/parser.h"

namespace magnetic::render {

using detail::Call;
using detail::Expr;
using detail::Node;
using detail::PathExpr;
using detail::Program;
using detail::Value;

struct Template::Impl {
  std::string name;
  std::unique_ptr<Program> root;
  std::vector<VariableRef> root_variables;
};

namespace {

// A partial that renders partials: deeper than this is taken for unbounded recursion.
constexpr int kMaxPartialDepth = 64;
// Programs running inside one another (block bodies, partials). The parser allows blocks 200
// deep and partials add 64 levels of those, which would take far more stack than a worker
// thread has. An #each level takes about 2 KB of stack in an optimized build, so this bounds a
// render to about 1 MB of it (a debug or sanitizer build takes several times more).
constexpr int kMaxProgramDepth = 500;

// Bytes that escape_html writes for `text`.
size_t escaped_size(std::string_view text) {
  size_t n = text.size();
  for (char ch : text) {
    switch (ch) {
      case '&':
        n += 4;  // &amp;
        break;
      case '<':
      case '>':
        n += 3;  // &lt; &gt;
        break;
      case '"':
      case '\'':
      case '`':
      case '=':
        n += 5;  // &quot; &#x27; &#x60; &#x3D;
        break;
      default:
        break;
    }
  }
  return n;
}

// One entry of the context stack (handlebars' `depths`).
struct Frame {
  Value context;
  const Frame* parent;
};

// The values of one block's `as |a b|`.
struct ParamFrame {
  Value values[2];
  size_t count;
  const ParamFrame* parent;
};

struct PartialBlock;

// @data: @root, @index, @key, @first, @last and the current @partial-block.
struct DataFrame {
  Value root, index, key, first, last;
  const PartialBlock* partial_block = nullptr;
  const DataFrame* parent = nullptr;
};

// A program with inline partials that is running, and the stacks it runs with.
struct Scope {
  const Program* program;
  const Frame* depths;
  const ParamFrame* params;
  const Scope* parent;
};

// {{#> name}}body{{/name}}: the body, with the stacks of the place it was written.
struct PartialBlock {
  const Program* body;
  const Frame* depths;
  const ParamFrame* params;
  const PartialBlock* outer;
};

// What one running program sees.
struct Ctx {
  Value self;  // `this`
  const Frame* depths;
  const ParamFrame* params;
  const DataFrame* data;
  const Scope* scope;
};

bool needs_push(const Value& context, const Frame* depths, size_t& work) {
  if (!depths) return true;
  if (detail::loose_equal(context, depths->context, work)) return false;
  return !(context.kind == Value::Kind::kNullContext && depths->context.is_json_null());
}

bool is_true(const Value& v) {
  return (v.kind == Value::Kind::kBool && v.boolean) ||
         (v.kind == Value::Kind::kJson && v.json->is_boolean() && v.json->get<bool>());
}
bool is_false(const Value& v) {
  return (v.kind == Value::Kind::kBool && !v.boolean) ||
         (v.kind == Value::Kind::kJson && v.json->is_boolean() && !v.json->get<bool>());
}

class Renderer {
 public:
  Renderer(const Template::Impl& tmpl, const RenderOptions& options, const Partials* partials,
           std::string& out)
      : options_(options),
        partials_(partials),
        out_(out),
        name_(&tmpl.name),
        out_limit_(options.max_output == 0 || options.max_output > detail::kNoLimit - out.size()
                       ? detail::kNoLimit
                       : out.size() + options.max_output),
        max_steps_(options.max_steps == 0 ? detail::kNoLimit : options.max_steps) {}

  Status run(const Program& root, const nlohmann::json& data) {
    DataFrame frame;
    frame.root = Value::of(data);
    Ctx c{Value(), nullptr, nullptr, &frame, nullptr};
    if (!program(&root, Value::of(data), c, nullptr, 0)) return error_;
    return Status::ok();
  }

 private:
  bool fail(int line, int column, const std::string& what) {
    error_ = Status::invalid(*name_ + ": line " + std::to_string(line) + ", column " +
                             std::to_string(column) + ": " + what);
    return false;
  }

  // ---- limits ----

  bool output_limit(const Node& at) {
    return fail(at.line, at.column,
                "the rendered part exceeds the output limit of " +
                    std::to_string(options_.max_output) + " bytes (max_output)");
  }

  bool step_limit(int line, int column) {
    return fail(line, column,
                "the render exceeds the step limit of " + std::to_string(options_.max_steps) +
                    " steps (max_steps)");
  }
  bool step_limit(const Node& at) { return step_limit(at.line, at.column); }

  // Steps left, as a bound on a conversion that is charged a step per byte.
  size_t steps_left() const { return steps_ < max_steps_ ? max_steps_ - steps_ : 0; }

  // Counts one step at `at` (a node visited, a block iteration).
  bool step(const Node& at) {
    ++steps_;
    return steps_ <= max_steps_ || step_limit(at);
  }

  // Bytes the output may still grow by.
  size_t room() const { return out_limit_ - out_.size(); }

  bool write(std::string_view text, const Node& at) {
    if (text.size() > room()) return output_limit(at);
    out_.append(text);
    return true;
  }

  bool write_escaped(std::string_view text, const Node& at) {
    // An entity is at most 6 bytes for 1: the exact size is counted only near the limit.
    if (text.size() > room() / 6 && escaped_size(text) > room()) return output_limit(at);
    escape_html(text, out_);
    return true;
  }

  bool write_value(const Value& v, const Node& at) {
    if (!detail::append_output(v, out_, out_limit_)) return output_limit(at);
    return true;
  }

  // Runs `p` with `self` as its context. `outer` gives the stacks; `values` are the block
  // parameters the helper hands the body.
  bool program(const Program* p, const Value& self, const Ctx& outer, const Value* values,
               size_t value_count) {
    if (!p) return true;
    // Failures abandon the whole render, so depth_ is put back only on success.
    if (++depth_ > kMaxProgramDepth && !p->body.empty()) {
      const Node& at = p->body.front();
      return fail(at.line, at.column,
                  "blocks and partials nested more than " + std::to_string(kMaxProgramDepth) +
                      " deep (recursive partial?)");
    }
    Ctx c = outer;
    c.self = self;
    Frame frame{self, outer.depths};
    if (needs_push(self, outer.depths, steps_)) c.depths = &frame;
    ParamFrame params{{}, 0, outer.params};
    if (!p->block_params.empty()) {
      for (size_t i = 0; i < value_count && i < 2; ++i) params.values[i] = values[i];
      params.count = std::min<size_t>(p->block_params.size(), 2);
      c.params = &params;
    }
    Scope scope{p, c.depths, c.params, outer.scope};
    if (!p->inlines.empty()) c.scope = &scope;

    for (const Node& node : p->body) {
      if (!step(node)) return false;
      switch (node.kind) {
        case Node::Kind::kContent:
          if (!write(node.value, node)) return false;
          break;
        case Node::Kind::kMustache:
          if (!mustache(node, c)) return false;
          break;
        case Node::Kind::kBlock:
          if (!block(node, c)) return false;
          break;
        case Node::Kind::kPartial:
        case Node::Kind::kPartialBlock:
          if (!partial(node, c)) return false;
          break;
        default:
          break;
      }
      // What the node's conversions read counts too; the nodes within it checked their own.
      if (steps_ > max_steps_) return step_limit(node);
    }
    --depth_;
    return true;
  }

  // ---- values ----

  // Resolves a path; `missing` tells whether some step found nothing (for strict mode).
  Value resolve(const PathExpr& path, const Ctx& c, bool& missing) {
    missing = false;
    Value v;
    size_t i = 0;
    bool falsy_stop = false;  // @data paths stop at any falsy value, as handlebars' do
    switch (path.head) {
      case PathExpr::Head::kBlockParam: {
        const ParamFrame* f = c.params;
        for (int k = 0; f && k < path.param_frame; ++k) f = f->parent;
        if (f && static_cast<size_t>(path.param_index) < f->count) v = f->values[path.param_index];
        if (v.is_undefined()) missing = true;
        break;
      }
      case PathExpr::Head::kData: {
        const DataFrame* d = c.data;
        for (int k = 0; d && k < path.depth; ++k) d = d->parent;
        falsy_stop = true;
        if (d && !path.parts.empty()) {
          const std::string& n = path.parts[0].name;
          if (n == "root")
            v = d->root;
          else if (n == "index")
            v = d->index;
          else if (n == "key")
            v = d->key;
          else if (n == "first")
            v = d->first;
          else if (n == "last")
            v = d->last;
        }
        i = 1;
        if (v.is_undefined()) {
          missing = true;
          return v;
        }
        break;
      }
      case PathExpr::Head::kContext: {
        if (path.depth == 0) {
          v = c.self;
        } else {
          const Frame* f = c.depths;
          for (int k = 0; f && k < path.depth; ++k) f = f->parent;
          if (f) v = f->context;
        }
        if (options_.compat && !path.scoped && path.depth == 0 && !path.parts.empty()) {
          // Mustache's rule: the first name is looked up through the whole context stack.
          const detail::Segment& seg = path.parts[0];
          v = Value();
          for (const Frame* f = c.depths; f; f = f->parent) {
            ++steps_;
            if (!detail::truthy(f->context)) continue;
            Value r = detail::property(f->context, seg.name, seg.index, steps_);
            if (!r.is_nullish()) {
              v = r;
              break;
            }
          }
          if (v.is_undefined()) missing = true;
          i = 1;
        }
        break;
      }
    }
    for (; i < path.parts.size(); ++i) {
      if (falsy_stop ? !detail::truthy(v) : v.is_nullish()) {
        missing = true;
        return v;
      }
      const detail::Segment& seg = path.parts[i];
      v = detail::property(v, seg.name, seg.index, steps_);
      if (v.is_undefined()) missing = true;
    }
    return v;
  }

  bool missing_error(const PathExpr& path) {
    return fail(path.line, path.column, "\"" + path.original + "\" is not defined (strict mode)");
  }

  bool eval_path(const PathExpr& path, const Ctx& c, bool strict, Value& out) {
    bool missing = false;
    out = resolve(path, c, missing);
    if (strict && missing && options_.strict) return missing_error(path);
    return true;
  }

  bool eval(const Expr& e, const Ctx& c, bool strict, Value& out) {
    switch (e.kind) {
      case Expr::Kind::kPath:
        return eval_path(e.path, c, strict, out);
      case Expr::Kind::kLiteral:
        out = e.literal.is_discarded() ? Value() : Value::of(e.literal);
        return true;
      case Expr::Kind::kCall:
        return eval_call(*e.call, c, out);
    }
    return true;
  }

  bool eval_call(const Call& call, const Ctx& c, Value& out) {
    switch (call.helper) {
      case Call::Helper::kLookup: {
        Value obj, field;
        if (!eval(call.params[0], c, true, obj) || !eval(call.params[1], c, true, field)) {
          return false;
        }
        if (!detail::truthy(obj)) {
          out = obj;
          return true;
        }
        if (field.kind == Value::Kind::kJson && field.json->is_string()) {
          const std::string& key = field.json->get_ref<const std::string&>();
          out = detail::property(obj, key, detail::array_index(key), steps_);
          return true;
        }
        // An array's String() is charged a step per byte, so it is built no further than the
        // steps left.
        std::string key;
        if (!detail::append_js_string(field, key,
                                      field.is_array() ? steps_left() : detail::kNoLimit)) {
          return step_limit(call.line, call.column);
        }
        if (field.is_array()) steps_ += key.size();
        out = detail::property(obj, key, detail::array_index(key), steps_);
        return true;
      }
      case Call::Helper::kLog:
        out = Value();
        return true;
      default:
        return eval_path(call.path, c, true, out);
    }
  }

  // ---- statements ----

  bool mustache(const Node& node, const Ctx& c) {
    if (node.call.helper == Call::Helper::kLog) return true;
    Value v;
    if (!eval_call(node.call, c, v)) return false;
    if (!node.escaped || options_.escape == Escape::kNone) return write_value(v, node);
    if (v.kind == Value::Kind::kJson && v.json->is_string()) {
      return write_escaped(v.json->get_ref<const std::string&>(), node);
    }
    if (v.kind == Value::Kind::kString) return write_escaped(v.string, node);
    if (v.kind == Value::Kind::kJson && (v.json->is_array() || v.json->is_object())) {
      // Escaping never shortens, so a String() longer than the room left is already too long.
      std::string text;
      if (!detail::append_output(v, text, room())) return output_limit(node);
      return write_escaped(text, node);
    }
    return write_value(v, node);  // numbers, booleans: nothing to escape
  }

  // `this` as helpers see it.
  static Value helper_this(const Ctx& c) {
    return c.self.is_nullish() ? Value::null_context() : c.self;
  }

  bool block(const Node& node, const Ctx& c) {
    const Call& call = node.call;
    switch (call.helper) {
      case Call::Helper::kIf:
      case Call::Helper::kUnless: {
        Value cond;
        if (!eval(call.params[0], c, false, cond)) return false;
        bool include_zero = false;
        for (const auto& h : call.hash) {
          if (h.key != "includeZero") continue;
          Value z;
          if (!eval(h.value, c, false, z)) return false;
          include_zero = detail::truthy(z);
        }
        bool falsy = (!include_zero && !detail::truthy(cond)) || detail::is_empty(cond);
        if (call.helper == Call::Helper::kUnless) falsy = !falsy;
        return program(falsy ? node.inverse.get() : node.program.get(), helper_this(c), c, nullptr,
                       0);
      }
      case Call::Helper::kWith: {
        Value v;
        if (!eval(call.params[0], c, true, v)) return false;
        if (!detail::is_empty(v)) return program(node.program.get(), v, c, &v, 1);
        return program(node.inverse.get(), helper_this(c), c, nullptr, 0);
      }
      case Call::Helper::kEach: {
        Value v;
        if (!eval(call.params[0], c, true, v)) return false;
        size_t count = 0;
        if (!each(node, v, c, count)) return false;
        if (count == 0) return program(node.inverse.get(), helper_this(c), c, nullptr, 0);
        return true;
      }
      default:
        break;
    }

    // A section, {{#name}}: handlebars' blockHelperMissing.
    Value v;
    if (!eval_path(call.path, c, true, v)) return false;
    if (is_true(v)) return program(node.program.get(), c.self, c, nullptr, 0);
    if (is_false(v) || v.is_nullish()) return program(node.inverse.get(), c.self, c, nullptr, 0);
    if (v.is_array()) {
      if (v.json->empty()) return program(node.inverse.get(), c.self, c, nullptr, 0);
      size_t count = 0;
      return each(node, v, c, count);
    }
    return program(node.program.get(), v, c, nullptr, 0);
  }

  bool each(const Node& node, const Value& v, const Ctx& c, size_t& count) {
    DataFrame frame = *c.data;
    frame.parent = c.data;
    Ctx inner = c;
    inner.data = &frame;
    return detail::for_each_entry(v, [&](const Value& key, const Value& item, size_t i, bool last) {
      if (!step(node)) return false;
      frame.key = key;
      frame.index = Value::of_number(static_cast<double>(i));
      frame.first = Value::of_bool(i == 0);
      frame.last = Value::of_bool(last);
      ++count;
      Value values[2] = {item, key};
      return program(node.program.get(), item, inner, values, 2);
    });
  }

  bool partial(const Node& node, const Ctx& c) {
    // The partial's name.
    std::string dynamic;
    std::string_view name = node.partial_name;
    if (node.dynamic_name) {
      Value n;
      if (!eval(*node.dynamic_name, c, true, n)) return false;
      if (!detail::append_js_string(n, dynamic, n.is_array() ? steps_left() : detail::kNoLimit)) {
        return step_limit(node);
      }
      if (n.is_array()) steps_ += dynamic.size();
      name = dynamic;
    }

    // Its context: the argument or the current one, with hash arguments merged in.
    Value context = c.self;
    if (!node.call.params.empty() && !eval(node.call.params[0], c, true, context)) return false;
    detail::Overlay overlay;
    if (!node.call.hash.empty()) {
      overlay.base = context;
      for (const auto& h : node.call.hash) {
        Value hv;
        if (!eval(h.value, c, true, hv)) return false;
        overlay.hash.emplace_back(h.key, hv);
      }
      context = Value();
      context.kind = Value::Kind::kOverlay;
      context.overlay = &overlay;
    }

    // A partial block hands its body to the partial as @partial-block, with the inline
    // partials the body defines.
    Ctx call = c;
    PartialBlock block{nullptr, nullptr, nullptr, nullptr};
    DataFrame frame;
    Scope block_scope{nullptr, nullptr, nullptr, nullptr};
    if (node.kind == Node::Kind::kPartialBlock) {
      block = {node.program.get(), c.depths, c.params, c.data->partial_block};
      frame = *c.data;
      frame.parent = c.data;
      frame.partial_block = &block;
      call.data = &frame;
      if (!node.program->inlines.empty()) {
        block_scope = {node.program.get(), c.depths, c.params, c.scope};
        call.scope = &block_scope;
      }
    }

    // Find it: @partial-block, inline partials in scope, then the caller's partials.
    const PartialBlock* run_block = nullptr;
    const detail::InlinePartial* inline_partial = nullptr;
    const Scope* owner = nullptr;
    const Template* tmpl = nullptr;
    if (name == "@partial-block") {
      run_block = c.data->partial_block;
    } else {
      for (const Scope* s = c.scope; s && !inline_partial; s = s->parent) {
        ++steps_;
        for (const auto& inl : s->program->inlines) {
          if (inl.name == name) {
            inline_partial = &inl;
            owner = s;
            break;
          }
        }
      }
      if (!inline_partial && partials_) {
        auto it = partials_->find(name);
        if (it != partials_->end() && it->second) tmpl = it->second.get();
      }
    }
    if (!run_block && !inline_partial && !tmpl) {
      if (node.kind == Node::Kind::kPartialBlock) {
        run_block = &block;
      } else {
        return fail(node.line, node.column,
                    "the partial " + std::string(name) + " could not be found");
      }
    }
    if (partial_depth_ >= kMaxPartialDepth) {
      return fail(node.line, node.column,
                  "partials nested more than " + std::to_string(kMaxPartialDepth) +
                      " deep (recursive partial?)");
    }

    ++partial_depth_;
    size_t start = out_.size();
    bool ok;
    if (run_block) {
      DataFrame block_frame = *call.data;
      block_frame.parent = call.data;
      block_frame.partial_block = run_block->outer;
      Ctx stacks = call;
      stacks.depths = run_block->depths;
      stacks.params = run_block->params;
      stacks.data = &block_frame;
      ok = program(run_block->body, context, stacks, nullptr, 0);
    } else if (inline_partial) {
      Ctx stacks = call;
      stacks.depths = owner->depths;
      stacks.params = owner->params;
      ok = program(inline_partial->body, context, stacks, nullptr, 0);
    } else {
      Ctx stacks = call;
      stacks.depths = options_.compat ? c.depths : nullptr;
      stacks.params = nullptr;
      const std::string* saved = name_;
      name_ = &tmpl->impl().name;
      ok = program(tmpl->impl().root.get(), context, stacks, nullptr, 0);
      name_ = saved;
    }
    --partial_depth_;
    if (!ok) return false;
    if (!node.indent.empty()) return indent_from(start, node.indent, node);
    return true;
  }

  // A standalone partial's indentation goes before every line it wrote (not after a final
  // newline), as handlebars.js does. Done in place, from the last line back, so the partial's
  // output is not copied and the room the indentation needs is known before it is taken.
  bool indent_from(size_t start, const std::string& indent, const Node& at) {
    size_t lines = 0;
    for (size_t i = start; i < out_.size(); ++lines) {
      size_t nl = out_.find('\n', i);
      if (nl == std::string::npos) {
        ++lines;
        break;
      }
      i = nl + 1;
    }
    if (lines == 0) return true;
    if (lines > room() / indent.size()) return output_limit(at);

    size_t end = out_.size();
    size_t to = end + lines * indent.size();
    out_.resize(to);
    while (end > start) {
      size_t line_start = end - 1;  // the line's last byte may be its newline
      while (line_start > start && out_[line_start - 1] != '\n') --line_start;
      size_t len = end - line_start;
      to -= len;
      std::memmove(out_.data() + to, out_.data() + line_start, len);
      to -= indent.size();
      std::memcpy(out_.data() + to, indent.data(), indent.size());
      end = line_start;
    }
    return true;
  }

  const RenderOptions& options_;
  const Partials* partials_;
  std::string& out_;
  const std::string* name_;
  const size_t out_limit_;  // the size out_ may reach: its size at the start plus max_output
  const size_t max_steps_;
  size_t steps_ = 0;
  Status error_;
  int partial_depth_ = 0;
  int depth_ = 0;  // programs running
};

}  // namespace

Result<std::shared_ptr<const Template>> Template::compile(std::string_view source,
                                                          std::string_view name) {
  auto parsed = detail::parse_template(source, name);
  if (!parsed.is_ok()) return parsed.status();
  auto impl = std::make_unique<Impl>();
  impl->name = std::string(name);
  impl->root = std::move(parsed->root);
  impl->root_variables = std::move(parsed->root_variables);
  return std::shared_ptr<const Template>(std::make_shared<Template>(std::move(impl)));
}

Status Template::render(const nlohmann::json& data, const RenderOptions& options, std::string& out,
                        const Partials* partials) const {
  Renderer renderer(*impl_, options, partials, out);
  return renderer.run(*impl_->root, data);
}

Result<std::string> Template::render(const nlohmann::json& data, const RenderOptions& options,
                                     const Partials* partials) const {
  std::string out;
  Status s = render(data, options, out, partials);
  if (!s.is_ok()) return s;
  return out;
}

const std::vector<VariableRef>& Template::root_variables() const { return impl_->root_variables; }

const std::string& Template::name() const { return impl_->name; }

Template::Template(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Template::~Template() = default;

void escape_html(std::string_view text, std::string& out) {
  size_t run = 0;  // start of the pending run of plain bytes
  for (size_t i = 0; i < text.size(); ++i) {
    const char* entity;
    switch (text[i]) {
      case '&':
        entity = "&amp;";
        break;
      case '<':
        entity = "&lt;";
        break;
      case '>':
        entity = "&gt;";
        break;
      case '"':
        entity = "&quot;";
        break;
      case '\'':
        entity = "&#x27;";
        break;
      case '`':
        entity = "&#x60;";
        break;
      case '=':
        entity = "&#x3D;";
        break;
      default:
        continue;
    }
    out.append(text.data() + run, i - run);
    out += entity;
    run = i + 1;
  }
  out.append(text.data() + run, text.size() - run);
}

}  // namespace magnetic::render
