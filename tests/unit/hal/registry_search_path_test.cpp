// The default plugin search order (RegistryOptions::from_environment): HALYARD_PLUGIN_PATH, then
// the directory of libhalyard-hal.so and its halyard/ subdirectory, then the executable's
// directory, each once. No directory fixed at build time takes part, so a moved install works.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "halyard/hal/registry.h"
#include "test_paths.h"

namespace halyard {
namespace {

namespace fs = std::filesystem;

// Sets (or unsets) an environment variable for one test and restores it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name))
      old_ = old;
    if (value)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// libhalyard-hal.so and this test executable are both in the build tree's bin/.
fs::path library_dir() {
  return fs::canonical(testing::plugin_dir());
}

TEST(RegistrySearchPath, StartsWithTheLibraryDirectoryAndItsHalyardSubdirectory) {
  ScopedEnv env("HALYARD_PLUGIN_PATH", nullptr);
  const auto paths = RegistryOptions::from_environment().search_paths;
  ASSERT_EQ(paths.size(), 2u) << "the executable's directory is the library's here, searched once";
  EXPECT_EQ(fs::canonical(paths[0]), library_dir());
  EXPECT_EQ(fs::path(paths[1]), fs::path(paths[0]) / "halyard");
}

TEST(RegistrySearchPath, EnvironmentComesFirstInItsOrder) {
  ScopedEnv env("HALYARD_PLUGIN_PATH", "/opt/first::/opt/second:/opt/first:");
  const auto paths = RegistryOptions::from_environment().search_paths;
  ASSERT_EQ(paths.size(), 4u);
  EXPECT_EQ(paths[0], "/opt/first");
  EXPECT_EQ(paths[1], "/opt/second");
  EXPECT_EQ(fs::canonical(paths[2]), library_dir());
  EXPECT_EQ(fs::path(paths[3]), fs::path(paths[2]) / "halyard");
}

TEST(RegistrySearchPath, LoadsThePluginsBesideTheLibrary) {
  ScopedEnv env("HALYARD_PLUGIN_PATH", nullptr);
  auto reg = BackendRegistry::load(RegistryOptions::from_environment());
  ASSERT_TRUE(reg.is_ok()) << reg.status().to_string();
  EXPECT_NE(reg.value()->find("ref"), nullptr);
}

}  // namespace
}  // namespace halyard
