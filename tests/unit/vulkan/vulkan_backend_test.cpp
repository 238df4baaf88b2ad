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

#include "halyard/hal/dtype.h"
#include "halyard/hal/graph.h"
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

// A validation message, whatever provoked it, fails every later call. The test provokes messages
// itself, with no hook in the backend: the layer's own setting VK_LAYER_ENABLES turns on its
// best-practices checks, which report the backend's ordinary calls (the debug-utils extension at
// vkCreateInstance, its 16-byte dummy buffer's allocation). The HAL gives no Vulkan handle to
// misuse, and every invalid HAL call is refused before it reaches Vulkan.
TEST(VulkanBackend, AValidationMessageFailsTheRun) {
  ScopedEnv best_practices("VK_LAYER_ENABLES", "VK_VALIDATION_FEATURE_ENABLE_BEST_PRACTICES_EXT");
  auto reg = load_registry();
  ASSERT_NE(reg, nullptr);
  ASSERT_NE(reg->find("vulkan"), nullptr) << "the vulkan plugin was not built";
  if (Status a = reg->find("vulkan")->availability(); !a.is_ok())
    GTEST_SKIP() << "vulkan unavailable: " << a.message();
  DeviceOptions validated;
  validated.backend_options = {{"vulkan.validation", "1"}};
  auto dev = reg->open_device("vulkan:0", validated);
  ASSERT_TRUE(dev.is_ok()) << dev.status().to_string();
  auto buffer = dev.value()->allocate(64);
  ASSERT_FALSE(buffer.is_ok()) << "the layer's messages were not reported";
  EXPECT_NE(buffer.status().message().find("Vulkan validation"), std::string::npos) << buffer.status().to_string();
  // Without validation the same calls pass: the messages, not the setting, failed the run.
  DeviceOptions plain;
  plain.backend_options = {{"vulkan.validation", "0"}};
  auto quiet = reg->open_device("vulkan:0", plain);
  ASSERT_TRUE(quiet.is_ok()) << quiet.status().to_string();
  EXPECT_TRUE(quiet.value()->allocate(64).is_ok());
}

// The documented variables reach the device through the registry, an explicit setting beats its
// variable, and the device reports what it chose (read once, when it was created).
TEST(VulkanBackend, OptionsAndTheirVariablesReachTheDevice) {
  ScopedEnv no_subgroups("HALYARD_VULKAN_NO_SUBGROUPS", "1");
  ScopedEnv chunk("HALYARD_VULKAN_WEIGHT_CHUNK_BYTES", "2048");
  ScopedEnv staging("HALYARD_VULKAN_FORCE_STAGING", "1");
  OPEN_VULKAN_OR_SKIP(reg, dev);
  const std::string& details = dev->info().details;
  EXPECT_NE(details.find("shared-memory reductions"), std::string::npos) << details;
  EXPECT_NE(details.find("weight ranges up to 2048 bytes"), std::string::npos) << details;
  EXPECT_NE(details.find("staging copies"), std::string::npos) << details;
  if (details.find("(arithmetic)") == std::string::npos)
    GTEST_SKIP() << "this device has no subgroup arithmetic to turn back on";
  DeviceOptions o;
  o.backend_options = {{"vulkan.no_subgroups", "0"}};
  auto explicit_dev = reg->open_device("vulkan:0", o);
  ASSERT_TRUE(explicit_dev.is_ok()) << explicit_dev.status().to_string();
  EXPECT_NE(explicit_dev.value()->info().details.find("; this device: subgroup reductions"), std::string::npos)
      << explicit_dev.value()->info().details;
}

TEST(VulkanBackend, UnknownOptionNamesTheValidOnes) {
  OPEN_VULKAN_OR_SKIP(reg, dev);
  DeviceOptions o;
  o.backend_options = {{"vulkan.no_fp32", "1"}};
  auto bad = reg->open_device("vulkan:0", o);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  for (const char* key : {"vulkan.validation", "vulkan.no_subgroups", "vulkan.no_fp16", "vulkan.weight_chunk_bytes",
                          "vulkan.force_staging"}) {
    EXPECT_NE(bad.status().message().find(key), std::string::npos) << key << " missing: " << bad.status().message();
  }
  o.backend_options = {{"vulkan.validation", "full"}};
  bad = reg->open_device("vulkan:0", o);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("0, 1, sync"), std::string::npos) << bad.status().message();
  o.backend_options = {{"vulkan.weight_chunk_bytes", "8"}};  // under 4 binding alignments
  bad = reg->open_device("vulkan:0", o);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument) << bad.status().to_string();
}

// supports(COPY) answers per (input, output) dtype pair exactly what compile() lowers, so the
// loader's checks and the conformance suite's "unsupported" see the truth: every weight format
// reads back to f32, but f32 encodes on the GPU only to f16, bf16, q8_0, q4_0 and q4_1 (the
// 5-bit formats and the K-quants have no GPU quantizer), and two different formats never copy
// into each other directly. (supports() once said yes to any two formats that had shaders.)
TEST(VulkanBackend, CopySupportIsWhatCompiles) {
  OPEN_VULKAN_OR_SKIP(reg, dev);
  const DType dtypes[] = {DType::kF32,  DType::kF16,    DType::kBF16,   DType::kQ8_0, DType::kQ4_0, DType::kQ4_1,
                          DType::kQ5_0, DType::kQ5_1,   DType::kQ2_K,   DType::kQ3_K, DType::kQ4_K, DType::kQ5_K,
                          DType::kQ6_K, DType::kIQ4_NL, DType::kIQ4_XS, DType::kI32};
  int compiled = 0;
  for (DType from : dtypes) {
    for (DType to : dtypes) {
      Graph g;
      const TensorId x = g.add_tensor("x", TensorDesc::make(from, 256, 2), TensorRole::kInput);
      OpParams p;
      p.out_dtype = to;
      auto y = g.add_op(OpKind::kCopy, {x}, p, "y");
      if (!y.is_ok())
        continue;  // the op itself refuses the pair: no backend's business
      g.mark_output(y.value());
      const DType pair[] = {from, to};
      const bool claimed = dev->supports(OpKind::kCopy, pair);
      auto exe = dev->compile(g);
      EXPECT_EQ(claimed, exe.is_ok()) << dtype_name(from) << " -> " << dtype_name(to) << ": "
                                      << (exe.is_ok() ? std::string("compiled") : exe.status().to_string());
      compiled += exe.is_ok() ? 1 : 0;
    }
  }
  EXPECT_GT(compiled, 0);
  const auto copy = [&](DType from, DType to) {
    const DType pair[] = {from, to};
    return dev->supports(OpKind::kCopy, pair);
  };
  EXPECT_TRUE(copy(DType::kQ4_K, DType::kF32));
  EXPECT_TRUE(copy(DType::kQ5_0, DType::kF32));
  EXPECT_TRUE(copy(DType::kF32, DType::kQ4_1));
  EXPECT_FALSE(copy(DType::kF32, DType::kQ4_K));
  EXPECT_FALSE(copy(DType::kF32, DType::kQ5_0));
  EXPECT_FALSE(copy(DType::kF16, DType::kQ8_0));
  EXPECT_TRUE(copy(DType::kIQ4_XS, DType::kF32));
  EXPECT_FALSE(copy(DType::kF32, DType::kIQ4_NL));
}

}  // namespace
}  // namespace halyard
