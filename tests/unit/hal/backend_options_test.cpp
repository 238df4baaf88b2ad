// Backend options: parsing "key=value", checking settings against a backend's table, and the
// precedence explicit > environment > default; then the same through the registry and the cpu
// plugin (HALYARD_CPU_KERNELS reaches every caller of open_device).
#include "halyard/hal/backend_options.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "halyard/hal/registry.h"
#include "test_paths.h"

namespace halyard {
namespace {

constexpr std::string_view kModes[] = {"fast", "exact"};
constexpr BackendOption kTable[] = {
    {"demo.mode", OptionType::kEnum, "fast", "HALYARD_TEST_DEMO_MODE", "a mode", kModes},
    {"demo.verbose", OptionType::kBool, "0", "HALYARD_TEST_DEMO_VERBOSE", "a flag"},
    {"demo.chunk", OptionType::kInt, "0", "HALYARD_TEST_DEMO_CHUNK", "a number", {}, 0, 4096},
    {"demo.name", OptionType::kString, "", "", "free text"},
};

// Sets (or unsets, for nullptr) a variable for one test and restores it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = ::getenv(name))
      old_ = old, had_ = true;
    if (value)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_)
      ::setenv(name_.c_str(), old_.c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }

 private:
  std::string name_, old_;
  bool had_ = false;
};

TEST(BackendOptions, ParsesKeyValueAndBareFlags) {
  auto s = parse_option_setting("cpu.kernels=avx2");
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(s.value(), (OptionSetting{"cpu.kernels", "avx2"}));
  auto flag = parse_option_setting("vulkan.no_fp16");
  ASSERT_TRUE(flag.is_ok());
  EXPECT_EQ(flag.value(), (OptionSetting{"vulkan.no_fp16", "1"}));
  auto with_eq = parse_option_setting("demo.name=a=b");
  ASSERT_TRUE(with_eq.is_ok());
  EXPECT_EQ(with_eq.value().value, "a=b");
  for (const char* bad : {"kernels=avx2", "=1", "cpu.=1", ""}) {
    auto r = parse_option_setting(bad);
    ASSERT_FALSE(r.is_ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("<backend>.<name>=<value>"), std::string::npos) << r.status().message();
  }
}

TEST(BackendOptions, DefaultsApplyWhenNothingIsSet) {
  auto v = BackendOptionValues::resolve("demo", kTable, {});
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(v.value().text("demo.mode"), "fast");
  EXPECT_FALSE(v.value().flag("demo.verbose"));
  EXPECT_EQ(v.value().integer("demo.chunk"), 0);
  EXPECT_FALSE(v.value().is_set("demo.mode"));
}

TEST(BackendOptions, UnknownKeyNamesTheValidOnes) {
  const OptionSetting s[] = {{"demo.mood", "fast"}};
  auto v = BackendOptionValues::resolve("demo", kTable, s);
  ASSERT_FALSE(v.is_ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
  const std::string& m = v.status().message();
  EXPECT_NE(m.find("demo.mood"), std::string::npos) << m;
  EXPECT_NE(m.find("demo.mode, demo.verbose, demo.chunk, demo.name"), std::string::npos) << m;
}

TEST(BackendOptions, BadValuesSayWhatIsAllowed) {
  struct Case {
    OptionSetting setting;
    const char* expected;
  };
  const Case cases[] = {{{"demo.mode", "slow"}, "not one of: fast, exact"},
                        {{"demo.verbose", "maybe"}, "not a boolean"},
                        {{"demo.chunk", "12k"}, "not an integer"},
                        {{"demo.chunk", "5000"}, "outside [0, 4096]"}};
  for (const auto& c : cases) {
    const OptionSetting s[] = {c.setting};
    auto v = BackendOptionValues::resolve("demo", kTable, s);
    ASSERT_FALSE(v.is_ok()) << c.setting.key << "=" << c.setting.value;
    EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(v.status().message().find(c.expected), std::string::npos) << v.status().message();
    // The message names the variable too, for a value that came from the environment.
    EXPECT_NE(v.status().message().find("HALYARD_TEST_DEMO_"), std::string::npos) << v.status().message();
  }
}

TEST(BackendOptions, OtherBackendsSettingsAreIgnoredAndTheLastSettingWins) {
  const OptionSetting s[] = {{"cpu.kernels", "avx2"},
                             {"demo.mode", "exact"},
                             {"demo.verbose", "on"},
                             {"demo.chunk", "64"},
                             {"demo.chunk", "128"}};
  auto v = BackendOptionValues::resolve("demo", kTable, s);
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(v.value().text("demo.mode"), "exact");
  EXPECT_TRUE(v.value().flag("demo.verbose"));
  EXPECT_EQ(v.value().integer("demo.chunk"), 128);
  EXPECT_TRUE(v.value().is_set("demo.chunk"));
}

TEST(BackendOptions, ExplicitBeatsEnvironmentBeatsDefault) {
  ScopedEnv mode("HALYARD_TEST_DEMO_MODE", "exact");
  ScopedEnv chunk("HALYARD_TEST_DEMO_CHUNK", "256");
  ScopedEnv verbose("HALYARD_TEST_DEMO_VERBOSE", "");  // empty counts as unset
  const OptionSetting given[] = {{"demo.chunk", "512"}};
  const auto settings = with_environment(kTable, given);
  auto v = BackendOptionValues::resolve("demo", kTable, settings);
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(v.value().integer("demo.chunk"), 512);  // explicit
  EXPECT_EQ(v.value().text("demo.mode"), "exact");  // environment
  EXPECT_FALSE(v.value().is_set("demo.verbose"));   // default
  EXPECT_EQ(settings.size(), 2u);
}

TEST(BackendOptions, ABadEnvironmentValueFailsWithTheVariablesName) {
  ScopedEnv mode("HALYARD_TEST_DEMO_MODE", "bogus");
  auto v = BackendOptionValues::resolve("demo", kTable, with_environment(kTable, {}));
  ASSERT_FALSE(v.is_ok());
  EXPECT_NE(v.status().message().find("HALYARD_TEST_DEMO_MODE"), std::string::npos) << v.status().message();
}

std::unique_ptr<BackendRegistry> plugins() {
  RegistryOptions o;
  o.search_paths = {testing::plugin_dir()};
  auto reg = BackendRegistry::load(o);
  EXPECT_TRUE(reg.is_ok()) << reg.status().to_string();
  return reg.is_ok() ? std::move(reg).value() : nullptr;
}

TEST(BackendOptions, AnOptionOfNoLoadedBackendIsRefused) {
  auto reg = plugins();
  ASSERT_NE(reg, nullptr);
  DeviceOptions o;
  o.backend_options = {{"nosuch.flag", "1"}};
  auto dev = reg->open_device("ref", o);
  ASSERT_FALSE(dev.is_ok());
  EXPECT_EQ(dev.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(dev.status().message().find("no backend named 'nosuch'"), std::string::npos) << dev.status().message();
  // ref has no options: one meant for it is refused too, not ignored.
  o.backend_options = {{"ref.fast", "1"}};
  dev = reg->open_device("ref", o);
  ASSERT_FALSE(dev.is_ok());
  EXPECT_NE(dev.status().message().find("unknown option 'ref.fast' for backend ref; its options are: (none)"),
            std::string::npos)
      << dev.status().message();
}

// The cpu plugin's table, through the registry: HALYARD_CPU_KERNELS reaches open_device for
// every caller (generate, conform, the conformance drivers), and an explicit setting beats it.
TEST(BackendOptions, TheRegistryAppliesTheCpuEnvironment) {
  auto reg = plugins();
  ASSERT_NE(reg, nullptr);
  Backend* cpu = reg->find("cpu");
  if (!cpu)
    GTEST_SKIP() << "the cpu plugin is not built";
  bool listed = false;
  for (const auto& o : cpu->options())
    listed |= o.key == "cpu.kernels" && o.env == "HALYARD_CPU_KERNELS" && o.default_value == "auto";
  EXPECT_TRUE(listed);
  ScopedEnv kernels("HALYARD_CPU_KERNELS", "bogus");
  auto dev = reg->open_device("cpu");
  ASSERT_FALSE(dev.is_ok());
  EXPECT_EQ(dev.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(dev.status().message().find("HALYARD_CPU_KERNELS"), std::string::npos) << dev.status().message();
  EXPECT_NE(dev.status().message().find("generic, avx2, avx512vnni"), std::string::npos) << dev.status().message();
  DeviceOptions o;
  o.backend_options = {{"cpu.kernels", "generic"}};
  auto generic = reg->open_device("cpu", o);
  ASSERT_TRUE(generic.is_ok()) << generic.status().to_string();
  EXPECT_NE(generic.value()->info().details.find("generic kernels"), std::string::npos)
      << generic.value()->info().details;
  o.backend_options = {{"cpu.kernals", "generic"}};
  auto typo = reg->open_device("cpu", o);
  ASSERT_FALSE(typo.is_ok());
  EXPECT_NE(typo.status().message().find("cpu.kernels, cpu.prefill"), std::string::npos) << typo.status().message();
}

}  // namespace
}  // namespace halyard
