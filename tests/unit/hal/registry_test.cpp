#include "halyard/hal/registry.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "halyard/hal/plugin_abi.h"
#include "test_paths.h"

namespace halyard {
namespace {

RegistryOptions only(const std::string& dir) {
  RegistryOptions o;
  o.search_paths = {dir};
  return o;
}

TEST(Registry, FindsTheReferencePlugin) {
  auto reg = BackendRegistry::load(only(testing::plugin_dir()));
  ASSERT_TRUE(reg.is_ok()) << reg.status().to_string();
  Backend* ref = reg.value()->find("ref");
  ASSERT_NE(ref, nullptr);
  EXPECT_TRUE(ref->availability().is_ok());
  auto dev = reg.value()->open_device("ref");
  ASSERT_TRUE(dev.is_ok()) << dev.status().to_string();
  EXPECT_EQ(dev.value()->info().uri, "ref");
  EXPECT_TRUE(reg.value()->open_device("ref:0").is_ok());
}

TEST(Registry, AutoPicksAnAvailableDevice) {
  auto reg = BackendRegistry::load(only(testing::plugin_dir()));
  ASSERT_TRUE(reg.is_ok());
  auto uri = reg.value()->resolve("auto");
  ASSERT_TRUE(uri.is_ok()) << uri.status().to_string();
  EXPECT_FALSE(uri.value().empty());
  EXPECT_NE(uri.value(), "auto");
}

TEST(Registry, MissingPluginDirectoryIsAClearError) {
  auto reg = BackendRegistry::load(only("/nonexistent/halyard/plugins"));
  ASSERT_FALSE(reg.is_ok());
  EXPECT_EQ(reg.status().code(), StatusCode::kNotFound);
  EXPECT_NE(reg.status().message().find("/nonexistent/halyard/plugins"), std::string::npos);
  EXPECT_NE(reg.status().message().find("HALYARD_PLUGIN_PATH"), std::string::npos);
}

TEST(Registry, DirectoryWithoutPluginsIsAClearError) {
  const auto dir = std::filesystem::temp_directory_path() / "halyard-empty-plugin-dir";
  std::filesystem::create_directories(dir);
  auto reg = BackendRegistry::load(only(dir.string()));
  ASSERT_FALSE(reg.is_ok());
  EXPECT_NE(reg.status().message().find("no usable backend plugin"), std::string::npos);
}

TEST(Registry, WrongAbiVersionIsRefused) {
  BackendRegistry reg;
  const Status s = reg.load_plugin(HALYARD_BAD_ABI_PLUGIN);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("ABI version " + std::to_string(HALYARD_BACKEND_ABI_VERSION + 1)), std::string::npos)
      << s.message();
  EXPECT_EQ(reg.find("badabi"), nullptr);
  ASSERT_EQ(reg.problems().size(), 1u);
}

TEST(Registry, LibraryWithoutEntryPointIsRefused) {
  BackendRegistry reg;
  const Status s = reg.load_plugin(testing::plugin_dir() + "/libhalyard-hal.so");
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("not a Halyard backend plugin"), std::string::npos) << s.message();
}

TEST(Registry, UnloadableFileIsRefused) {
  BackendRegistry reg;
  const Status s = reg.load_plugin("/nonexistent/libhalyard-backend-x.so");
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("cannot load"), std::string::npos);
}

TEST(Registry, UnknownDeviceUriIsAClearError) {
  auto reg = BackendRegistry::load(only(testing::plugin_dir()));
  ASSERT_TRUE(reg.is_ok());
  auto d = reg.value()->open_device("nosuch:0");
  ASSERT_FALSE(d.is_ok());
  EXPECT_EQ(d.status().code(), StatusCode::kNotFound);
  EXPECT_NE(d.status().message().find("no backend named 'nosuch'"), std::string::npos) << d.status().message();

  auto d2 = reg.value()->open_device("ref:3");
  ASSERT_FALSE(d2.is_ok());
  EXPECT_NE(d2.status().message().find("does not exist"), std::string::npos);
}

TEST(DeviceUri, Parses) {
  auto u = DeviceUri::parse("cuda:1");
  ASSERT_TRUE(u.is_ok());
  EXPECT_EQ(u->backend, "cuda");
  EXPECT_EQ(u->index, 1);
  EXPECT_EQ(DeviceUri::parse("cpu")->index, 0);
  EXPECT_FALSE(DeviceUri::parse("").is_ok());
  EXPECT_FALSE(DeviceUri::parse("vulkan:").is_ok());
  EXPECT_FALSE(DeviceUri::parse("vulkan:x").is_ok());
  EXPECT_FALSE(DeviceUri::parse("vulkan:-1").is_ok());
  EXPECT_FALSE(DeviceUri::parse("Cu da").is_ok());
}

}  // namespace
}  // namespace halyard
