#include "halyard/hal/backend_options.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

namespace halyard {
namespace {

std::string list_keys(std::span<const BackendOption> table) {
  std::string out;
  for (const auto& o : table)
    out += (out.empty() ? "" : ", ") + std::string(o.key);
  return out.empty() ? "(none)" : out;
}

std::string list_values(const BackendOption& o) {
  std::string out;
  for (std::string_view v : o.values)
    out += (out.empty() ? "" : ", ") + std::string(v);
  return out;
}

std::string source_of(const BackendOption& o, const OptionSetting& s) {
  // Name the variable when the value may have come from it, so a bad environment is findable.
  std::string where = "option " + s.key;
  if (!o.env.empty())
    where += " (or " + std::string(o.env) + ")";
  return where;
}

// Checks `value` against the option's type; returns the canonical text.
Result<std::string> check_value(const BackendOption& o, const OptionSetting& s) {
  const std::string& v = s.value;
  switch (o.type) {
    case OptionType::kBool: {
      const auto b = parse_bool_value(v);
      if (!b)
        return invalid_argument(source_of(o, s) + ": '" + v + "' is not a boolean; use 1 or 0 (true/false, on/off)");
      return std::string(*b ? "1" : "0");
    }
    case OptionType::kInt: {
      std::int64_t n = 0;
      const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (v.empty() || ec != std::errc() || ptr != v.data() + v.size())
        return invalid_argument(source_of(o, s) + ": '" + v + "' is not an integer");
      if (n < o.min || n > o.max) {
        return invalid_argument(source_of(o, s) + ": " + v + " is outside [" + std::to_string(o.min) + ", " +
                                std::to_string(o.max) + "]");
      }
      return std::to_string(n);
    }
    case OptionType::kEnum:
      if (std::find(o.values.begin(), o.values.end(), std::string_view(v)) == o.values.end())
        return invalid_argument(source_of(o, s) + ": '" + v + "' is not one of: " + list_values(o));
      return v;
    case OptionType::kString:
      return v;
  }
  return v;
}

}  // namespace

std::string_view option_type_name(OptionType type) {
  switch (type) {
    case OptionType::kBool:
      return "bool";
    case OptionType::kInt:
      return "int";
    case OptionType::kString:
      return "string";
    case OptionType::kEnum:
      return "enum";
  }
  return "unknown";
}

std::optional<bool> parse_bool_value(std::string_view t) {
  if (t == "1" || t == "true" || t == "on" || t == "yes")
    return true;
  if (t == "0" || t == "false" || t == "off" || t == "no")
    return false;
  return std::nullopt;
}

Result<OptionSetting> parse_option_setting(std::string_view text) {
  const auto eq = text.find('=');
  OptionSetting s;
  s.key = std::string(text.substr(0, eq));
  s.value = eq == std::string_view::npos ? "1" : std::string(text.substr(eq + 1));
  if (s.key.empty() || option_backend(s.key).empty() || s.key.back() == '.') {
    return invalid_argument("malformed backend option '" + std::string(text) +
                            "'; write <backend>.<name>=<value>, e.g. cpu.kernels=avx2 (halyard devices --options "
                            "lists them)");
  }
  return s;
}

std::string_view option_backend(std::string_view key) {
  const auto dot = key.find('.');
  return dot == std::string_view::npos ? std::string_view() : key.substr(0, dot);
}

std::optional<std::string> option_environment_value(const BackendOption& option) {
  if (option.env.empty())
    return std::nullopt;
  const std::string name(option.env);
  const char* v = std::getenv(name.c_str());
  if (!v || !*v)
    return std::nullopt;  // set but empty counts as unset, as the variables always did
  return std::string(v);
}

std::vector<OptionSetting> with_environment(std::span<const BackendOption> table,
                                            std::span<const OptionSetting> explicit_settings) {
  std::vector<OptionSetting> out(explicit_settings.begin(), explicit_settings.end());
  for (const auto& o : table) {
    const bool given = std::any_of(explicit_settings.begin(), explicit_settings.end(),
                                   [&](const OptionSetting& s) { return s.key == o.key; });
    if (given)
      continue;
    if (auto v = option_environment_value(o))
      out.push_back({std::string(o.key), std::move(*v)});
  }
  return out;
}

Result<BackendOptionValues> BackendOptionValues::resolve(std::string_view backend, std::span<const BackendOption> table,
                                                         std::span<const OptionSetting> settings) {
  BackendOptionValues values;
  for (const auto& o : table)
    values.entries_.push_back({o.key, std::string(o.default_value), false});
  for (const auto& s : settings) {
    if (option_backend(s.key) != backend)
      continue;  // another backend's: the registry checked that such a backend exists
    const auto it = std::find_if(table.begin(), table.end(), [&](const BackendOption& o) { return o.key == s.key; });
    if (it == table.end()) {
      return invalid_argument("unknown option '" + s.key + "' for backend " + std::string(backend) +
                              "; its options are: " + list_keys(table));
    }
    HALYARD_ASSIGN_OR_RETURN(std::string canonical, check_value(*it, s));
    Entry& e = values.entries_[static_cast<std::size_t>(it - table.begin())];
    e.value = std::move(canonical);
    e.set = true;
  }
  return values;
}

const BackendOptionValues::Entry* BackendOptionValues::find(std::string_view key) const {
  for (const auto& e : entries_) {
    if (e.key == key)
      return &e;
  }
  return nullptr;
}

const std::string& BackendOptionValues::text(std::string_view key) const {
  static const std::string kEmpty;
  const Entry* e = find(key);
  return e ? e->value : kEmpty;
}

bool BackendOptionValues::flag(std::string_view key) const {
  return parse_bool_value(text(key)).value_or(false);
}

std::int64_t BackendOptionValues::integer(std::string_view key) const {
  const std::string& t = text(key);
  std::int64_t n = 0;
  std::from_chars(t.data(), t.data() + t.size(), n);
  return n;
}

bool BackendOptionValues::is_set(std::string_view key) const {
  const Entry* e = find(key);
  return e && e->set;
}

}  // namespace halyard
