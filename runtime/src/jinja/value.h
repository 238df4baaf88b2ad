// The values a template computes with: Python's types as jinja2 sees them (None, bool, int,
// float, str, list, dict, callables) plus jinja2's Undefined. Lists and dicts are shared by
// reference, as in Python, so a namespace or a list a template appends to is seen by every
// name bound to it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace halyard::runtime::jinja {

struct Value;
using List = std::vector<Value>;
struct Dict;
struct CallArgs;
class Interpreter;
using Function = std::function<Value(Interpreter&, CallArgs&)>;

struct Value {
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kFunction };

  Kind kind = Kind::kUndefined;
  bool b = false;
  std::int64_t i = 0;
  double f = 0;
  std::string s;  // kString; for kUndefined, why it is undefined (jinja2's hint)
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;
  std::shared_ptr<Function> fn;
  // kList made by a filter that jinja2 implements as a Python generator (map, select, reject,
  // selectattr, rejectattr, unique): always true, no len(), not JSON, and consumed by iterating,
  // so a second loop over it sees nothing, as in jinja2.
  bool generator = false;
  // kString marked safe (|safe, |escape): markupsafe's Markup, which escapes a plain string
  // added to it, as jinja2 renders "<b>"|safe + text.
  bool markup = false;

  static Value undefined(std::string hint = {});
  static Value none();
  static Value boolean(bool v);
  static Value integer(std::int64_t v);
  static Value number(double v);
  static Value string(std::string v);
  static Value new_list(List items = {});
  static Value new_dict();
  static Value function(Function f);
  // Throws JinjaLimitError past kMaxValueDepth levels.
  static Value from_json(const nlohmann::ordered_json& j, int depth = 0);

  bool is_undefined() const { return kind == Kind::kUndefined; }
  bool is_none() const { return kind == Kind::kNone; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_list() const { return kind == Kind::kList; }
  bool is_dict() const { return kind == Kind::kDict; }
  bool is_number() const { return kind == Kind::kInt || kind == Kind::kFloat || kind == Kind::kBool; }
  double as_double() const;
  bool truthy() const;
  // Python's type name, for messages: "str", "dict", "undefined".
  std::string type_name() const;
};

struct Dict {
  std::vector<std::pair<Value, Value>> items;  // insertion order, as Python's dict
  bool is_namespace = false;                   // namespace(): attributes may be assigned

  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(Value key, Value value);
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  int line = 0;

  // The argument at `index` or named `name`; `fallback` when neither is given.
  Value get(std::size_t index, std::string_view name, Value fallback = Value::undefined()) const;
};

// How deep lists and dicts may nest: deeper values would make printing, comparing and freeing
// them recurse without bound.
constexpr int kMaxValueDepth = 200;
// Throws JinjaLimitError when `v` nests deeper than kMaxValueDepth.
void check_nesting(const Value& v, int line);

// Whether `v` is, or holds, the list or dict at `container` (also true past kMaxValueDepth):
// what a mutation must refuse, so that values stay trees and never keep each other alive.
bool value_reaches(const Value& v, const void* container);

// Python semantics.
bool values_equal(const Value& a, const Value& b);
// <0, 0, >0; throws JinjaError for types Python cannot order.
int values_compare(const Value& a, const Value& b, int line);
// str(v): what {{ v }} prints (Undefined prints empty).
std::string to_str(const Value& v);
// repr(v), as Python prints list and dict items.
std::string to_repr(const Value& v);
// Python's repr of a float: the shortest digits that round-trip.
std::string float_repr(double v);
// json.dumps(v, ...) with Python's options.
struct JsonOptions {
  int indent = -1;  // -1: none (one line)
  std::string indent_text;
  bool use_indent_text = false;  // indent given as a string
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool ensure_ascii = false;
  bool sort_keys = false;
};
std::string to_json_text(const Value& v, const JsonOptions& options, int line);

// markupsafe.escape: & < > " ' as HTML entities.
std::string html_escape(std::string_view s);

// UTF-8 helpers: Python indexes strings by code point.
std::vector<std::string> utf8_chars(std::string_view s);
std::size_t utf8_length(std::string_view s);

}  // namespace halyard::runtime::jinja
