// The Vulkan backend's own behaviour, on whatever Vulkan device this machine has (Mesa's
// lavapipe in CI): availability reasons, device details, validation failing a run. What every
// GPU backend must do is in tests/unit/gpu/device_contract_test.cpp; op and model correctness
// is the conformance suite's job.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "halyard/hal/registry.h"
#include "test_registry.h"

namespace halyard {
namespace {

using testing::load_registry;

// Sets an environment variable for one test and restores it after, so the tests also hold when
// the whole binary runs in one process (ctest runs each in its own).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name))
      old_ = old, had_ = true;
    ::setenv(name, value, 1);
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

// The device, or a skip that says why there is none.
#define OPEN_VULKAN_OR_SKIP(reg, dev)                                           \
  auto reg = load_registry();                                                   \
  ASSERT_NE(reg, nullptr);                                                      \
  ASSERT_NE(reg->find("vulkan"), nullptr) << "the vulkan plugin was not built"; \
  if (Status a = reg->find("vulkan")->availability(); !a.is_ok())               \
    GTEST_SKIP() << "vulkan unavailable: " << a.message();                      \
  auto dev##_r = reg->open_device("vulkan:0");                                  \
  ASSERT_TRUE(dev##_r.is_ok()) << dev##_r.status().to_string();                 \
  std::unique_ptr<Device> dev = std::move(dev##_r).value()

TEST(VulkanBackend, NoDriverMeansUnavailableWithTheReason) {
  ScopedEnv icd("VK_ICD_FILENAMES", "/nonexistent/halyard-no-such-icd.json");
  ScopedEnv drivers("VK_DRIVER_FILES", "/nonexistent/halyard-no-such-icd.json");
  auto reg = load_registry();
  ASSERT_NE(reg, nullptr);
  Backend* vk = reg->find("vulkan");
  ASSERT_NE(vk, nullptr);
  const Status a = vk->availability();
  ASSERT_FALSE(a.is_ok());
  EXPECT_EQ(a.code(), StatusCode::kUnavailable);
  EXPECT_FALSE(a.message().empty());
  auto dev = reg->open_device("vulkan:0");
  ASSERT_FALSE(dev.is_ok());
  EXPECT_NE(dev.status().message().find(a.message()), std::string::npos) << dev.status().to_string();
}

TEST(VulkanBackend, DevicesReportTheirCapabilities) {
  OPEN_VULKAN_OR_SKIP(reg, dev);
  const DeviceInfo& info = dev->info();
  EXPECT_EQ(info.uri, "vulkan:0");
  EXPECT_FALSE(info.name.empty());
  for (const char* key : {"Vulkan 1.", "heaps", "subgroup", "shared", "fp16", "int8", "bf16", "cooperative matrix",
                          "max binding", "max allocation"}) {
    EXPECT_NE(info.details.find(key), std::string::npos) << key << " missing from: " << info.details;
  }
  EXPECT_FALSE(reg->open_device("vulkan:99").is_ok());
}

TEST(VulkanBackend, AValidationMessageFailsTheRun) {
  ScopedEnv validation("HALYARD_VULKAN_VALIDATION", "1");
  ScopedEnv invalid("HALYARD_VULKAN_SELFTEST_INVALID_USAGE", "1");
  OPEN_VULKAN_OR_SKIP(reg, dev);
  auto buffer = dev->allocate(64);
  ASSERT_FALSE(buffer.is_ok()) << "the invalid usage was not reported";
  EXPECT_NE(buffer.status().message().find("Vulkan validation"), std::string::npos) << buffer.status().to_string();
}

}  // namespace
}  // namespace halyard
