// Backend options: the settings a backend takes when one of its devices is opened (a kernel set,
// a validation layer, CUDA graphs on or off, ...). Each backend declares its options once, in a
// static table of BackendOption (Backend::options()); the table is what `halyard devices
// --options` prints, what the registry fills from HALYARD_* environment variables, and what the
// backend checks the caller's settings against when it opens a device.
//
// Settings are "key=value" strings whose key is "<backend>.<name>" (cpu.kernels=avx2). The
// precedence is: an explicit setting (a CLI -o flag, the C API's backend_options) over the
// option's environment variable over its default. The environment is read in one place,
// option_environment_value(), called by the registry when it opens a device.
//
// Lifetime: a BackendOption table is static data of its plugin and lives as long as the plugin
// is loaded (the registry never unloads one). Thread safety: all functions here are pure except
// option_environment_value(), which reads the environment (safe while no thread changes it).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "halyard/hal/status.h"

namespace halyard {

enum class OptionType : std::uint8_t { kBool, kInt, kString, kEnum };
std::string_view option_type_name(OptionType type);

// One option of one backend. All strings are static.
struct BackendOption {
  std::string_view key;  // "cpu.kernels": "<backend>.<name>"
  OptionType type = OptionType::kString;
  std::string_view default_value;                 // as text; "" for a string or enum means "the backend chooses"
  std::string_view env;                           // the HALYARD_* variable that sets it; "" if none
  std::string_view doc;                           // one line
  std::span<const std::string_view> values = {};  // kEnum: the allowed values
  std::int64_t min = 0, max = 0;                  // kInt: the allowed range, inclusive
};

// A setting as a caller gives it.
struct OptionSetting {
  std::string key;
  std::string value;
  bool operator==(const OptionSetting&) const = default;
};

// Parses "key=value". A bare "key" means "key=1" (for boolean options: -o vulkan.no_fp16).
Result<OptionSetting> parse_option_setting(std::string_view text);

// The value of the option's environment variable, if it has one and it is set and not empty.
// The one place a backend option is read from the environment.
std::optional<std::string> option_environment_value(const BackendOption& option);

// `explicit_settings` followed by, for every option of `table` that none of them sets, the value
// of its environment variable when that is set. Settings for other backends pass through.
std::vector<OptionSetting> with_environment(std::span<const BackendOption> table,
                                            std::span<const OptionSetting> explicit_settings);

// The backend name of a setting's key: "cpu" for "cpu.kernels"; empty if the key has no dot.
std::string_view option_backend(std::string_view key);

// The options of one backend as it reads them when a device is opened: every option of its
// table, set from the settings (the last setting of a key wins) or else its default. Settings
// whose key names another backend are ignored; one that names this backend but no option of
// it, or a value of the wrong type or outside the allowed values, is an invalid_argument error
// that lists what is allowed.
class BackendOptionValues {
 public:
  static Result<BackendOptionValues> resolve(std::string_view backend, std::span<const BackendOption> table,
                                             std::span<const OptionSetting> settings);
  // The value of an option of the table (the checked text, the default if unset). Asking for a
  // key that is not in the table is a programming error and returns "" / false / 0.
  const std::string& text(std::string_view key) const;
  bool flag(std::string_view key) const;
  std::int64_t integer(std::string_view key) const;
  // True when a setting (explicit or from the environment) gave the value.
  bool is_set(std::string_view key) const;

 private:
  struct Entry {
    std::string_view key;
    std::string value;
    bool set = false;
  };
  const Entry* find(std::string_view key) const;
  std::vector<Entry> entries_;
};

// Parses a boolean value: 1/0, true/false, on/off, yes/no.
std::optional<bool> parse_bool_value(std::string_view text);

}  // namespace halyard
