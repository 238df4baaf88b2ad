// The Vulkan backend's own behaviour, on whatever Vulkan device this machine has (Mesa's
// lavapipe in CI). Op and model correctness is the conformance suite's job; this file covers
// what it does not: availability reasons, device details, validation failing a run, replayed
// command buffers reading new per-step values, re-recording for new bindings, buffer bounds.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "halyard/hal/registry.h"
#include "test_paths.h"

namespace halyard {
namespace {

std::unique_ptr<BackendRegistry> load_registry() {
  RegistryOptions o;
  o.search_paths = {testing::plugin_dir()};
  auto reg = BackendRegistry::load(o);
  EXPECT_TRUE(reg.is_ok()) << reg.status().to_string();
  return reg.is_ok() ? std::move(reg).value() : nullptr;
}

// The device, or a skip that says why there is none.
#define OPEN_VULKAN_OR_SKIP(reg, dev)                                                          \
  auto reg = load_registry();                                                                  \
  ASSERT_NE(reg, nullptr);                                                                     \
  ASSERT_NE(reg->find("vulkan"), nullptr) << "the vulkan plugin was not built";                \
  if (Status a = reg->find("vulkan")->availability(); !a.is_ok())                              \
    GTEST_SKIP() << "vulkan unavailable: " << a.message();                                     \
  auto dev##_r = reg->open_device("vulkan:0");                                                 \
  ASSERT_TRUE(dev##_r.is_ok()) << dev##_r.status().to_string();                                \
  std::unique_ptr<Device> dev = std::move(dev##_r).value()

TEST(VulkanBackend, NoDriverMeansUnavailableWithTheReason) {
  ::setenv("VK_ICD_FILENAMES", "/nonexistent/halyard-no-such-icd.json", 1);
  ::setenv("VK_DRIVER_FILES", "/nonexistent/halyard-no-such-icd.json", 1);
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
  ::setenv("HALYARD_VULKAN_VALIDATION", "1", 1);
  ::setenv("HALYARD_VULKAN_SELFTEST_INVALID_USAGE", "1", 1);
  OPEN_VULKAN_OR_SKIP(reg, dev);
  auto buffer = dev->allocate(64);
  ASSERT_FALSE(buffer.is_ok()) << "the invalid usage was not reported";
  EXPECT_NE(buffer.status().message().find("Vulkan validation"), std::string::npos) << buffer.status().to_string();
}

// out[:, t] = table[ids[t]]: a graph whose result depends on a per-step input.
struct EmbedGraph {
  Graph g;
  TensorId table, ids, out;
  EmbedGraph() {
    table = g.add_tensor("table", TensorDesc::make(DType::kF32, 4, 3), TensorRole::kWeight);
    ids = g.add_tensor("ids", TensorDesc::make(DType::kI32, 2), TensorRole::kInput);
    out = g.add_op(OpKind::kEmbed, {table, ids}, {}, "out").value();
    g.mark_output(out);
  }
};

std::vector<float> run_embed(Device& dev, Executable& exe, Queue& q, Buffer& table, Buffer& ids, Buffer& out,
                             const EmbedGraph& eg, std::vector<std::int32_t> id_values) {
  EXPECT_TRUE(ids.upload(0, id_values.data(), 8).is_ok());
  const Binding b[] = {{eg.table, &table, 0}, {eg.ids, &ids, 0}, {eg.out, &out, 0}};
  auto ev = exe.run(q, b);
  EXPECT_TRUE(ev.is_ok()) << ev.status().to_string();
  EXPECT_TRUE(ev.value()->wait().is_ok());
  std::vector<float> r(8);
  EXPECT_TRUE(out.download(0, r.data(), 32).is_ok());
  (void)dev;
  return r;
}

TEST(VulkanBackend, ReplaysReadNewInputsAndNewBindingsReRecord) {
  ::setenv("HALYARD_VULKAN_VALIDATION", "1", 1);
  OPEN_VULKAN_OR_SKIP(reg, dev);
  EmbedGraph eg;
  auto exe = dev->compile(eg.g);
  ASSERT_TRUE(exe.is_ok()) << exe.status().to_string();
  auto q = dev->create_queue().value();
  auto table = dev->allocate(48).value();
  auto ids = dev->allocate(8).value();
  auto out_a = dev->allocate(32).value();
  auto out_b = dev->allocate(32).value();
  std::vector<float> t(12);
  for (int i = 0; i < 12; ++i)
    t[static_cast<std::size_t>(i)] = static_cast<float>(i);
  ASSERT_TRUE(table->upload(0, t.data(), 48).is_ok());

  auto r1 = run_embed(*dev, *exe.value(), *q, *table, *ids, *out_a, eg, {2, 0});
  EXPECT_EQ(r1, (std::vector<float>{8, 9, 10, 11, 0, 1, 2, 3}));
  auto r2 = run_embed(*dev, *exe.value(), *q, *table, *ids, *out_a, eg, {1, 1});  // replayed
  EXPECT_EQ(r2, (std::vector<float>{4, 5, 6, 7, 4, 5, 6, 7}));
  auto r3 = run_embed(*dev, *exe.value(), *q, *table, *ids, *out_b, eg, {0, 2});  // new output buffer
  EXPECT_EQ(r3, (std::vector<float>{0, 1, 2, 3, 8, 9, 10, 11}));
  // An id outside the table is NaN, never a read out of bounds.
  auto r4 = run_embed(*dev, *exe.value(), *q, *table, *ids, *out_b, eg, {7, 0});
  EXPECT_TRUE(std::isnan(r4[0]));
  EXPECT_EQ(r4[4], 0.f);
  ASSERT_TRUE(q->finish().is_ok());
}

TEST(VulkanBackend, BufferBoundsAndForeignBuffersAreErrors) {
  OPEN_VULKAN_OR_SKIP(reg, dev);
  auto b = dev->allocate(16).value();
  std::vector<std::uint8_t> bytes(32);
  EXPECT_EQ(b->upload(8, bytes.data(), 16).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(b->download(0, bytes.data(), 17).code(), StatusCode::kOutOfRange);
  EXPECT_TRUE(b->upload(0, bytes.data(), 16).is_ok());

  auto ref = reg->open_device("ref").value();
  auto host = ref->allocate(48).value();
  EmbedGraph eg;
  auto exe = dev->compile(eg.g).value();
  auto q = dev->create_queue().value();
  auto ids = dev->allocate(8).value();
  auto out = dev->allocate(32).value();
  const Binding binds[] = {{eg.table, host.get(), 0}, {eg.ids, ids.get(), 0}, {eg.out, out.get(), 0}};
  auto ev = exe->run(*q, binds);
  ASSERT_FALSE(ev.is_ok());
  EXPECT_NE(ev.status().message().find("another device"), std::string::npos) << ev.status().to_string();
}

TEST(VulkanBackend, AnAllocationBeyondTheDeviceLimitIsRefused) {
  OPEN_VULKAN_OR_SKIP(reg, dev);
  auto b = dev->allocate(std::size_t{1} << 50);
  ASSERT_FALSE(b.is_ok());
  EXPECT_EQ(b.status().code(), StatusCode::kResourceExhausted) << b.status().to_string();
}

}  // namespace
}  // namespace halyard
