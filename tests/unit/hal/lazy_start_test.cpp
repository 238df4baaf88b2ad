// Backends start their vendor runtime only when used: opening `cpu` maps no Vulkan loader and no
// CUDA or HIP runtime; listing the devices does start them. This binary is its own process (each
// ctest entry is), so /proc/self/maps shows what this test alone loaded; keep the cpu test first
// when the binary runs whole.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "halyard/hal/registry.h"
#include "test_paths.h"

namespace halyard {
namespace {

bool mapped(const std::string& library) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find("/" + library) != std::string::npos)
      return true;
  }
  return false;
}

constexpr const char* kVendorLibraries[] = {"libvulkan.so", "libcuda.so", "libamdhip64.so", "libhsa-runtime64.so",
                                            "libcudart.so"};

TEST(LazyStart, OpeningCpuStartsNoOtherBackend) {
  for (const char* lib : kVendorLibraries)
    ASSERT_FALSE(mapped(lib)) << lib << " was mapped before the test began";
  RegistryOptions o;
  o.search_paths = {testing::plugin_dir()};
  auto reg = BackendRegistry::load(o);
  ASSERT_TRUE(reg.is_ok()) << reg.status().to_string();
  if (!reg.value()->find("cpu"))
    GTEST_SKIP() << "the cpu plugin is not built";
  auto dev = reg.value()->open_device("cpu");
  ASSERT_TRUE(dev.is_ok()) << dev.status().to_string();
  for (const char* lib : kVendorLibraries)
    EXPECT_FALSE(mapped(lib)) << "opening cpu mapped " << lib;

  // Listing what each backend has starts them: then the Vulkan loader is mapped (where the
  // plugin is built and the loader installed, as here).
  Backend* vulkan = reg.value()->find("vulkan");
  if (!vulkan)
    GTEST_SKIP() << "the vulkan plugin is not built";
  for (Backend* b : reg.value()->backends())
    (void)b->availability();
  const Status a = vulkan->availability();
  if (a.message().find("not installed") != std::string::npos)
    GTEST_SKIP() << "no Vulkan loader here: " << a.message();
  EXPECT_TRUE(mapped("libvulkan.so")) << "listing devices did not start vulkan: " << a.to_string();
}

// The hip plugin is a loader that needs neither the HIP runtime nor its implementation library to
// load; without the implementation beside it, it reports the backend unavailable with the reason
// (and still lists its options).
TEST(LazyStart, HipPluginWithoutItsImplementationIsUnavailableWithTheReason) {
  const std::filesystem::path plugin = std::filesystem::path(testing::plugin_dir()) / "libhalyard-backend-hip.so";
  if (!std::filesystem::exists(plugin))
    GTEST_SKIP() << "the hip plugin is not built";
  const auto dir = std::filesystem::temp_directory_path() / ("halyard-hip-alone-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(plugin, dir / plugin.filename(), std::filesystem::copy_options::overwrite_existing);
  BackendRegistry reg;
  const Status loaded = reg.load_plugin((dir / plugin.filename()).string());
  ASSERT_TRUE(loaded.is_ok()) << loaded.to_string();
  Backend* hip = reg.find("hip");
  ASSERT_NE(hip, nullptr);
  ASSERT_FALSE(hip->options().empty());
  EXPECT_EQ(hip->options()[0].key, "hip.graphs");
  const Status a = hip->availability();
  ASSERT_FALSE(a.is_ok());
  EXPECT_EQ(a.code(), StatusCode::kUnavailable);
  // Where the HIP runtime is installed the implementation is what is missing; elsewhere the runtime.
  const bool names_cause = a.message().find("libhalyard-hip-impl.so") != std::string::npos ||
                           a.message().find("libamdhip64.so.5 not found") != std::string::npos;
  EXPECT_TRUE(names_cause) << a.message();
  EXPECT_TRUE(hip->devices().empty());
  auto dev = reg.open_device("hip:0");
  ASSERT_FALSE(dev.is_ok());
  EXPECT_NE(dev.status().message().find(a.message()), std::string::npos) << dev.status().to_string();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace halyard
