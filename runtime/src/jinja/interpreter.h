// Walks a Program: statements write to the output, expressions evaluate to Values, with
// jinja2's scoping (a for loop, a macro and a call block each open a scope; if does not) and
// the bounds of Limits checked as it goes.
// Thread safety: one Interpreter per render; it is not shared.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ast.h"
#include "halyard/runtime/jinja.h"
#include "value.h"

namespace halyard::runtime::jinja {

class Interpreter {
 public:
  using Frame = std::unordered_map<std::string, Value>;

  Interpreter(const Limits& limits, std::optional<std::int64_t> now_unix_seconds);
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // Sets a top-level variable (the render context).
  void set_global(const std::string& name, Value v);
  std::string render(const Program& program);

  Value eval(const Expr& e);
  Value call(const Value& callee, CallArgs& args, const std::string& what, int line);

  // Bounds, for the builtins too.
  void check_size(std::size_t bytes, int line) const;
  void count_iterations(std::int64_t n, int line);
  const Limits& limits() const { return limits_; }
  std::int64_t now() const;

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow exec(const Body& body);
  Flow exec(const Node& n);
  Flow exec_for(const Node& n);
  void exec_set(const Node& n);
  void define_macro(const Node& n);
  void exec_call_block(const Node& n);
  std::string capture(const Body& body);
  void write(const std::string& s, int line);

  Value lookup(const std::string& name) const;
  void assign(const std::string& name, Value v);
  void assign_targets(const std::vector<std::string>& targets, const Value& v, int line);
  std::shared_ptr<Frame> push_frame();

  Value eval_binary(const Expr& e);
  Value eval_compare(const Expr& e);
  Value eval_filter(const Expr& e, const Value* block_content);
  Value eval_call(const Expr& e);
  Value eval_getattr(const Expr& e);
  Value eval_getitem(const Expr& e);
  Value eval_slice(const Expr& e);

  Value invoke_macro(const Node& macro, CallArgs& args, Value caller);

  Limits limits_;
  std::optional<std::int64_t> now_;
  std::vector<std::shared_ptr<Frame>> scopes_;      // innermost last; scopes_[0] is the template's
  std::vector<std::shared_ptr<Frame>> all_frames_;  // cleared at the end: breaks reference cycles
  std::string* out_ = nullptr;
  std::int64_t iterations_ = 0;
  int call_depth_ = 0;
  int eval_depth_ = 0;  // eval and exec frames on the stack (macros multiply the source's nesting)
  friend struct EvalDepth;
};

// Filters, tests and globals (builtins.cpp); `args` are the call's arguments after the operand.
Value apply_filter(Interpreter& in, const std::string& name, const Value& operand, CallArgs& args);
bool apply_test(Interpreter& in, const std::string& name, const Value& operand, CallArgs& args);
void install_globals(Interpreter& in);
// Attribute access: dict keys, and the Python methods of str, list and dict (methods.cpp).
// `found` is false when the object has neither.
Value get_attribute(Interpreter& in, const Value& obj, const std::string& name, int line, bool& found);
// Item access obj[key] for lists, strings and dicts; undefined when missing.
Value get_item(const Value& obj, const Value& key, bool& found);
// Iterating a value as jinja2 does: lists, dict keys, string characters; undefined is empty.
List iterate(const Value& v, int line);

}  // namespace halyard::runtime::jinja
