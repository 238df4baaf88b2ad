#include "value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "error.h"

namespace halyard::runtime::jinja {

Value Value::undefined(std::string hint) {
  Value v;
  v.s = std::move(hint);
  return v;
}
Value Value::none() {
  Value v;
  v.kind = Kind::kNone;
  return v;
}
Value Value::boolean(bool b) {
  Value v;
  v.kind = Kind::kBool;
  v.b = b;
  return v;
}
Value Value::integer(std::int64_t i) {
  Value v;
  v.kind = Kind::kInt;
  v.i = i;
  return v;
}
Value Value::number(double f) {
  Value v;
  v.kind = Kind::kFloat;
  v.f = f;
  return v;
}
Value Value::string(std::string s) {
  Value v;
  v.kind = Kind::kString;
  v.s = std::move(s);
  return v;
}
Value Value::new_list(List items) {
  Value v;
  v.kind = Kind::kList;
  v.list = std::make_shared<List>(std::move(items));
  return v;
}
Value Value::new_dict() {
  Value v;
  v.kind = Kind::kDict;
  v.dict = std::make_shared<Dict>();
  return v;
}
Value Value::function(Function f) {
  Value v;
  v.kind = Kind::kFunction;
  v.fn = std::make_shared<Function>(std::move(f));
  return v;
}

Value Value::from_json(const nlohmann::ordered_json& j, int depth) {
  if (depth > kMaxValueDepth)
    throw JinjaLimitError("the context nests more than " + std::to_string(kMaxValueDepth) + " levels", 0);
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return none();
    case nlohmann::ordered_json::value_t::boolean:
      return boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return integer(j.get<std::int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const auto u = j.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(INT64_MAX))
        return number(static_cast<double>(u));
      return integer(static_cast<std::int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return number(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      Value v = new_list();
      for (const auto& e : j)
        v.list->push_back(from_json(e, depth + 1));
      return v;
    }
    case nlohmann::ordered_json::value_t::object: {
      Value v = new_dict();
      for (const auto& [k, e] : j.items())
        v.dict->items.emplace_back(string(k), from_json(e, depth + 1));
      return v;
    }
    default:
      return none();
  }
}

double Value::as_double() const {
  switch (kind) {
    case Kind::kBool:
      return b ? 1 : 0;
    case Kind::kInt:
      return static_cast<double>(i);
    case Kind::kFloat:
      return f;
    default:
      return 0;
  }
}

bool Value::truthy() const {
  switch (kind) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return b;
    case Kind::kInt:
      return i != 0;
    case Kind::kFloat:
      return f != 0;
    case Kind::kString:
      return !s.empty();
    case Kind::kList:
      return generator || !list->empty();
    case Kind::kDict:
      return dict->is_namespace || !dict->items.empty();
    case Kind::kFunction:
      return true;
  }
  return false;
}

std::string Value::type_name() const {
  switch (kind) {
    case Kind::kUndefined:
      return "undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kList:
      return generator ? "generator" : "list";
    case Kind::kDict:
      return dict->is_namespace ? "Namespace" : "dict";
    case Kind::kFunction:
      return "function";
  }
  return "?";
}

const Value* Dict::find(const Value& key) const {
  for (const auto& [k, v] : items)
    if (values_equal(k, key))
      return &v;
  return nullptr;
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : items)
    if (k.kind == Value::Kind::kString && k.s == key)
      return &v;
  return nullptr;
}

void Dict::set(Value key, Value value) {
  for (auto& [k, v] : items) {
    if (values_equal(k, key)) {
      v = std::move(value);
      return;
    }
  }
  items.emplace_back(std::move(key), std::move(value));
}

Value CallArgs::get(std::size_t index, std::string_view name, Value fallback) const {
  for (const auto& [k, v] : keyword)
    if (k == name)
      return v;
  if (index < positional.size())
    return positional[index];
  return fallback;
}

namespace {

bool nests_deeper(const Value& v, int budget) {
  if (!v.is_list() && !v.is_dict())
    return false;
  if (budget <= 0)
    return true;
  if (v.is_list()) {
    for (const Value& e : *v.list)
      if (nests_deeper(e, budget - 1))
        return true;
    return false;
  }
  for (const auto& [k, e] : v.dict->items)
    if (nests_deeper(e, budget - 1))
      return true;
  return false;
}

}  // namespace

bool reaches(const Value& v, const void* target, int depth) {
  if (!v.is_list() && !v.is_dict())
    return false;
  if (depth > kMaxValueDepth)
    return true;
  if (v.is_list()) {
    if (v.list.get() == target)
      return true;
    for (const Value& e : *v.list)
      if (reaches(e, target, depth + 1))
        return true;
    return false;
  }
  if (v.dict.get() == target)
    return true;
  for (const auto& [k, e] : v.dict->items)
    if (reaches(e, target, depth + 1))
      return true;
  return false;
}

bool value_reaches(const Value& v, const void* container) {
  return reaches(v, container, 0);
}

void check_nesting(const Value& v, int line) {
  if (nests_deeper(v, kMaxValueDepth))
    throw JinjaLimitError("a value nests more than " + std::to_string(kMaxValueDepth) + " levels", line);
}

bool values_equal(const Value& a, const Value& b) {
  using K = Value::Kind;
  if (a.is_number() && b.is_number()) {
    if (a.kind != K::kFloat && b.kind != K::kFloat) {
      const auto ai = a.kind == K::kBool ? std::int64_t{a.b} : a.i;
      const auto bi = b.kind == K::kBool ? std::int64_t{b.b} : b.i;
      return ai == bi;
    }
    return a.as_double() == b.as_double();
  }
  if (a.kind != b.kind)
    return false;
  switch (a.kind) {
    case K::kUndefined:
    case K::kNone:
      return true;
    case K::kString:
      return a.s == b.s;
    case K::kList:
      if (a.list->size() != b.list->size())
        return false;
      for (std::size_t i = 0; i < a.list->size(); ++i)
        if (!values_equal((*a.list)[i], (*b.list)[i]))
          return false;
      return true;
    case K::kDict:
      if (a.dict == b.dict)
        return true;
      if (a.dict->items.size() != b.dict->items.size())
        return false;
      for (const auto& [k, v] : a.dict->items) {
        const Value* o = b.dict->find(k);
        if (!o || !values_equal(v, *o))
          return false;
      }
      return true;
    case K::kFunction:
      return a.fn == b.fn;
    default:
      return false;
  }
}

int values_compare(const Value& a, const Value& b, int line) {
  if (a.is_number() && b.is_number()) {
    if (a.kind == Value::Kind::kInt && b.kind == Value::Kind::kInt)
      return a.i < b.i ? -1 : (a.i > b.i ? 1 : 0);
    const double x = a.as_double(), y = b.as_double();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string())
    return a.s.compare(b.s) < 0 ? -1 : (a.s == b.s ? 0 : 1);
  if (a.is_list() && b.is_list()) {
    const std::size_t n = std::min(a.list->size(), b.list->size());
    for (std::size_t i = 0; i < n; ++i)
      if (int c = values_compare((*a.list)[i], (*b.list)[i], line); c != 0)
        return c;
    return a.list->size() < b.list->size() ? -1 : (a.list->size() > b.list->size() ? 1 : 0);
  }
  throw JinjaError("'<' is not supported between '" + a.type_name() + "' and '" + b.type_name() + "'", line);
}

std::string float_repr(double v) {
  if (std::isnan(v))
    return "nan";
  if (std::isinf(v))
    return v > 0 ? "inf" : "-inf";
  if (v == 0)
    return std::signbit(v) ? "-0.0" : "0.0";
  // The shortest round-trip digits, then Python's layout: positional for exponents in
  // [-4, 16), scientific (at least two exponent digits) otherwise.
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  const auto e_at = sci.find('e');
  std::string mant = sci.substr(0, e_at);
  const int exp = std::stoi(sci.substr(e_at + 1));
  const bool neg = mant[0] == '-';
  if (neg)
    mant.erase(0, 1);
  std::string digits;
  for (char c : mant)
    if (c != '.')
      digits += c;
  std::string out;
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out = "0." + std::string(static_cast<std::size_t>(-exp - 1), '0') + digits;
    } else if (static_cast<std::size_t>(exp) + 1 >= digits.size()) {
      out = digits + std::string(static_cast<std::size_t>(exp) + 1 - digits.size(), '0') + ".0";
    } else {
      out =
          digits.substr(0, static_cast<std::size_t>(exp) + 1) + "." + digits.substr(static_cast<std::size_t>(exp) + 1);
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1)
      out += "." + digits.substr(1);
    char e[16];
    std::snprintf(e, sizeof e, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += e;
  }
  return neg ? "-" + out : out;
}

namespace {

std::string repr_string(const std::string& s) {
  // Python prefers single quotes, and double ones when the text has a ' but no ".
  const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = dq ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == static_cast<unsigned char>(q))
      out += std::string("\\") + q;
    else if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else
      out += static_cast<char>(c);
  }
  out += q;
  return out;
}

// Decodes one UTF-8 sequence at s[i]; a malformed byte decodes as itself (U+0080..U+00FF would
// be wrong, so as U+FFFD) and advances one byte.
std::uint32_t decode_utf8(std::string_view s, std::size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + static_cast<std::size_t>(n) > s.size()) {
    ++i;
    return 0xFFFD;
  }
  std::uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k < n; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
    if ((cc >> 6) != 2) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  i += static_cast<std::size_t>(n);
  return cp;
}

void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default:
          if (c < 0x20 || (ensure_ascii && c == 0x7f)) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
          } else {
            out += static_cast<char>(c);
          }
      }
      continue;
    }
    const std::size_t start = i;
    const std::uint32_t cp = decode_utf8(s, i);
    if (!ensure_ascii) {
      out.append(s, start, i - start);
      continue;
    }
    char buf[16];
    if (cp >= 0x10000) {
      const std::uint32_t v = cp - 0x10000;
      std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
    } else {
      std::snprintf(buf, sizeof buf, "\\u%04x", cp);
    }
    out += buf;
  }
  out += '"';
}

void json_value(std::string& out, const Value& v, const JsonOptions& o, int depth, int line) {
  if (depth > 200)
    throw JinjaLimitError("tojson: the value nests more than 200 levels", line);
  using K = Value::Kind;
  auto newline = [&](int d) {
    if (o.indent < 0 && !o.use_indent_text)
      return;
    out += '\n';
    for (int k = 0; k < d; ++k)
      out += o.use_indent_text ? o.indent_text : std::string(static_cast<std::size_t>(o.indent), ' ');
  };
  const bool pretty = o.indent >= 0 || o.use_indent_text;
  // Python's json.dumps: with an indent the item separator loses its trailing space (", " -> ",").
  std::string item_sep = o.item_separator;
  if (pretty && item_sep == ", ")
    item_sep = ",";
  switch (v.kind) {
    case K::kNone:
      out += "null";
      return;
    case K::kBool:
      out += v.b ? "true" : "false";
      return;
    case K::kInt:
      out += std::to_string(v.i);
      return;
    case K::kFloat:
      if (std::isnan(v.f))
        out += "NaN";
      else if (std::isinf(v.f))
        out += v.f > 0 ? "Infinity" : "-Infinity";
      else
        out += float_repr(v.f);
      return;
    case K::kString:
      json_string(out, v.s, o.ensure_ascii);
      return;
    case K::kList: {
      if (v.generator)
        throw JinjaError("tojson: Object of type generator is not JSON serializable (add |list)", line);
      if (v.list->empty()) {
        out += "[]";
        return;
      }
      out += '[';
      bool first = true;
      for (const Value& e : *v.list) {
        if (!first)
          out += item_sep;
        first = false;
        newline(depth + 1);
        json_value(out, e, o, depth + 1, line);
      }
      newline(depth);
      out += ']';
      return;
    }
    case K::kDict: {
      if (v.dict->items.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<Value, Value>*> items;
      for (const auto& kv : v.dict->items)
        items.push_back(&kv);
      if (o.sort_keys)
        std::stable_sort(items.begin(), items.end(),
                         [&](auto* a, auto* b) { return values_compare(a->first, b->first, line) < 0; });
      out += '{';
      bool first = true;
      for (const auto* kv : items) {
        if (!first)
          out += item_sep;
        first = false;
        newline(depth + 1);
        const Value& k = kv->first;
        if (k.is_string())
          json_string(out, k.s, o.ensure_ascii);
        else if (k.kind == K::kInt || k.kind == K::kFloat || k.kind == K::kBool || k.is_none())
          out += '"' +
                 (k.is_none()          ? std::string("null")
                  : k.kind == K::kBool ? (k.b ? "true" : "false")
                                       : to_str(k)) +
                 '"';
        else
          throw JinjaError("tojson: keys must be str, int, float, bool or None, not " + k.type_name(), line);
        out += o.key_separator;
        json_value(out, kv->second, o, depth + 1, line);
      }
      newline(depth);
      out += '}';
      return;
    }
    default:
      throw JinjaError("tojson: Object of type " + v.type_name() + " is not JSON serializable", line);
  }
}

}  // namespace

std::string to_json_text(const Value& v, const JsonOptions& options, int line) {
  std::string out;
  json_value(out, v, options, 0, line);
  return out;
}

std::string to_repr(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kString:
      return repr_string(v.s);
    case Value::Kind::kUndefined:
      return "";
    default:
      return to_str(v);
  }
}

std::string to_str(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kUndefined:
      return "";
    case Value::Kind::kNone:
      return "None";
    case Value::Kind::kBool:
      return v.b ? "True" : "False";
    case Value::Kind::kInt:
      return std::to_string(v.i);
    case Value::Kind::kFloat:
      return float_repr(v.f);
    case Value::Kind::kString:
      return v.s;
    case Value::Kind::kList: {
      if (v.generator)
        return "<generator object>";
      std::string out = "[";
      for (std::size_t i = 0; i < v.list->size(); ++i)
        out += (i ? ", " : "") + to_repr((*v.list)[i]);
      return out + "]";
    }
    case Value::Kind::kDict: {
      if (v.dict->is_namespace)
        return "<Namespace>";
      std::string out = "{";
      bool first = true;
      for (const auto& [k, e] : v.dict->items) {
        out += (first ? "" : ", ") + to_repr(k) + ": " + to_repr(e);
        first = false;
      }
      return out + "}";
    }
    case Value::Kind::kFunction:
      return "<function>";
  }
  return {};
}

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::vector<std::string> utf8_chars(std::string_view s) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t start = i;
    (void)decode_utf8(s, i);
    out.emplace_back(s.substr(start, i - start));
  }
  return out;
}

std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size();) {
    (void)decode_utf8(s, i);
    ++n;
  }
  return n;
}

}  // namespace halyard::runtime::jinja
