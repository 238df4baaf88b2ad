// HostBuffer::wrap: host memory used in place as a read-only buffer (weights from a mapped
// file). It reads the memory it was given, refuses misaligned memory and every write.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "halyard/hal/host.h"
#include "halyard/hal/registry.h"
#include "test_paths.h"

namespace halyard {
namespace {

// Memory aligned to kWrapAlignment, with room for an offset past it.
struct AlignedFloats {
  alignas(HostBuffer::kWrapAlignment) float values[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
};

TEST(HostBufferWrap, ReadsTheWrappedMemoryInPlace) {
  AlignedFloats mem;
  auto buffer = HostBuffer::wrap(mem.values, sizeof mem.values);
  ASSERT_TRUE(buffer.is_ok()) << buffer.status().to_string();
  auto* host = static_cast<HostBuffer*>(buffer.value().get());
  EXPECT_EQ(static_cast<const void*>(host->data()), static_cast<const void*>(mem.values));
  EXPECT_TRUE(host->read_only());
  EXPECT_EQ(host->size(), sizeof mem.values);
  mem.values[3] = 42;  // the buffer is the memory, not a copy of it
  float out = 0;
  ASSERT_TRUE(host->download(3 * sizeof(float), &out, sizeof out).is_ok());
  EXPECT_EQ(out, 42);
}

TEST(HostBufferWrap, UploadIsRefusedAndLeavesTheMemoryAlone) {
  AlignedFloats mem;
  auto buffer = HostBuffer::wrap(mem.values, sizeof mem.values).value();
  const float seven = 7;
  const Status s = buffer->upload(0, &seven, sizeof seven);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.to_string();
  EXPECT_NE(s.message().find("read-only"), std::string::npos) << s.to_string();
  EXPECT_EQ(mem.values[0], 1);
}

TEST(HostBufferWrap, MisalignedMemoryIsRefusedSoTheCallerCopies) {
  AlignedFloats mem;
  auto buffer = HostBuffer::wrap(&mem.values[1], 8);  // 4 bytes past a 32-byte boundary
  ASSERT_FALSE(buffer.is_ok());
  EXPECT_EQ(buffer.status().code(), StatusCode::kFailedPrecondition) << buffer.status().to_string();
  EXPECT_FALSE(HostBuffer::wrap(nullptr, 8).is_ok());
}

// An executable reads a wrapped buffer bound to a weight, and refuses one bound to a tensor the
// graph writes (an output here; a state alike), before any node runs.
TEST(HostBufferWrap, ExecutablesReadItAsAWeightAndNeverWriteIt) {
  Graph g;
  const auto desc = TensorDesc::make(DType::kF32, 8);
  const TensorId w = g.add_tensor("w", desc, TensorRole::kWeight);
  const TensorId x = g.add_tensor("x", desc, TensorRole::kInput);
  const TensorId y = g.add_op(OpKind::kAdd, {w, x}).value();
  g.mark_output(y);
  int runs = 0;
  auto exe = create_host_executable(g, [&](const GraphNode&, std::span<const HostTensor> in, const HostTensor& out) {
    ++runs;
    for (int i = 0; i < 8; ++i) {
      static_cast<float*>(out.data)[i] =
          static_cast<const float*>(in[0].data)[i] + static_cast<const float*>(in[1].data)[i];
    }
    return Status::ok();
  });
  ASSERT_TRUE(exe.is_ok()) << exe.status().to_string();
  AlignedFloats weights, input;
  auto wrapped_w = HostBuffer::wrap(weights.values, 32).value();
  auto wrapped_x = HostBuffer::wrap(input.values, 32).value();
  auto out = HostBuffer::create(32).value();
  SyncQueue queue;
  const Binding ok[] = {{w, wrapped_w.get(), 0}, {x, wrapped_x.get(), 0}, {y, out.get(), 0}};
  auto ev = exe.value()->run(queue, ok);
  ASSERT_TRUE(ev.is_ok()) << ev.status().to_string();
  std::vector<float> result(8);
  ASSERT_TRUE(out->download(0, result.data(), 32).is_ok());
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(result[static_cast<std::size_t>(i)], 2.f * static_cast<float>(i + 1));

  AlignedFloats target;
  auto wrapped_out = HostBuffer::wrap(target.values, 32).value();
  const Binding bad[] = {{w, wrapped_w.get(), 0}, {x, wrapped_x.get(), 0}, {y, wrapped_out.get(), 0}};
  auto refused = exe.value()->run(queue, bad);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("read-only"), std::string::npos) << refused.status().to_string();
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(target.values[0], 1);
}

// The host backends offer wrap_host and tag the buffer as theirs (their executables accept it);
// it is the memory given, refused when misaligned.
TEST(HostBufferWrap, RefAndCpuDevicesWrapHostMemory) {
  RegistryOptions o;
  o.search_paths = {testing::plugin_dir()};
  auto registry = BackendRegistry::load(o);
  ASSERT_TRUE(registry.is_ok()) << registry.status().to_string();
  for (const char* uri : {"ref", "cpu"}) {
    SCOPED_TRACE(uri);
    auto device = registry.value()->open_device(uri);
    ASSERT_TRUE(device.is_ok()) << device.status().to_string();
    AlignedFloats mem;
    auto buffer = device.value()->wrap_host(mem.values, sizeof mem.values);
    ASSERT_TRUE(buffer.is_ok()) << buffer.status().to_string();
    auto* host = dynamic_cast<HostBuffer*>(buffer.value().get());
    ASSERT_NE(host, nullptr);
    EXPECT_EQ(static_cast<const void*>(host->data()), static_cast<const void*>(mem.values));
    EXPECT_TRUE(host->read_only());
    auto misaligned = device.value()->wrap_host(&mem.values[2], 8);
    EXPECT_EQ(misaligned.status().code(), StatusCode::kFailedPrecondition) << misaligned.status().to_string();
  }
}

}  // namespace
}  // namespace halyard
