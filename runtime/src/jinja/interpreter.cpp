#include "interpreter.h"

#include <cmath>
#include <ctime>

#include "error.h"

namespace halyard::runtime::jinja {
namespace {

[[noreturn]] void undefined_error(const Value& v, int line) {
  throw JinjaError(v.s.empty() ? std::string("a value is undefined") : v.s, line);
}

[[noreturn]] void operand_error(const std::string& op, const Value& a, const Value& b, int line) {
  if (a.is_undefined())
    undefined_error(a, line);
  if (b.is_undefined())
    undefined_error(b, line);
  throw JinjaError("unsupported operand types for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'",
                   line);
}

bool is_int(const Value& v) {
  return v.kind == Value::Kind::kInt || v.kind == Value::Kind::kBool;
}
std::int64_t int_of(const Value& v) {
  return v.kind == Value::Kind::kBool ? std::int64_t{v.b} : v.i;
}

Value int_or_float(bool overflow, std::int64_t r, double approx) {
  return overflow ? Value::number(approx) : Value::integer(r);
}

// Python's printf-style str % args for %s, %r, %d, %i, %f, %x and %%.
std::string percent_format(const std::string& fmt, const Value& args, int line) {
  List items = args.is_list() ? *args.list : List{args};
  std::size_t next = 0;
  std::string out;
  for (std::size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size())
      throw JinjaError("incomplete format", line);
    const char c = fmt[i];
    if (c == '%') {
      out += '%';
      continue;
    }
    if (next >= items.size())
      throw JinjaError("not enough arguments for format string", line);
    const Value& a = items[next++];
    switch (c) {
      case 's':
        out += to_str(a);
        break;
      case 'r':
        out += to_repr(a);
        break;
      case 'd':
      case 'i':
        if (!a.is_number())
          throw JinjaError("%d format: a number is required, not " + a.type_name(), line);
        if (!is_int(a) && !(std::fabs(a.f) < 9.2e18))
          throw JinjaError("%d format: the number is out of range", line);
        out += std::to_string(is_int(a) ? int_of(a) : static_cast<std::int64_t>(a.f));
        break;
      case 'f': {
        if (!a.is_number())
          throw JinjaError("%f format: a number is required, not " + a.type_name(), line);
        char buf[64];
        std::snprintf(buf, sizeof buf, "%f", a.as_double());
        out += buf;
        break;
      }
      default:
        throw JinjaError(std::string("unsupported format character '") + c + "'", line);
    }
  }
  if (next < items.size() && args.is_list())
    throw JinjaError("not all arguments converted during string formatting", line);
  return out;
}

bool contains(const Value& container, const Value& item, int line) {
  switch (container.kind) {
    case Value::Kind::kString:
      if (!item.is_string())
        throw JinjaError("'in <string>' requires string as left operand, not " + item.type_name(), line);
      return container.s.find(item.s) != std::string::npos;
    case Value::Kind::kList:
      for (const Value& v : *container.list)
        if (values_equal(v, item))
          return true;
      return false;
    case Value::Kind::kDict:
      return container.dict->find(item) != nullptr;
    case Value::Kind::kUndefined:
      return false;
    default:
      throw JinjaError("argument of type '" + container.type_name() + "' is not iterable", line);
  }
}

}  // namespace

// Bounds the C++ stack a render uses: each macro call may nest the source's whole depth again.
struct EvalDepth {
  static constexpr int kMax = 1500;
  EvalDepth(Interpreter& in, int line) : in_(in) {
    if (++in_.eval_depth_ > kMax)
      throw JinjaLimitError("evaluation nests more than " + std::to_string(kMax) + " levels", line);
  }
  ~EvalDepth() { --in_.eval_depth_; }
  Interpreter& in_;
};

Interpreter::Interpreter(const Limits& limits, std::optional<std::int64_t> now_unix_seconds)
    : limits_(limits), now_(now_unix_seconds) {
  scopes_.push_back(push_frame());
  install_globals(*this);
}

Interpreter::~Interpreter() {
  // Frames can reach themselves (a macro's caller stored in a namespace): empty them all so
  // every shared value is released.
  for (auto& f : all_frames_)
    f->clear();
}

std::shared_ptr<Interpreter::Frame> Interpreter::push_frame() {
  auto f = std::make_shared<Frame>();
  all_frames_.push_back(f);
  return f;
}

void Interpreter::set_global(const std::string& name, Value v) {
  (*scopes_.front())[name] = std::move(v);
}

std::int64_t Interpreter::now() const {
  return now_ ? *now_ : static_cast<std::int64_t>(std::time(nullptr));
}

void Interpreter::check_size(std::size_t bytes, int line) const {
  if (bytes > limits_.max_output_bytes)
    throw JinjaLimitError("the rendering passed " + std::to_string(limits_.max_output_bytes) + " bytes", line);
}

void Interpreter::count_iterations(std::int64_t n, int line) {
  iterations_ += n;
  if (iterations_ > limits_.max_loop_iterations)
    throw JinjaLimitError(
        "the template ran more than " + std::to_string(limits_.max_loop_iterations) + " loop iterations", line);
}

std::string Interpreter::render(const Program& program) {
  std::string out;
  out_ = &out;
  (void)exec(program.body);
  out_ = nullptr;
  return out;
}

void Interpreter::write(const std::string& s, int line) {
  out_->append(s);
  check_size(out_->size(), line);
}

std::string Interpreter::capture(const Body& body) {
  std::string text;
  std::string* saved = out_;
  out_ = &text;
  try {
    (void)exec(body);
  } catch (...) {
    out_ = saved;
    throw;
  }
  out_ = saved;
  return text;
}

Value Interpreter::lookup(const std::string& name) const {
  for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
    auto f = (*it)->find(name);
    if (f != (*it)->end())
      return f->second;
  }
  return Value::undefined("'" + name + "' is undefined");
}

void Interpreter::assign(const std::string& name, Value v) {
  (*scopes_.back())[name] = std::move(v);
}

void Interpreter::assign_targets(const std::vector<std::string>& targets, const Value& v, int line) {
  if (targets.size() == 1) {
    assign(targets[0], v);
    return;
  }
  List items = iterate(v, line);
  if (items.size() != targets.size())
    throw JinjaError(
        "cannot unpack " + std::to_string(items.size()) + " values into " + std::to_string(targets.size()) + " names",
        line);
  for (std::size_t i = 0; i < targets.size(); ++i)
    assign(targets[i], items[i]);
}

Interpreter::Flow Interpreter::exec(const Body& body) {
  for (const NodePtr& n : body) {
    const Flow f = exec(*n);
    if (f != Flow::kNormal)
      return f;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec(const Node& n) {
  EvalDepth guard(*this, n.line);
  switch (n.kind) {
    case Node::Kind::kText:
      write(n.text, n.line);
      return Flow::kNormal;
    case Node::Kind::kPrint:
      write(to_str(eval(*n.expr)), n.line);
      return Flow::kNormal;
    case Node::Kind::kIf:
      for (const auto& [cond, body] : n.branches)
        if (!cond || eval(*cond).truthy())
          return exec(body);
      return Flow::kNormal;
    case Node::Kind::kFor:
      return exec_for(n);
    case Node::Kind::kSet:
      exec_set(n);
      return Flow::kNormal;
    case Node::Kind::kSetBlock: {
      Value v = Value::string(capture(n.body));
      if (n.expr)
        v = eval_filter(*n.expr, &v);
      assign(n.targets[0], v);
      return Flow::kNormal;
    }
    case Node::Kind::kMacro:
      define_macro(n);
      return Flow::kNormal;
    case Node::Kind::kCallBlock:
      exec_call_block(n);
      return Flow::kNormal;
    case Node::Kind::kFilterBlock: {
      const Value content = Value::string(capture(n.body));
      write(to_str(eval_filter(*n.expr, &content)), n.line);
      return Flow::kNormal;
    }
    case Node::Kind::kBreak:
      return Flow::kBreak;
    case Node::Kind::kContinue:
      return Flow::kContinue;
    case Node::Kind::kScope:
      return exec(n.body);
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec_for(const Node& n) {
  const Value seq = eval(*n.expr);
  if (seq.is_undefined() == false && !seq.is_list() && !seq.is_dict() && !seq.is_string())
    throw JinjaError("'" + seq.type_name() + "' object is not iterable", n.line);
  List items = iterate(seq, n.line);
  scopes_.push_back(push_frame());
  struct Pop {
    ~Pop() { s.pop_back(); }
    std::vector<std::shared_ptr<Frame>>& s;
  } pop{scopes_};
  if (n.condition) {
    // `for x in xs if cond`: the condition sees the loop variables; loop.length counts what passes.
    List kept;
    for (const Value& v : items) {
      count_iterations(1, n.line);
      assign_targets(n.targets, v, n.line);
      if (eval(*n.condition).truthy())
        kept.push_back(v);
    }
    items = std::move(kept);
  }
  const auto len = static_cast<std::int64_t>(items.size());
  for (std::int64_t i = 0; i < len; ++i) {
    count_iterations(1, n.line);
    const auto at = static_cast<std::size_t>(i);
    Value loop = Value::new_dict();
    Dict& d = *loop.dict;
    d.set(Value::string("index"), Value::integer(i + 1));
    d.set(Value::string("index0"), Value::integer(i));
    d.set(Value::string("revindex"), Value::integer(len - i));
    d.set(Value::string("revindex0"), Value::integer(len - i - 1));
    d.set(Value::string("first"), Value::boolean(i == 0));
    d.set(Value::string("last"), Value::boolean(i == len - 1));
    d.set(Value::string("length"), Value::integer(len));
    d.set(Value::string("depth"), Value::integer(1));
    d.set(Value::string("depth0"), Value::integer(0));
    d.set(Value::string("previtem"), i > 0 ? items[at - 1] : Value::undefined("there is no previous item"));
    d.set(Value::string("nextitem"), i + 1 < len ? items[at + 1] : Value::undefined("there is no next item"));
    d.set(Value::string("cycle"), Value::function([i](Interpreter&, CallArgs& a) {
            if (a.positional.empty())
              throw JinjaError("loop.cycle needs at least one value", a.line);
            return a.positional[static_cast<std::size_t>(i) % a.positional.size()];
          }));
    assign("loop", loop);
    assign_targets(n.targets, items[at], n.line);
    if (exec(n.body) == Flow::kBreak)
      break;
  }
  if (len == 0)
    (void)exec(n.else_body);
  return Flow::kNormal;
}

void Interpreter::exec_set(const Node& n) {
  Value v = eval(*n.expr);
  if (n.target_expr) {
    const Expr& t = *n.target_expr;
    Value obj = lookup(t.children[0]->name);
    if (!obj.is_dict() || !obj.dict->is_namespace)
      throw JinjaError("cannot assign attribute '" + t.name + "' on '" + t.children[0]->name +
                           "': only a namespace() takes attributes",
                       n.line);
    if (value_reaches(v, obj.dict.get()))
      throw JinjaError("a namespace cannot hold itself", n.line);
    obj.dict->set(Value::string(t.name), std::move(v));
    check_nesting(obj, n.line);
    return;
  }
  assign_targets(n.targets, v, n.line);
}

void Interpreter::define_macro(const Node& n) {
  const Node* node = &n;
  assign(n.name, Value::function([node](Interpreter& in, CallArgs& args) {
           Value caller = Value::undefined("'caller' is undefined");
           for (auto it = args.keyword.begin(); it != args.keyword.end(); ++it) {
             if (it->first == "caller") {
               caller = it->second;
               args.keyword.erase(it);
               break;
             }
           }
           return in.invoke_macro(*node, args, caller);
         }));
}

Value Interpreter::invoke_macro(const Node& macro, CallArgs& args, Value caller) {
  if (call_depth_ >= limits_.max_call_depth)
    throw JinjaLimitError("macro calls nest more than " + std::to_string(limits_.max_call_depth) + " deep", args.line);
  ++call_depth_;
  std::vector<std::shared_ptr<Frame>> saved = std::move(scopes_);
  scopes_ = {saved.front(), push_frame()};
  struct Restore {
    ~Restore() {
      in.scopes_ = std::move(saved);
      --in.call_depth_;
    }
    Interpreter& in;
    std::vector<std::shared_ptr<Frame>>& saved;
  } restore{*this, saved};
  List varargs;
  for (std::size_t i = 0; i < args.positional.size(); ++i) {
    if (i < macro.params.size())
      assign(macro.params[i], args.positional[i]);
    else
      varargs.push_back(args.positional[i]);
  }
  Value kwargs = Value::new_dict();
  for (auto& [k, v] : args.keyword) {
    bool is_param = false;
    for (const auto& p : macro.params)
      is_param = is_param || p == k;
    if (is_param)
      assign(k, v);
    else
      kwargs.dict->set(Value::string(k), v);
  }
  for (std::size_t i = 0; i < macro.params.size(); ++i) {
    if (scopes_.back()->count(macro.params[i]))
      continue;
    assign(macro.params[i], macro.defaults[i] ? eval(*macro.defaults[i])
                                              : Value::undefined("parameter '" + macro.params[i] + "' was not given"));
  }
  assign("varargs", Value::new_list(std::move(varargs)));
  assign("kwargs", kwargs);
  assign("caller", caller);
  return Value::string(capture(macro.body));
}

void Interpreter::exec_call_block(const Node& n) {
  const Expr& call_expr = *n.expr;
  const Node* node = &n;
  std::vector<std::shared_ptr<Frame>> site = scopes_;
  Value caller = Value::function([node, site](Interpreter& in, CallArgs& args) {
    std::vector<std::shared_ptr<Frame>> saved = std::move(in.scopes_);
    in.scopes_ = site;
    in.scopes_.push_back(in.push_frame());
    struct Restore {
      ~Restore() { in.scopes_ = std::move(saved); }
      Interpreter& in;
      std::vector<std::shared_ptr<Frame>>& saved;
    } restore{in, saved};
    for (std::size_t i = 0; i < node->params.size(); ++i) {
      Value v = args.get(i, node->params[i]);
      if (v.is_undefined() && node->defaults[i])
        v = in.eval(*node->defaults[i]);
      in.assign(node->params[i], v);
    }
    return Value::string(in.capture(node->body));
  });
  Value callee = eval(*call_expr.children[0]);
  CallArgs args;
  args.line = n.line;
  for (std::size_t i = 1; i < call_expr.children.size(); ++i)
    args.positional.push_back(eval(*call_expr.children[i]));
  for (const auto& [k, v] : call_expr.kwargs)
    args.keyword.emplace_back(k, eval(*v));
  args.keyword.emplace_back("caller", caller);
  write(to_str(call(callee, args, "the called macro", n.line)), n.line);
}

Value Interpreter::call(const Value& callee, CallArgs& args, const std::string& what, int line) {
  if (callee.is_undefined())
    undefined_error(callee, line);
  if (callee.kind != Value::Kind::kFunction)
    throw JinjaError(what + " ('" + callee.type_name() + "' object) is not callable", line);
  args.line = line;
  return (*callee.fn)(*this, args);
}

Value Interpreter::eval(const Expr& e) {
  EvalDepth guard(*this, e.line);
  switch (e.kind) {
    case Expr::Kind::kLiteral:
      return e.literal;
    case Expr::Kind::kName:
      return lookup(e.name);
    case Expr::Kind::kList:
    case Expr::Kind::kTuple: {
      Value v = Value::new_list();
      for (const auto& c : e.children)
        v.list->push_back(eval(*c));
      check_nesting(v, e.line);
      return v;
    }
    case Expr::Kind::kDict: {
      Value v = Value::new_dict();
      for (std::size_t i = 0; i + 1 < e.children.size(); i += 2) {
        Value k = eval(*e.children[i]);
        if (k.is_list() || k.is_dict())
          throw JinjaError("unhashable type: '" + k.type_name() + "'", e.line);
        v.dict->set(std::move(k), eval(*e.children[i + 1]));
      }
      check_nesting(v, e.line);
      return v;
    }
    case Expr::Kind::kGetAttr:
      return eval_getattr(e);
    case Expr::Kind::kGetItem:
      return eval_getitem(e);
    case Expr::Kind::kSlice:
      return eval_slice(e);
    case Expr::Kind::kCall:
      return eval_call(e);
    case Expr::Kind::kFilter:
      return eval_filter(e, nullptr);
    case Expr::Kind::kTest: {
      const Value operand = eval(*e.children[0]);
      CallArgs args;
      args.line = e.line;
      for (std::size_t i = 1; i < e.children.size(); ++i)
        args.positional.push_back(eval(*e.children[i]));
      for (const auto& [k, v] : e.kwargs)
        args.keyword.emplace_back(k, eval(*v));
      const bool r = apply_test(*this, e.name, operand, args);
      return Value::boolean(e.negated ? !r : r);
    }
    case Expr::Kind::kUnary: {
      const Value v = eval(*e.children[0]);
      if (v.is_undefined())
        undefined_error(v, e.line);
      if (!v.is_number())
        throw JinjaError("bad operand type for unary " + e.name + ": '" + v.type_name() + "'", e.line);
      if (e.name == "+")
        return is_int(v) ? Value::integer(int_of(v)) : v;
      if (is_int(v))
        return int_of(v) == INT64_MIN ? Value::number(-static_cast<double>(INT64_MIN)) : Value::integer(-int_of(v));
      return Value::number(-v.f);
    }
    case Expr::Kind::kBinary:
      return eval_binary(e);
    case Expr::Kind::kCompare:
      return eval_compare(e);
    case Expr::Kind::kAnd: {
      Value a = eval(*e.children[0]);
      return a.truthy() ? eval(*e.children[1]) : a;
    }
    case Expr::Kind::kOr: {
      Value a = eval(*e.children[0]);
      return a.truthy() ? a : eval(*e.children[1]);
    }
    case Expr::Kind::kNot:
      return Value::boolean(!eval(*e.children[0]).truthy());
    case Expr::Kind::kCondition:
      if (eval(*e.children[1]).truthy())
        return eval(*e.children[0]);
      return e.children[2] ? eval(*e.children[2]) : Value::undefined("the condition was false and has no else");
  }
  return Value::undefined();
}

// jinja2's object_type_repr: "None" for None, "<type> object" otherwise (its undefined messages
// quote the first for attributes and not for elements).
static std::string type_repr(const Value& v) {
  return v.is_none() ? std::string("None") : v.type_name() + " object";
}

Value Interpreter::eval_getattr(const Expr& e) {
  const Value obj = eval(*e.children[0]);
  if (obj.is_undefined())
    undefined_error(obj, e.line);
  bool found = false;
  Value v = get_attribute(*this, obj, e.name, e.line, found);
  if (!found)
    return Value::undefined("'" + type_repr(obj) + "' has no attribute '" + e.name + "'");
  return v;
}

Value Interpreter::eval_getitem(const Expr& e) {
  const Value obj = eval(*e.children[0]);
  if (obj.is_undefined())
    undefined_error(obj, e.line);
  const Value key = eval(*e.children[1]);
  bool found = false;
  Value v = get_item(obj, key, found);
  if (found)
    return v;
  if (key.is_string()) {  // jinja2 falls back to the attribute (a method) of that name
    v = get_attribute(*this, obj, key.s, e.line, found);
    if (found)
      return v;
  }
  if (!key.is_string())
    return Value::undefined(type_repr(obj) + " has no element " + to_repr(key));
  return Value::undefined("'" + type_repr(obj) + "' has no attribute " + to_repr(key));
}

Value Interpreter::eval_slice(const Expr& e) {
  const Value obj = eval(*e.children[0]);
  if (obj.is_undefined())
    undefined_error(obj, e.line);
  auto bound = [&](const ExprPtr& p) -> std::optional<std::int64_t> {
    if (!p)
      return std::nullopt;
    const Value v = eval(*p);
    if (v.is_none())
      return std::nullopt;
    if (!is_int(v))
      throw JinjaError("slice indices must be integers or None", e.line);
    return int_of(v);
  };
  const auto start = bound(e.children[1]), stop = bound(e.children[2]), step_opt = bound(e.children[3]);
  const std::int64_t step = step_opt.value_or(1);
  if (step == 0)
    throw JinjaError("slice step cannot be zero", e.line);
  std::vector<std::string> chars;
  std::int64_t len = 0;
  if (obj.is_string()) {
    chars = utf8_chars(obj.s);
    len = static_cast<std::int64_t>(chars.size());
  } else if (obj.is_list()) {
    len = static_cast<std::int64_t>(obj.list->size());
  } else {
    throw JinjaError("'" + obj.type_name() + "' object is not subscriptable", e.line);
  }
  // Python's slice.indices.
  auto adjust = [&](std::optional<std::int64_t> v, std::int64_t dflt) {
    if (!v)
      return dflt;
    std::int64_t x = *v;
    if (x < 0) {
      x += len;
      if (x < 0)
        x = step < 0 ? -1 : 0;
    } else if (x >= len) {
      x = step < 0 ? len - 1 : len;
    }
    return x;
  };
  const std::int64_t b = adjust(start, step < 0 ? len - 1 : 0);
  const std::int64_t en = adjust(stop, step < 0 ? -1 : len);
  std::string s;
  List l;
  for (std::int64_t i = b; step > 0 ? i < en : i > en;) {
    if (obj.is_string())
      s += chars[static_cast<std::size_t>(i)];
    else
      l.push_back((*obj.list)[static_cast<std::size_t>(i)]);
    if (__builtin_add_overflow(i, step, &i))
      break;  // a step past INT64 range leaves the sequence
  }
  return obj.is_string() ? Value::string(std::move(s)) : Value::new_list(std::move(l));
}

Value Interpreter::eval_call(const Expr& e) {
  const Expr& target = *e.children[0];
  Value callee = eval(target);
  CallArgs args;
  args.line = e.line;
  for (std::size_t i = 1; i < e.children.size(); ++i)
    args.positional.push_back(eval(*e.children[i]));
  for (const auto& [k, v] : e.kwargs)
    args.keyword.emplace_back(k, eval(*v));
  std::string what = target.kind == Expr::Kind::kName      ? "'" + target.name + "'"
                     : target.kind == Expr::Kind::kGetAttr ? "'" + target.name + "'"
                                                           : std::string("the called value");
  return call(callee, args, what, e.line);
}

Value Interpreter::eval_filter(const Expr& e, const Value* block_content) {
  Value operand;
  if (!e.children[0]) {
    operand = *block_content;
  } else if (block_content && e.children[0]->kind == Expr::Kind::kFilter) {
    operand = eval_filter(*e.children[0], block_content);
  } else {
    operand = eval(*e.children[0]);
  }
  CallArgs args;
  args.line = e.line;
  for (std::size_t i = 1; i < e.children.size(); ++i)
    args.positional.push_back(eval(*e.children[i]));
  for (const auto& [k, v] : e.kwargs)
    args.keyword.emplace_back(k, eval(*v));
  return apply_filter(*this, e.name, operand, args);
}

Value Interpreter::eval_compare(const Expr& e) {
  Value left = eval(*e.children[0]);
  for (std::size_t i = 0; i < e.ops.size(); ++i) {
    Value right = eval(*e.children[i + 1]);
    const std::string& op = e.ops[i];
    bool r;
    if (op == "==") {
      r = values_equal(left, right);
    } else if (op == "!=") {
      r = !values_equal(left, right);
    } else if (op == "in") {
      r = contains(right, left, e.line);
    } else if (op == "not in") {
      r = !contains(right, left, e.line);
    } else {
      if (left.is_undefined())
        undefined_error(left, e.line);
      if (right.is_undefined())
        undefined_error(right, e.line);
      const int c = values_compare(left, right, e.line);
      r = op == "<" ? c < 0 : op == "<=" ? c <= 0 : op == ">" ? c > 0 : c >= 0;
    }
    if (!r)
      return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

Value Interpreter::eval_binary(const Expr& e) {
  const Value a = eval(*e.children[0]);
  const Value b = eval(*e.children[1]);
  const std::string& op = e.name;
  const int line = e.line;
  if (op == "~") {
    std::string s = to_str(a) + to_str(b);
    check_size(s.size(), line);
    return Value::string(std::move(s));
  }
  const bool ints = is_int(a) && is_int(b);
  const bool nums = a.is_number() && b.is_number();
  if (op == "+") {
    if (ints) {
      std::int64_t r;
      const bool o = __builtin_add_overflow(int_of(a), int_of(b), &r);
      return int_or_float(o, r, a.as_double() + b.as_double());
    }
    if (nums)
      return Value::number(a.as_double() + b.as_double());
    if (a.is_string() && b.is_string()) {
      check_size(a.s.size() + b.s.size(), line);
      if (a.markup == b.markup) {
        Value r = Value::string(a.s + b.s);
        r.markup = a.markup;
        return r;
      }
      // Markup + str escapes the plain side (markupsafe).
      Value r = Value::string(a.markup ? a.s + html_escape(b.s) : html_escape(a.s) + b.s);
      r.markup = true;
      check_size(r.s.size(), line);
      return r;
    }
    if (a.is_list() && b.is_list()) {
      check_size(a.list->size() + b.list->size(), line);
      List l = *a.list;
      l.insert(l.end(), b.list->begin(), b.list->end());
      return Value::new_list(std::move(l));
    }
    operand_error(op, a, b, line);
  }
  if (op == "-") {
    if (ints) {
      std::int64_t r;
      const bool o = __builtin_sub_overflow(int_of(a), int_of(b), &r);
      return int_or_float(o, r, a.as_double() - b.as_double());
    }
    if (nums)
      return Value::number(a.as_double() - b.as_double());
    operand_error(op, a, b, line);
  }
  if (op == "*") {
    if (ints) {
      std::int64_t r;
      const bool o = __builtin_mul_overflow(int_of(a), int_of(b), &r);
      return int_or_float(o, r, a.as_double() * b.as_double());
    }
    if (nums)
      return Value::number(a.as_double() * b.as_double());
    const Value* seq = a.is_string() || a.is_list() ? &a : &b;
    const Value* count = seq == &a ? &b : &a;
    if ((seq->is_string() || seq->is_list()) && is_int(*count)) {
      const std::int64_t n = std::max<std::int64_t>(0, int_of(*count));
      const std::size_t unit = seq->is_string() ? seq->s.size() : seq->list->size();
      if (unit > 0 && static_cast<std::uint64_t>(n) > limits_.max_output_bytes / unit)
        check_size(limits_.max_output_bytes + 1, line);
      if (seq->is_string()) {
        std::string s;
        for (std::int64_t k = 0; k < n; ++k)
          s += seq->s;
        return Value::string(std::move(s));
      }
      List l;
      for (std::int64_t k = 0; k < n; ++k)
        l.insert(l.end(), seq->list->begin(), seq->list->end());
      return Value::new_list(std::move(l));
    }
    operand_error(op, a, b, line);
  }
  if (op == "/") {
    if (!nums)
      operand_error(op, a, b, line);
    if (b.as_double() == 0)
      throw JinjaError("division by zero", line);
    return Value::number(a.as_double() / b.as_double());
  }
  if (op == "//" || op == "%") {
    if (op == "%" && a.is_string())
      return Value::string(percent_format(a.s, b, line));
    if (!nums)
      operand_error(op, a, b, line);
    if (b.as_double() == 0)
      throw JinjaError(op == "//" ? "integer division by zero" : "modulo by zero", line);
    if (ints) {
      const std::int64_t x = int_of(a), y = int_of(b);
      if (x == INT64_MIN && y == -1)
        return op == "//" ? Value::number(-static_cast<double>(INT64_MIN)) : Value::integer(0);
      std::int64_t q = x / y, r = x % y;
      if (r != 0 && ((r < 0) != (y < 0))) {
        --q;
        r += y;
      }
      return Value::integer(op == "//" ? q : r);
    }
    const double x = a.as_double(), y = b.as_double();
    if (op == "//")
      return Value::number(std::floor(x / y));
    double r = std::fmod(x, y);
    if (r != 0 && ((r < 0) != (y < 0)))
      r += y;
    return Value::number(r);
  }
  if (op == "**") {
    if (!nums)
      operand_error(op, a, b, line);
    if (ints && int_of(b) >= 0) {
      std::int64_t base = int_of(a), exp = int_of(b), r = 1;
      bool o = false;
      while (exp > 0 && !o) {
        if (exp & 1)
          o = __builtin_mul_overflow(r, base, &r);
        exp >>= 1;
        if (exp > 0 && !o)
          o = __builtin_mul_overflow(base, base, &base);
      }
      return int_or_float(o, r, std::pow(a.as_double(), b.as_double()));
    }
    return Value::number(std::pow(a.as_double(), b.as_double()));
  }
  throw JinjaError("unsupported operator '" + op + "'", line);
}

}  // namespace halyard::runtime::jinja
