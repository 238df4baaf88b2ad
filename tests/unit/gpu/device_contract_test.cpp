// What every GPU backend's device must do beyond computing ops right (the conformance suite's
// job): replayed executables read new per-step inputs, new bindings take effect, out-of-range
// ids give NaN (or, on a host device, a clear error) rather than a read out of bounds, buffers check their bounds, a
// buffer of another device is refused, an impossible allocation is a clear error. Run for cpu, ref, vulkan:0, cuda:0
// and hip:0; a backend that is not built or has no device here is skipped with the reason. The CUDA and HIP plugins are
// also loaded side by side in one process.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "halyard/hal/registry.h"
#include "test_registry.h"

namespace halyard {
namespace {

using testing::load_registry;

class DeviceContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ::setenv("HALYARD_VULKAN_VALIDATION", "1", 0);  // Vulkan runs under the validation layer
    reg_ = load_registry();
    ASSERT_NE(reg_, nullptr);
    const std::string uri = GetParam();
    const std::string backend = uri.substr(0, uri.find(':'));
    Backend* b = reg_->find(backend);
    if (!b)
      GTEST_SKIP() << backend << " is not built in this tree";
    if (Status a = b->availability(); !a.is_ok())
      GTEST_SKIP() << uri << " unavailable: " << a.message();
    auto dev = reg_->open_device(uri);
    ASSERT_TRUE(dev.is_ok()) << dev.status().to_string();
    dev_ = std::move(dev).value();
  }
  std::unique_ptr<BackendRegistry> reg_;
  std::unique_ptr<Device> dev_;
};

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

std::vector<float> run_embed(Executable& exe, Queue& q, Buffer& table, Buffer& ids, Buffer& out, const EmbedGraph& eg,
                             std::vector<std::int32_t> id_values) {
  EXPECT_TRUE(ids.upload(0, id_values.data(), 8).is_ok());
  const Binding b[] = {{eg.table, &table, 0}, {eg.ids, &ids, 0}, {eg.out, &out, 0}};
  auto ev = exe.run(q, b);
  EXPECT_TRUE(ev.is_ok()) << ev.status().to_string();
  if (!ev.is_ok())
    return {};
  EXPECT_TRUE(ev.value()->wait().is_ok());
  std::vector<float> r(8);
  EXPECT_TRUE(out.download(0, r.data(), 32).is_ok());
  return r;
}

TEST_P(DeviceContract, ReplaysReadNewInputsAndNewBindingsTakeEffect) {
  EmbedGraph eg;
  auto exe = dev_->compile(eg.g);
  ASSERT_TRUE(exe.is_ok()) << exe.status().to_string();
  auto q = dev_->create_queue().value();
  auto table = dev_->allocate(48).value();
  auto ids = dev_->allocate(8).value();
  auto out_a = dev_->allocate(32).value();
  auto out_b = dev_->allocate(32).value();
  std::vector<float> t(12);
  for (int i = 0; i < 12; ++i)
    t[static_cast<std::size_t>(i)] = static_cast<float>(i);
  ASSERT_TRUE(table->upload(0, t.data(), 48).is_ok());

  EXPECT_EQ(run_embed(*exe.value(), *q, *table, *ids, *out_a, eg, {2, 0}),
            (std::vector<float>{8, 9, 10, 11, 0, 1, 2, 3}));
  EXPECT_EQ(run_embed(*exe.value(), *q, *table, *ids, *out_a, eg, {1, 1}),  // replayed
            (std::vector<float>{4, 5, 6, 7, 4, 5, 6, 7}));
  EXPECT_EQ(run_embed(*exe.value(), *q, *table, *ids, *out_b, eg, {0, 2}),  // a new output buffer
            (std::vector<float>{0, 1, 2, 3, 8, 9, 10, 11}));
  // 7 is outside the table: never a read out of bounds. A GPU kernel cannot fail a run, so it
  // writes NaN for that row (and the other rows as usual); a host device may instead fail the run
  // with out_of_range naming the id (cpu and ref do: the runtime checks ids before a step, so
  // this is a second line of defence either way).
  const std::vector<std::int32_t> bad{7, 0};
  ASSERT_TRUE(ids->upload(0, bad.data(), 8).is_ok());
  const Binding b[] = {{eg.table, table.get(), 0}, {eg.ids, ids.get(), 0}, {eg.out, out_b.get(), 0}};
  auto ev = exe.value()->run(*q, b);
  Status done = ev.is_ok() ? ev.value()->wait() : ev.status();
  if (done.is_ok()) {
    std::vector<float> r(8);
    ASSERT_TRUE(out_b->download(0, r.data(), 32).is_ok());
    EXPECT_TRUE(std::isnan(r[0]) && std::isnan(r[3])) << "an out-of-range id must give NaN, not " << r[0];
    EXPECT_EQ(r[4], 0.f);
  } else {
    EXPECT_EQ(done.code(), StatusCode::kOutOfRange) << done.to_string();
    EXPECT_NE(done.message().find("id 7"), std::string::npos) << done.to_string();
  }
  ASSERT_TRUE(q->finish().is_ok());
}

// The CUDA/HIP options are members of the device, set when it is opened: a device opened with
// graphs and fusion off says so and still replays right.
TEST_P(DeviceContract, GraphsAndFusionOffStillReplay) {
  const std::string backend = GetParam().substr(0, GetParam().find(':'));
  if (backend != "cuda" && backend != "hip")
    GTEST_SKIP() << backend << " has no graph or fusion options";
  DeviceOptions o;
  o.backend_options = {{backend + ".graphs", "0"}, {backend + ".fusion", "0"}};
  auto dev = reg_->open_device(GetParam(), o);
  ASSERT_TRUE(dev.is_ok()) << dev.status().to_string();
  EXPECT_NE(dev.value()->info().details.find("graphs off, fusion off"), std::string::npos)
      << dev.value()->info().details;
  EmbedGraph eg;
  auto exe = dev.value()->compile(eg.g);
  ASSERT_TRUE(exe.is_ok()) << exe.status().to_string();
  auto q = dev.value()->create_queue().value();
  auto table = dev.value()->allocate(48).value();
  auto ids = dev.value()->allocate(8).value();
  auto out = dev.value()->allocate(32).value();
  std::vector<float> t(12);
  for (int i = 0; i < 12; ++i)
    t[static_cast<std::size_t>(i)] = static_cast<float>(i);
  ASSERT_TRUE(table->upload(0, t.data(), 48).is_ok());
  EXPECT_EQ(run_embed(*exe.value(), *q, *table, *ids, *out, eg, {2, 0}),
            (std::vector<float>{8, 9, 10, 11, 0, 1, 2, 3}));
  EXPECT_EQ(run_embed(*exe.value(), *q, *table, *ids, *out, eg, {1, 1}), (std::vector<float>{4, 5, 6, 7, 4, 5, 6, 7}));
}

TEST_P(DeviceContract, BufferBoundsAndForeignBuffersAreErrors) {
  auto b = dev_->allocate(16).value();
  std::vector<std::uint8_t> bytes(32);
  EXPECT_EQ(b->upload(8, bytes.data(), 16).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(b->download(0, bytes.data(), 17).code(), StatusCode::kOutOfRange);
  EXPECT_TRUE(b->upload(0, bytes.data(), 16).is_ok());

  // A buffer of another device: the reference's, or for the reference itself the cpu backend's
  // (another host-memory device: a host pointer is not enough to be ours).
  const std::string other_uri = GetParam() == "ref" ? "cpu" : "ref";
  if (!reg_->find(other_uri))
    GTEST_SKIP() << other_uri << " is not built in this tree: no foreign buffer to try";
  auto other = reg_->open_device(other_uri);
  ASSERT_TRUE(other.is_ok()) << other.status().to_string();
  auto host = other.value()->allocate(48).value();
  EmbedGraph eg;
  auto exe = dev_->compile(eg.g).value();
  auto q = dev_->create_queue().value();
  auto ids = dev_->allocate(8).value();
  auto out = dev_->allocate(32).value();
  const Binding binds[] = {{eg.table, host.get(), 0}, {eg.ids, ids.get(), 0}, {eg.out, out.get(), 0}};
  auto ev = exe->run(*q, binds);
  ASSERT_FALSE(ev.is_ok());
  EXPECT_NE(ev.status().message().find("another device"), std::string::npos) << ev.status().to_string();
}

TEST_P(DeviceContract, AnImpossibleAllocationIsAClearError) {
  auto b = dev_->allocate(std::size_t{1} << 50);
  ASSERT_FALSE(b.is_ok());
  EXPECT_EQ(b.status().code(), StatusCode::kResourceExhausted) << b.status().to_string();
  EXPECT_TRUE(dev_->allocate(64).is_ok()) << "the device must stay usable after a failed allocation";
}

INSTANTIATE_TEST_SUITE_P(Devices, DeviceContract, ::testing::Values("cpu", "ref", "vulkan:0", "cuda:0", "hip:0"),
                         [](const auto& info) { return info.param.substr(0, info.param.find(':')); });

TEST(GpuPlugins, CudaAndHipLoadSideBySide) {
  auto reg = load_registry();
  ASSERT_NE(reg, nullptr);
  Backend* cuda = reg->find("cuda");
  Backend* hip = reg->find("hip");
  if (!cuda || !hip)
    GTEST_SKIP() << "this tree was built without " << (!cuda ? "the cuda" : "the hip") << " backend";
  for (Backend* b : {cuda, hip}) {
    const Status a = b->availability();
    if (a.is_ok()) {
      EXPECT_FALSE(b->devices().empty()) << b->name();
    } else {
      EXPECT_EQ(a.code(), StatusCode::kUnavailable) << b->name();
      EXPECT_FALSE(a.message().empty()) << b->name();
      auto dev = reg->open_device(std::string(b->name()) + ":0");
      ASSERT_FALSE(dev.is_ok());
      EXPECT_NE(dev.status().message().find(a.message()), std::string::npos) << dev.status().to_string();
    }
  }
}

// Their options are listed and checked without a GPU: the backend checks them before it starts
// its runtime.
TEST(GpuPlugins, OptionsAreListedAndCheckedWithoutADevice) {
  auto reg = load_registry();
  ASSERT_NE(reg, nullptr);
  int checked = 0;
  for (const char* name : {"cuda", "hip"}) {
    Backend* b = reg->find(name);
    if (!b)
      continue;
    ++checked;
    const std::string graphs = std::string(name) + ".graphs";
    bool listed = false;
    for (const auto& o : b->options())
      listed |= o.key == graphs && o.env == "HALYARD_GPU_GRAPHS" && o.default_value == "1";
    EXPECT_TRUE(listed) << name;
    DeviceOptions o;
    o.backend_options = {{graphs, "sometimes"}};
    auto dev = b->open_device(0, o);
    ASSERT_FALSE(dev.is_ok()) << name;
    EXPECT_EQ(dev.status().code(), StatusCode::kInvalidArgument) << dev.status().to_string();
    EXPECT_NE(dev.status().message().find("HALYARD_GPU_GRAPHS"), std::string::npos) << dev.status().to_string();
    o.backend_options = {{std::string(name) + ".streams", "2"}};
    dev = b->open_device(0, o);
    ASSERT_FALSE(dev.is_ok()) << name;
    EXPECT_NE(dev.status().message().find(graphs), std::string::npos) << dev.status().to_string();
  }
  if (checked == 0)
    GTEST_SKIP() << "this tree was built without the cuda and hip backends";
}

}  // namespace
}  // namespace halyard
