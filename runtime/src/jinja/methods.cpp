// The Python methods templates call on str, list and dict values, attribute and item access,
// and iteration. Mutating methods (append, pop, insert, extend, update) refuse to make a value
// contain itself, so values stay trees and never keep each other alive.
#include <algorithm>
#include <cctype>

#include "error.h"
#include "interpreter.h"

namespace halyard::runtime::jinja {
namespace {

bool is_py_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1f);
}

void refuse_cycle(const Value& item, const void* container, int line) {
  if (value_reaches(item, container))
    throw JinjaError("a list or dict cannot contain itself", line);
}

std::string strip_chars(const std::string& s, const Value& chars, bool left, bool right) {
  if (chars.is_undefined() || chars.is_none()) {
    std::size_t b = 0, e = s.size();
    if (left)
      while (b < e && is_py_space(s[b]))
        ++b;
    if (right)
      while (e > b && is_py_space(s[e - 1]))
        --e;
    return s.substr(b, e - b);
  }
  const std::vector<std::string> set = utf8_chars(chars.s);
  std::vector<std::string> cs = utf8_chars(s);
  auto in_set = [&](const std::string& c) { return std::find(set.begin(), set.end(), c) != set.end(); };
  std::size_t b = 0, e = cs.size();
  if (left)
    while (b < e && in_set(cs[b]))
      ++b;
  if (right)
    while (e > b && in_set(cs[e - 1]))
      --e;
  std::string out;
  for (std::size_t i = b; i < e; ++i)
    out += cs[i];
  return out;
}

Value split(const std::string& s, const Value& sep, std::int64_t maxsplit, int line) {
  Value out = Value::new_list();
  if (sep.is_undefined() || sep.is_none()) {
    std::size_t i = 0;
    while (true) {
      while (i < s.size() && is_py_space(s[i]))
        ++i;
      if (i >= s.size())
        break;
      if (maxsplit >= 0 && static_cast<std::int64_t>(out.list->size()) >= maxsplit) {
        std::size_t e = s.size();
        while (e > i && is_py_space(s[e - 1]))
          --e;
        out.list->push_back(Value::string(s.substr(i, e - i)));
        break;
      }
      std::size_t j = i;
      while (j < s.size() && !is_py_space(s[j]))
        ++j;
      out.list->push_back(Value::string(s.substr(i, j - i)));
      i = j;
    }
    return out;
  }
  if (!sep.is_string())
    throw JinjaError("split: the separator must be a string", line);
  if (sep.s.empty())
    throw JinjaError("split: empty separator", line);
  std::size_t start = 0;
  while (true) {
    if (maxsplit >= 0 && static_cast<std::int64_t>(out.list->size()) >= maxsplit)
      break;
    const std::size_t at = s.find(sep.s, start);
    if (at == std::string::npos)
      break;
    out.list->push_back(Value::string(s.substr(start, at - start)));
    start = at + sep.s.size();
  }
  out.list->push_back(Value::string(s.substr(start)));
  return out;
}

std::string replace_all(Interpreter& in, const std::string& s, const std::string& from, const std::string& to,
                        std::int64_t count, int line) {
  std::string out;
  if (from.empty()) {
    // Python inserts `to` between every character and at both ends.
    const auto chars = utf8_chars(s);
    std::int64_t n = 0;
    for (const auto& c : chars) {
      if (count < 0 || n < count) {
        out += to;
        ++n;
      }
      out += c;
      in.check_size(out.size(), line);
    }
    if (count < 0 || n < count)
      out += to;
    return out;
  }
  std::size_t start = 0;
  std::int64_t n = 0;
  while (count < 0 || n < count) {
    const std::size_t at = s.find(from, start);
    if (at == std::string::npos)
      break;
    out.append(s, start, at - start);
    out += to;
    in.check_size(out.size(), line);
    start = at + from.size();
    ++n;
  }
  out.append(s, start);
  return out;
}

std::string ascii_case(std::string s, bool upper) {
  for (char& c : s)
    c = static_cast<char>(upper ? std::toupper(static_cast<unsigned char>(c))
                                : std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::int64_t int_arg(const Value& v, std::int64_t fallback, const char* what, int line) {
  if (v.is_undefined() || v.is_none())
    return fallback;
  if (v.kind == Value::Kind::kInt)
    return v.i;
  if (v.kind == Value::Kind::kBool)
    return v.b;
  throw JinjaError(std::string(what) + ": an integer is required, not " + v.type_name(), line);
}

const std::string& str_arg(const Value& v, const char* what, int line) {
  if (!v.is_string())
    throw JinjaError(std::string(what) + ": a string is required, not " + v.type_name(), line);
  return v.s;
}

// str.format with {}, {0} and {name} fields (no format specs).
std::string py_format(const std::string& fmt, const CallArgs& a) {
  std::string out;
  std::size_t auto_index = 0;
  for (std::size_t i = 0; i < fmt.size(); ++i) {
    const char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
      out += '}';
      ++i;
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    const std::size_t close = fmt.find('}', i);
    if (close == std::string::npos)
      throw JinjaError("format: a '{' has no '}'", a.line);
    const std::string field = fmt.substr(i + 1, close - i - 1);
    if (field.find_first_of(":!.[") != std::string::npos)
      throw JinjaError("format: unsupported field '{" + field + "}'", a.line);
    Value v;
    if (field.empty()) {
      if (auto_index >= a.positional.size())
        throw JinjaError("format: too few arguments", a.line);
      v = a.positional[auto_index++];
    } else if (std::all_of(field.begin(), field.end(),
                           [](char d) { return std::isdigit(static_cast<unsigned char>(d)); })) {
      if (field.size() > 6)
        throw JinjaError("format: argument index " + field + " is out of range", a.line);
      const std::size_t k = std::stoul(field);
      if (k >= a.positional.size())
        throw JinjaError("format: too few arguments", a.line);
      v = a.positional[k];
    } else {
      bool found = false;
      for (const auto& [name, kv] : a.keyword) {
        if (name == field) {
          v = kv;
          found = true;
        }
      }
      if (!found)
        throw JinjaError("format: no argument named '" + field + "'", a.line);
    }
    out += to_str(v);
    i = close;
  }
  return out;
}

Value string_method(Interpreter& in, const Value& obj, const std::string& name, bool& found) {
  found = true;
  const std::string s = obj.s;
  auto fn = [](auto f) { return Value::function(f); };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const bool l = name != "rstrip", r = name != "lstrip";
    return fn([s, l, r](Interpreter&, CallArgs& a) { return Value::string(strip_chars(s, a.get(0, "chars"), l, r)); });
  }
  if (name == "split")
    return fn([s](Interpreter&, CallArgs& a) {
      return split(s, a.get(0, "sep"), int_arg(a.get(1, "maxsplit"), -1, "split", a.line), a.line);
    });
  if (name == "startswith" || name == "endswith") {
    const bool starts = name == "startswith";
    return fn([s, starts](Interpreter&, CallArgs& a) {
      const Value p = a.get(0, "prefix");
      List options = p.is_list() ? *p.list : List{p};
      for (const Value& o : options) {
        const std::string& t = str_arg(o, starts ? "startswith" : "endswith", a.line);
        if (t.size() <= s.size() &&
            (starts ? s.compare(0, t.size(), t) == 0 : s.compare(s.size() - t.size(), t.size(), t) == 0))
          return Value::boolean(true);
      }
      return Value::boolean(false);
    });
  }
  if (name == "replace")
    return fn([s](Interpreter& in2, CallArgs& a) {
      return Value::string(replace_all(in2, s, str_arg(a.get(0, "old"), "replace", a.line),
                                       str_arg(a.get(1, "new"), "replace", a.line),
                                       int_arg(a.get(2, "count"), -1, "replace", a.line), a.line));
    });
  if (name == "upper" || name == "lower") {
    const bool up = name == "upper";
    return fn([s, up](Interpreter&, CallArgs&) { return Value::string(ascii_case(s, up)); });
  }
  if (name == "title" || name == "capitalize") {
    const bool title = name == "title";
    return fn([s, title](Interpreter&, CallArgs&) {
      std::string out = s;
      bool prev_cased = false;
      for (std::size_t i = 0; i < out.size(); ++i) {
        const auto c = static_cast<unsigned char>(out[i]);
        const bool first = title ? !prev_cased : i == 0;
        out[i] = static_cast<char>(first ? std::toupper(c) : std::tolower(c));
        prev_cased = std::isalpha(c) != 0;
      }
      return Value::string(out);
    });
  }
  if (name == "format")
    return fn([s](Interpreter&, CallArgs& a) { return Value::string(py_format(s, a)); });
  if (name == "join")
    return fn([s](Interpreter& in2, CallArgs& a) {
      std::string out;
      bool first = true;
      for (const Value& v : iterate(a.get(0, "iterable"), a.line)) {
        if (!first)
          out += s;
        first = false;
        out += str_arg(v, "join", a.line);
        in2.check_size(out.size(), a.line);
      }
      return Value::string(out);
    });
  if (name == "find" || name == "rfind" || name == "count") {
    const std::string which = name;
    return fn([s, which](Interpreter&, CallArgs& a) {
      const std::string& t = str_arg(a.get(0, "sub"), which.c_str(), a.line);
      if (which == "count") {
        if (t.empty())
          return Value::integer(static_cast<std::int64_t>(utf8_length(s)) + 1);
        std::int64_t n = 0;
        for (std::size_t at = s.find(t); at != std::string::npos; at = s.find(t, at + t.size()))
          ++n;
        return Value::integer(n);
      }
      const std::size_t at = which == "find" ? s.find(t) : s.rfind(t);
      return Value::integer(at == std::string::npos ? -1 : static_cast<std::int64_t>(utf8_length(s.substr(0, at))));
    });
  }
  if (name == "splitlines")
    return fn([s](Interpreter&, CallArgs&) {
      Value out = Value::new_list();
      std::size_t start = 0;
      while (start < s.size()) {
        std::size_t at = s.find_first_of("\n\r", start);
        if (at == std::string::npos) {
          out.list->push_back(Value::string(s.substr(start)));
          break;
        }
        out.list->push_back(Value::string(s.substr(start, at - start)));
        start = at + ((s[at] == '\r' && at + 1 < s.size() && s[at + 1] == '\n') ? 2 : 1);
      }
      return out;
    });
  if (name == "isdigit" || name == "isalpha" || name == "isspace" || name == "isupper" || name == "islower" ||
      name == "isalnum") {
    const std::string which = name;
    return fn([s, which](Interpreter&, CallArgs&) {
      if (s.empty())
        return Value::boolean(false);
      bool cased = false;
      for (unsigned char c : s) {
        if (which == "isdigit" && !std::isdigit(c))
          return Value::boolean(false);
        if (which == "isalpha" && !std::isalpha(c))
          return Value::boolean(false);
        if (which == "isalnum" && !std::isalnum(c))
          return Value::boolean(false);
        if (which == "isspace" && !is_py_space(static_cast<char>(c)))
          return Value::boolean(false);
        if (which == "isupper" && std::islower(c))
          return Value::boolean(false);
        if (which == "islower" && std::isupper(c))
          return Value::boolean(false);
        cased = cased || std::isalpha(c);
      }
      return Value::boolean(which == "isupper" || which == "islower" ? cased : true);
    });
  }
  (void)in;
  found = false;
  return Value::undefined();
}

Value list_method(const Value& obj, const std::string& name, bool& found) {
  found = true;
  const std::shared_ptr<List> list = obj.list;
  auto fn = [](auto f) { return Value::function(f); };
  if (name == "append")
    return fn([list](Interpreter& in, CallArgs& a) {
      const Value v = a.get(0, "object");
      refuse_cycle(v, list.get(), a.line);
      in.count_iterations(1, a.line);  // each append is work a loop could repeat without end
      list->push_back(v);
      return Value::none();
    });
  if (name == "extend")
    return fn([list](Interpreter& in, CallArgs& a) {
      const Value v = a.get(0, "iterable");
      refuse_cycle(v, list.get(), a.line);
      List items = iterate(v, a.line);
      in.count_iterations(static_cast<std::int64_t>(items.size()), a.line);
      list->insert(list->end(), items.begin(), items.end());
      return Value::none();
    });
  if (name == "insert")
    return fn([list](Interpreter& in, CallArgs& a) {
      const Value v = a.get(1, "object");
      refuse_cycle(v, list.get(), a.line);
      in.count_iterations(1, a.line);
      auto n = static_cast<std::int64_t>(list->size());
      std::int64_t at = int_arg(a.get(0, "index"), 0, "insert", a.line);
      if (at < 0)
        at = std::max<std::int64_t>(0, at + n);
      at = std::min(at, n);
      list->insert(list->begin() + at, v);
      return Value::none();
    });
  if (name == "pop")
    return fn([list](Interpreter&, CallArgs& a) {
      const auto n = static_cast<std::int64_t>(list->size());
      std::int64_t at = int_arg(a.get(0, "index"), -1, "pop", a.line);
      if (at < 0)
        at += n;
      if (at < 0 || at >= n)
        throw JinjaError("pop index out of range", a.line);
      Value v = (*list)[static_cast<std::size_t>(at)];
      list->erase(list->begin() + at);
      return v;
    });
  if (name == "index" || name == "count") {
    const bool index = name == "index";
    return fn([list, index](Interpreter&, CallArgs& a) {
      const Value x = a.get(0, "value");
      std::int64_t n = 0;
      for (std::size_t i = 0; i < list->size(); ++i) {
        if (values_equal((*list)[i], x)) {
          if (index)
            return Value::integer(static_cast<std::int64_t>(i));
          ++n;
        }
      }
      if (index)
        throw JinjaError("the value is not in the list", a.line);
      return Value::integer(n);
    });
  }
  found = false;
  return Value::undefined();
}

Value dict_method(const Value& obj, const std::string& name, bool& found) {
  found = true;
  const std::shared_ptr<Dict> dict = obj.dict;
  auto fn = [](auto f) { return Value::function(f); };
  if (name == "items" || name == "keys" || name == "values") {
    const int which = name == "items" ? 0 : name == "keys" ? 1 : 2;
    return fn([dict, which](Interpreter&, CallArgs&) {
      Value out = Value::new_list();
      for (const auto& [k, v] : dict->items)
        out.list->push_back(which == 0 ? Value::new_list({k, v}) : which == 1 ? k : v);
      return out;
    });
  }
  if (name == "get")
    return fn([dict](Interpreter&, CallArgs& a) {
      const Value* v = dict->find(a.get(0, "key"));
      return v ? *v : a.get(1, "default", Value::none());
    });
  if (name == "pop")
    return fn([dict](Interpreter&, CallArgs& a) {
      const Value key = a.get(0, "key");
      for (auto it = dict->items.begin(); it != dict->items.end(); ++it) {
        if (values_equal(it->first, key)) {
          Value v = it->second;
          dict->items.erase(it);
          return v;
        }
      }
      if (a.positional.size() < 2)
        throw JinjaError("pop: the key " + to_repr(key) + " is not in the dict", a.line);
      return a.positional[1];
    });
  if (name == "update")
    return fn([dict](Interpreter&, CallArgs& a) {
      const Value other = a.get(0, "other");
      if (other.is_dict()) {
        for (const auto& [k, v] : other.dict->items) {
          refuse_cycle(v, dict.get(), a.line);
          dict->set(k, v);
        }
      }
      for (const auto& [k, v] : a.keyword) {
        refuse_cycle(v, dict.get(), a.line);
        dict->set(Value::string(k), v);
      }
      return Value::none();
    });
  found = false;
  return Value::undefined();
}

}  // namespace

Value get_attribute(Interpreter& in, const Value& obj, const std::string& name, int line, bool& found) {
  (void)line;
  found = false;
  switch (obj.kind) {
    case Value::Kind::kString:
      return string_method(in, obj, name, found);
    case Value::Kind::kList:
      return list_method(obj, name, found);
    case Value::Kind::kDict: {
      if (!obj.dict->is_namespace) {
        Value m = dict_method(obj, name, found);
        if (found)
          return m;
      }
      if (const Value* v = obj.dict->find(name)) {
        found = true;
        return *v;
      }
      return Value::undefined();
    }
    default:
      return Value::undefined();
  }
}

Value get_item(const Value& obj, const Value& key, bool& found) {
  found = false;
  if (obj.is_dict()) {
    if (const Value* v = obj.dict->find(key)) {
      found = true;
      return *v;
    }
    return Value::undefined();
  }
  if (obj.generator)
    return Value::undefined("'generator' object is not subscriptable");
  if ((obj.is_list() || obj.is_string()) && (key.kind == Value::Kind::kInt || key.kind == Value::Kind::kBool)) {
    std::int64_t i = key.kind == Value::Kind::kBool ? key.b : key.i;
    if (obj.is_list()) {
      const auto n = static_cast<std::int64_t>(obj.list->size());
      if (i < 0)
        i += n;
      if (i < 0 || i >= n)
        return Value::undefined("list index out of range");
      found = true;
      return (*obj.list)[static_cast<std::size_t>(i)];
    }
    const auto chars = utf8_chars(obj.s);
    const auto n = static_cast<std::int64_t>(chars.size());
    if (i < 0)
      i += n;
    if (i < 0 || i >= n)
      return Value::undefined("string index out of range");
    found = true;
    return Value::string(chars[static_cast<std::size_t>(i)]);
  }
  return Value::undefined();
}

List iterate(const Value& v, int line) {
  switch (v.kind) {
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kList: {
      List items = *v.list;
      if (v.generator)
        v.list->clear();  // consumed
      return items;
    }
    case Value::Kind::kDict: {
      List keys;
      for (const auto& [k, e] : v.dict->items)
        keys.push_back(k);
      return keys;
    }
    case Value::Kind::kString: {
      List chars;
      for (auto& c : utf8_chars(v.s))
        chars.push_back(Value::string(std::move(c)));
      return chars;
    }
    default:
      throw JinjaError("'" + v.type_name() + "' object is not iterable", line);
  }
}

}  // namespace halyard::runtime::jinja
