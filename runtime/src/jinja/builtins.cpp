// jinja2's filters, tests and global functions that chat templates use, with jinja2's
// defaults, plus transformers' tojson (json.dumps with ensure_ascii=False) and its
// raise_exception and strftime_now globals.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <set>

#include "error.h"
#include "interpreter.h"
#include "parser.h"

namespace halyard::runtime::jinja {
namespace {

const std::set<std::string>& filter_names() {
  static const std::set<std::string> names = {
      "abs",        "attr",    "capitalize", "count",  "d",      "default", "dictsort",   "e",
      "escape",     "first",   "float",      "format", "indent", "int",     "items",      "join",
      "last",       "length",  "list",       "lower",  "map",    "max",     "min",        "reject",
      "rejectattr", "replace", "reverse",    "round",  "safe",   "select",  "selectattr", "sort",
      "string",     "sum",     "title",      "tojson", "trim",   "unique",  "upper",      "wordcount"};
  return names;
}

const std::set<std::string>& test_names() {
  static const std::set<std::string> names = {
      "boolean", "callable", "defined", "divisibleby", "eq",       "equalto",  "even",   "false", "float",
      "ge",      "gt",       "in",      "integer",     "iterable", "le",       "lower",  "lt",    "mapping",
      "ne",      "none",     "number",  "odd",         "sameas",   "sequence", "string", "true",  "undefined",
      "upper",   "==",       "!=",      "<",           "<=",       ">",        ">="};
  return names;
}

[[noreturn]] void fail(const std::string& what, int line) {
  throw JinjaError(what, line);
}

void require_defined(const Value& v, const std::string& filter, int line) {
  if (v.is_undefined())
    fail((v.s.empty() ? std::string("a value is undefined") : v.s) + " (in the '" + filter + "' filter)", line);
}

std::int64_t int_value(const Value& v, const char* what, int line) {
  if (v.kind == Value::Kind::kInt)
    return v.i;
  if (v.kind == Value::Kind::kBool)
    return v.b;
  fail(std::string(what) + ": an integer is required, not " + v.type_name(), line);
}

std::string ascii_case(std::string s, bool upper) {
  for (char& c : s)
    c = static_cast<char>(upper ? std::toupper(static_cast<unsigned char>(c))
                                : std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The value of `attribute` (dotted: "function.name") in `v`, as jinja2's make_attrgetter.
Value attribute_of(Interpreter& in, const Value& v, const Value& attribute, int line) {
  if (attribute.kind == Value::Kind::kInt) {
    bool found = false;
    return get_item(v, attribute, found);
  }
  if (!attribute.is_string())
    fail("the attribute must be a string", line);
  Value cur = v;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = attribute.s.find('.', start);
    const std::string part = attribute.s.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (cur.is_undefined())
      return cur;
    bool found = false;
    Value next = get_item(cur, Value::string(part), found);
    if (!found)
      next = get_attribute(in, cur, part, line, found);
    cur = found ? next : Value::undefined("'" + cur.type_name() + " object' has no attribute '" + part + "'");
    if (dot == std::string::npos)
      return cur;
    start = dot + 1;
  }
}

// A sort key that ignores case for strings unless case_sensitive.
Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string())
    return Value::string(ascii_case(v.s, false));
  return v;
}

// select/reject and selectattr/rejectattr: the test named by args[first] with the rest.
List filter_by_test(Interpreter& in, const Value& seq, CallArgs& args, bool by_attribute, bool keep, int line) {
  std::size_t at = 0;
  Value attribute;
  if (by_attribute) {
    if (args.positional.empty())
      fail("selectattr/rejectattr need an attribute", line);
    attribute = args.positional[at++];
  }
  std::string test;
  if (at < args.positional.size()) {
    if (!args.positional[at].is_string())
      fail("the test name must be a string", line);
    test = args.positional[at++].s;
    if (!is_known_test(test))
      fail("unsupported test '" + test + "'", line);
  }
  CallArgs rest;
  rest.line = line;
  rest.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(at), args.positional.end());
  List out;
  if (!seq.truthy())  // jinja2's select_or_reject starts with `if seq:`
    return out;
  for (const Value& item : iterate(seq, line)) {
    in.count_iterations(1, line);
    const Value subject = by_attribute ? attribute_of(in, item, attribute, line) : item;
    CallArgs a = rest;
    const bool r = test.empty() ? subject.truthy() : apply_test(in, test, subject, a);
    if (r == keep)
      out.push_back(item);
  }
  return out;
}

std::string indent_text(const std::string& s, const Value& width, bool first, bool blank) {
  const std::string pad =
      width.is_string() ? width.s : std::string(static_cast<std::size_t>(std::max<std::int64_t>(0, width.i)), ' ');
  std::string out;
  std::size_t start = 0;
  bool is_first = true;
  // jinja2 3.1: the text's lines, each but the first (unless first) prefixed; blank lines
  // only when blank. A trailing newline stays.
  while (start <= s.size()) {
    std::size_t nl = s.find('\n', start);
    const std::string line = s.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    const bool last = nl == std::string::npos;
    if (!(last && line.empty() && !is_first)) {
      const bool is_blank = line.find_first_not_of(" \t\r\f\v") == std::string::npos;
      if ((!is_first || first) && (blank || !is_blank))
        out += pad;
      out += line;
    }
    if (last)
      break;
    out += '\n';
    start = nl + 1;
    is_first = false;
  }
  return out;
}

double python_round(double v, std::int64_t digits) {
  const double scale = std::pow(10.0, static_cast<double>(digits));
  const double x = v * scale;
  double r = std::nearbyint(x);  // half to even, as Python's round
  if (std::fabs(x - std::trunc(x)) != 0.5)
    r = std::round(x);
  return r / scale;
}

Value map_filter(Interpreter& in, const Value& v, CallArgs& a);
Value apply_filter_rest(Interpreter& in, const std::string& name, const Value& v, CallArgs& a);

}  // namespace

bool is_known_filter(const std::string& name) {
  return filter_names().count(name) != 0;
}

bool is_known_test(const std::string& name) {
  return test_names().count(name) != 0;
}

Value apply_filter(Interpreter& in, const std::string& name, const Value& v, CallArgs& a) {
  const int line = a.line;
  if (name == "default" || name == "d") {
    const bool boolean = a.get(1, "boolean", Value::boolean(false)).truthy();
    if (v.is_undefined() || (boolean && !v.truthy()))
      return a.get(0, "default_value", Value::string(""));
    return v;
  }
  if (name == "safe") {
    Value r = v.is_string() ? v : Value::string(to_str(v));
    r.markup = true;
    return r;
  }
  if (name == "string")
    return Value::string(to_str(v));
  if (name == "length" || name == "count") {
    switch (v.kind) {
      case Value::Kind::kUndefined:
        return Value::integer(0);
      case Value::Kind::kString:
        return Value::integer(static_cast<std::int64_t>(utf8_length(v.s)));
      case Value::Kind::kList:
        if (v.generator)
          fail("object of type 'generator' has no len() (add |list before |" + name + ")", line);
        return Value::integer(static_cast<std::int64_t>(v.list->size()));
      case Value::Kind::kDict:
        return Value::integer(static_cast<std::int64_t>(v.dict->items.size()));
      default:
        fail("object of type '" + v.type_name() + "' has no len()", line);
    }
  }
  if (name == "trim") {
    std::string s = to_str(v);
    bool found = false;
    Value strip = get_attribute(in, Value::string(s), "strip", line, found);
    CallArgs sa;
    sa.line = line;
    if (Value chars = a.get(0, "chars"); !chars.is_undefined())
      sa.positional.push_back(chars);
    return (*strip.fn)(in, sa);
  }
  if (name == "upper" || name == "lower")
    return Value::string(ascii_case(to_str(v), name == "upper"));
  if (name == "capitalize" || name == "title") {
    bool found = false;
    Value m = get_attribute(in, Value::string(ascii_case(to_str(v), false)), name, line, found);
    CallArgs none;
    return (*m.fn)(in, none);
  }
  if (name == "first" && v.generator) {
    if (v.list->empty())
      return Value::undefined("the sequence is empty (in the 'first' filter)");
    Value head = v.list->front();
    v.list->erase(v.list->begin());  // next() consumes one item
    return head;
  }
  if (name == "last" && v.generator)
    fail("'generator' object is not reversible (add |list before |last)", line);
  if (name == "first" || name == "last") {
    List items = iterate(v, line);
    if (items.empty())
      return Value::undefined("the sequence is empty (in the '" + name + "' filter)");
    return name == "first" ? items.front() : items.back();
  }
  if (name == "join") {
    const Value sep = a.get(0, "d", Value::string(""));
    const Value attribute = a.get(1, "attribute", Value::none());
    std::string out;
    bool first = true;
    for (const Value& item : iterate(v, line)) {
      if (!first)
        out += to_str(sep);
      first = false;
      out += to_str(attribute.is_none() ? item : attribute_of(in, item, attribute, line));
      in.check_size(out.size(), line);
    }
    return Value::string(out);
  }
  if (name == "tojson") {
    // transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
    JsonOptions o;
    o.ensure_ascii = a.get(0, "ensure_ascii", Value::boolean(false)).truthy();
    const Value indent = a.get(1, "indent", Value::none());
    if (indent.is_string()) {
      o.use_indent_text = true;
      o.indent_text = indent.s;
    } else if (!indent.is_none() && !indent.is_undefined()) {
      o.indent = static_cast<int>(std::clamp<std::int64_t>(int_value(indent, "tojson indent", line), 0, 64));
    }
    const Value separators = a.get(2, "separators", Value::none());
    if (separators.is_list()) {
      if (separators.list->size() != 2 || !(*separators.list)[0].is_string() || !(*separators.list)[1].is_string())
        fail("tojson: separators must be two strings", line);
      o.item_separator = (*separators.list)[0].s;
      o.key_separator = (*separators.list)[1].s;
    } else if (o.indent >= 0 || o.use_indent_text) {
      o.item_separator = ",";
    }
    o.sort_keys = a.get(3, "sort_keys", Value::boolean(false)).truthy();
    require_defined(v, name, line);
    std::string s = to_json_text(v, o, line);
    in.check_size(s.size(), line);
    return Value::string(std::move(s));
  }
  if (name == "int") {
    const Value fallback = a.get(0, "default", Value::integer(0));
    if (v.kind == Value::Kind::kInt)
      return v;
    if (v.kind == Value::Kind::kBool)
      return Value::integer(v.b);
    if (v.kind == Value::Kind::kFloat)
      return std::isfinite(v.f) && std::fabs(v.f) < 9.2e18 ? Value::integer(static_cast<std::int64_t>(v.f)) : fallback;
    if (v.is_string()) {
      const char* s = v.s.c_str();
      char* end = nullptr;
      errno = 0;
      const long long r = std::strtoll(s, &end, 10);
      if (end != s && errno == 0) {
        while (*end == ' ' || *end == '\t' || *end == '\n')
          ++end;
        if (*end == '\0')
          return Value::integer(r);
      }
      const double d = std::strtod(s, &end);
      if (end != s && *end == '\0' && std::isfinite(d) && std::fabs(d) < 9.2e18)
        return Value::integer(static_cast<std::int64_t>(d));
    }
    return fallback;
  }
  if (name == "float") {
    const Value fallback = a.get(0, "default", Value::number(0));
    if (v.is_number())
      return Value::number(v.as_double());
    if (v.is_string()) {
      char* end = nullptr;
      const double d = std::strtod(v.s.c_str(), &end);
      if (end != v.s.c_str() && *end == '\0')
        return Value::number(d);
    }
    return fallback;
  }
  if (name == "abs") {
    if (v.kind == Value::Kind::kInt)
      return v.i == INT64_MIN ? Value::number(-static_cast<double>(INT64_MIN)) : Value::integer(std::llabs(v.i));
    if (v.kind == Value::Kind::kBool)
      return Value::integer(v.b);
    if (v.kind == Value::Kind::kFloat)
      return Value::number(std::fabs(v.f));
    require_defined(v, name, line);
    fail("bad operand type for abs(): '" + v.type_name() + "'", line);
  }
  if (name == "round") {
    require_defined(v, name, line);
    if (!v.is_number())
      fail("round: a number is required, not " + v.type_name(), line);
    const std::int64_t digits = int_value(a.get(0, "precision", Value::integer(0)), "round precision", line);
    const std::string method = to_str(a.get(1, "method", Value::string("common")));
    const double scale = std::pow(10.0, static_cast<double>(digits));
    if (method == "common")
      return Value::number(python_round(v.as_double(), digits));
    if (method == "floor")
      return Value::number(std::floor(v.as_double() * scale) / scale);
    if (method == "ceil")
      return Value::number(std::ceil(v.as_double() * scale) / scale);
    fail("round: method must be common, floor or ceil", line);
  }
  if (name == "list")
    return Value::new_list(iterate(v, line));
  if (name == "items") {
    if (v.is_undefined())
      return Value::new_list();
    if (!v.is_dict())
      fail("items: a mapping is required, not " + v.type_name(), line);
    Value out = Value::new_list();
    for (const auto& [k, e] : v.dict->items)
      out.list->push_back(Value::new_list({k, e}));
    return out;
  }
  if (name == "dictsort") {
    if (!v.is_dict())
      fail("dictsort: a mapping is required, not " + v.type_name(), line);
    const bool cs = a.get(0, "case_sensitive", Value::boolean(false)).truthy();
    const std::string by = to_str(a.get(1, "by", Value::string("key")));
    const bool reverse = a.get(2, "reverse", Value::boolean(false)).truthy();
    const int idx = by == "value" ? 1 : 0;
    List items;
    for (const auto& [k, e] : v.dict->items)
      items.push_back(Value::new_list({k, e}));
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
      const int c = values_compare(sort_key((*x.list)[static_cast<std::size_t>(idx)], cs),
                                   sort_key((*y.list)[static_cast<std::size_t>(idx)], cs), line);
      return reverse ? c > 0 : c < 0;
    });
    return Value::new_list(std::move(items));
  }
  if (name == "replace") {
    bool found = false;
    Value m = get_attribute(in, Value::string(to_str(v)), "replace", line, found);
    CallArgs ra;
    ra.line = line;
    ra.positional = {a.get(0, "old"), a.get(1, "new")};
    if (Value c = a.get(2, "count"); !c.is_undefined() && !c.is_none())
      ra.positional.push_back(c);
    return (*m.fn)(in, ra);
  }
  if (name == "escape" || name == "e") {
    Value r = Value::string(v.markup ? v.s : html_escape(to_str(v)));
    r.markup = true;
    return r;
  }
  if (name == "map") {
    Value result = map_filter(in, v, a);
    result.generator = true;
    return result;
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    const bool attr = name == "selectattr" || name == "rejectattr";
    Value r = Value::new_list(filter_by_test(in, v, a, attr, name == "select" || name == "selectattr", line));
    r.generator = true;
    return r;
  }
  return apply_filter_rest(in, name, v, a);
}

namespace {

Value map_filter(Interpreter& in, const Value& v, CallArgs& a) {
  const int line = a.line;
  {
    Value attribute = a.get(99, "attribute");
    List out;
    if (!v.truthy())  // jinja2's map starts with `if value:`
      return Value::new_list();
    if (!attribute.is_undefined()) {
      const Value fallback = a.get(99, "default");
      for (const Value& item : iterate(v, line)) {
        in.count_iterations(1, line);
        Value r = attribute_of(in, item, attribute, line);
        out.push_back(r.is_undefined() && !fallback.is_undefined() ? fallback : r);
      }
      return Value::new_list(std::move(out));
    }
    if (a.positional.empty() || !a.positional[0].is_string())
      fail("map needs a filter name or attribute=", line);
    const std::string filter = a.positional[0].s;
    if (!is_known_filter(filter))
      fail("unsupported filter '" + filter + "'", line);
    CallArgs rest;
    rest.line = line;
    rest.positional.assign(a.positional.begin() + 1, a.positional.end());
    rest.keyword = a.keyword;
    for (const Value& item : iterate(v, line)) {
      in.count_iterations(1, line);
      CallArgs ra = rest;
      out.push_back(apply_filter(in, filter, item, ra));
    }
    return Value::new_list(std::move(out));
  }
}

Value apply_filter_rest(Interpreter& in, const std::string& name, const Value& v, CallArgs& a) {
  const int line = a.line;
  if (name == "unique") {
    const bool cs = a.get(0, "case_sensitive", Value::boolean(false)).truthy();
    const Value attribute = a.get(1, "attribute", Value::none());
    List out, seen;
    for (const Value& item : iterate(v, line)) {
      in.count_iterations(1, line);
      const Value key = sort_key(attribute.is_none() ? item : attribute_of(in, item, attribute, line), cs);
      bool dup = false;
      for (const Value& s : seen)
        dup = dup || values_equal(s, key);
      if (!dup) {
        seen.push_back(key);
        out.push_back(item);
      }
    }
    Value r = Value::new_list(std::move(out));
    r.generator = true;
    return r;
  }
  if (name == "reverse") {
    if (v.is_string()) {
      auto chars = utf8_chars(v.s);
      std::string out;
      for (auto it = chars.rbegin(); it != chars.rend(); ++it)
        out += *it;
      return Value::string(out);
    }
    List items = iterate(v, line);
    std::reverse(items.begin(), items.end());
    return Value::new_list(std::move(items));
  }
  if (name == "sort" || name == "min" || name == "max") {
    const bool sort = name == "sort";
    const bool reverse = sort && a.get(0, "reverse", Value::boolean(false)).truthy();
    const bool cs = a.get(sort ? 1 : 0, "case_sensitive", Value::boolean(false)).truthy();
    const Value attribute = a.get(sort ? 2 : 1, "attribute", Value::none());
    List items = iterate(v, line);
    auto key = [&](const Value& x) {
      return sort_key(attribute.is_none() ? x : attribute_of(in, x, attribute, line), cs);
    };
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
      const int c = values_compare(key(x), key(y), line);
      return reverse ? c > 0 : c < 0;
    });
    if (sort)
      return Value::new_list(std::move(items));
    if (items.empty())
      return Value::undefined("the sequence is empty (in the '" + name + "' filter)");
    return name == "min" ? items.front() : items.back();
  }
  if (name == "sum") {
    const Value attribute = a.get(0, "attribute", Value::none());
    Value total = a.get(1, "start", Value::integer(0));
    for (const Value& item : iterate(v, line)) {
      const Value x = attribute.is_none() ? item : attribute_of(in, item, attribute, line);
      if (!x.is_number() || !total.is_number())
        fail("sum: unsupported operand types", line);
      if (x.kind == Value::Kind::kFloat || total.kind == Value::Kind::kFloat)
        total = Value::number(total.as_double() + x.as_double());
      else
        total = Value::integer(total.i + (x.kind == Value::Kind::kBool ? x.b : x.i));
    }
    return total;
  }
  if (name == "indent") {
    Value width = a.get(0, "width", Value::integer(4));
    if (!width.is_string())
      width = Value::integer(std::clamp<std::int64_t>(int_value(width, "indent width", line), 0, 1024));
    std::string s = indent_text(to_str(v), width, a.get(1, "first", Value::boolean(false)).truthy(),
                                a.get(2, "blank", Value::boolean(false)).truthy());
    in.check_size(s.size(), line);
    return Value::string(std::move(s));
  }
  if (name == "wordcount") {
    std::int64_t n = 0;
    bool in_word = false;
    for (unsigned char c : to_str(v)) {
      const bool w = std::isalnum(c) || c == '_' || c >= 0x80;
      if (w && !in_word)
        ++n;
      in_word = w;
    }
    return Value::integer(n);
  }
  if (name == "attr") {
    bool found = false;
    const Value r = get_attribute(in, v, to_str(a.get(0, "name")), line, found);
    return found
               ? r
               : Value::undefined("'" + v.type_name() + " object' has no attribute '" + to_str(a.get(0, "name")) + "'");
  }
  if (name == "format") {
    bool found = false;
    (void)found;
    Value args = Value::new_list(a.positional);
    CallArgs none;
    Value fmt = Value::string(to_str(v));
    // "%s, %s"|format(a, b) is Python's printf formatting.
    std::string out;
    const std::string& f = fmt.s;
    std::size_t k = 0;
    for (std::size_t i = 0; i < f.size(); ++i) {
      if (f[i] != '%') {
        out += f[i];
        continue;
      }
      if (++i >= f.size())
        fail("format: incomplete format", line);
      if (f[i] == '%') {
        out += '%';
        continue;
      }
      if (k >= a.positional.size())
        fail("format: not enough arguments", line);
      if (f[i] == 's' || f[i] == 'd' || f[i] == 'i')
        out += to_str(a.positional[k++]);
      else
        fail(std::string("format: unsupported format character '") + f[i] + "'", line);
    }
    return Value::string(out);
  }
  fail("unsupported filter '" + name + "'", line);
}

}  // namespace

bool apply_test(Interpreter& in, const std::string& name, const Value& v, CallArgs& a) {
  (void)in;
  const int line = a.line;
  using K = Value::Kind;
  if (name == "defined")
    return !v.is_undefined();
  if (name == "undefined")
    return v.is_undefined();
  if (name == "none")
    return v.is_none();
  if (name == "string")
    return v.is_string();
  if (name == "mapping")
    return v.is_dict();
  if (name == "iterable")
    return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
  if (name == "sequence")
    return v.is_list() || v.is_dict() || v.is_string();
  if (name == "number")
    return v.is_number();
  if (name == "integer")
    return v.kind == K::kInt;
  if (name == "float")
    return v.kind == K::kFloat;
  if (name == "boolean")
    return v.kind == K::kBool;
  if (name == "true")
    return v.kind == K::kBool && v.b;
  if (name == "false")
    return v.kind == K::kBool && !v.b;
  if (name == "callable")
    return v.kind == K::kFunction;
  if (name == "lower" || name == "upper") {
    const std::string s = to_str(v);
    return s == ascii_case(s, name == "upper");
  }
  if (name == "odd" || name == "even" || name == "divisibleby") {
    require_defined(v, name, line);
    const std::int64_t x = int_value(v, name.c_str(), line);
    if (name == "divisibleby") {
      const std::int64_t d = int_value(a.get(0, "num"), "divisibleby", line);
      if (d == 0)
        fail("divisibleby: division by zero", line);
      return d == -1 || x % d == 0;
    }
    return (x % 2 != 0) == (name == "odd");
  }
  const Value other = a.get(0, "other");
  if (name == "eq" || name == "equalto" || name == "==")
    return values_equal(v, other);
  if (name == "ne" || name == "!=")
    return !values_equal(v, other);
  if (name == "sameas") {
    if (v.kind != other.kind)
      return false;
    if (v.is_list())
      return v.list == other.list;
    if (v.is_dict())
      return v.dict == other.dict;
    return values_equal(v, other);
  }
  if (name == "in") {
    if (other.is_string())
      return v.is_string() && other.s.find(v.s) != std::string::npos;
    for (const Value& x : iterate(other, line))
      if (values_equal(x, v))
        return true;
    if (other.is_dict())
      return other.dict->find(v) != nullptr;
    return false;
  }
  const int c = values_compare(v, other, line);
  if (name == "lt" || name == "<")
    return c < 0;
  if (name == "le" || name == "<=")
    return c <= 0;
  if (name == "gt" || name == ">")
    return c > 0;
  if (name == "ge" || name == ">=")
    return c >= 0;
  fail("unsupported test '" + name + "'", line);
}

void install_globals(Interpreter& in) {
  in.set_global("range", Value::function([](Interpreter& ip, CallArgs& a) {
                  std::int64_t start = 0, stop = 0, step = 1;
                  if (a.positional.size() == 1) {
                    stop = int_value(a.positional[0], "range", a.line);
                  } else if (a.positional.size() >= 2) {
                    start = int_value(a.positional[0], "range", a.line);
                    stop = int_value(a.positional[1], "range", a.line);
                    if (a.positional.size() >= 3)
                      step = int_value(a.positional[2], "range", a.line);
                  } else {
                    fail("range expects 1 to 3 integers", a.line);
                  }
                  if (step == 0)
                    fail("range: the step must not be zero", a.line);
                  const double n =
                      std::ceil((static_cast<double>(stop) - static_cast<double>(start)) / static_cast<double>(step));
                  if (n > 0)
                    ip.count_iterations(static_cast<std::int64_t>(std::min(n, 9e18)), a.line);
                  Value out = Value::new_list();
                  for (std::int64_t i = start; step > 0 ? i < stop : i > stop;) {
                    out.list->push_back(Value::integer(i));
                    if (__builtin_add_overflow(i, step, &i))
                      break;  // past INT64 range: past stop too
                  }
                  return out;
                }));
  in.set_global("namespace", Value::function([](Interpreter&, CallArgs& a) {
                  Value ns = Value::new_dict();
                  ns.dict->is_namespace = true;
                  for (const Value& p : a.positional)
                    if (p.is_dict())
                      for (const auto& [k, v] : p.dict->items)
                        ns.dict->set(k, v);
                  for (const auto& [k, v] : a.keyword)
                    ns.dict->set(Value::string(k), v);
                  check_nesting(ns, a.line);
                  return ns;
                }));
  in.set_global("dict", Value::function([](Interpreter&, CallArgs& a) {
                  Value d = Value::new_dict();
                  for (const Value& p : a.positional)
                    if (p.is_dict())
                      for (const auto& [k, v] : p.dict->items)
                        d.dict->set(k, v);
                  for (const auto& [k, v] : a.keyword)
                    d.dict->set(Value::string(k), v);
                  check_nesting(d, a.line);
                  return d;
                }));
  in.set_global("raise_exception", Value::function([](Interpreter&, CallArgs& a) -> Value {
                  throw JinjaRaisedError("the template raised an error: " + to_str(a.get(0, "message")), a.line);
                }));
  in.set_global("strftime_now", Value::function([](Interpreter& ip, CallArgs& a) {
                  const std::string fmt = to_str(a.get(0, "format"));
                  if (fmt.size() > 256)
                    fail("strftime_now: the format is longer than 256 bytes", a.line);
                  const std::time_t t = static_cast<std::time_t>(ip.now());
                  std::tm tm{};
                  localtime_r(&t, &tm);
                  char buf[1024];
                  const std::size_t n = std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
                  return Value::string(std::string(buf, n));
                }));
}

}  // namespace halyard::runtime::jinja
