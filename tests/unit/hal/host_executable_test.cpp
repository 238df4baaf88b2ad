#include <gtest/gtest.h>

#include <vector>

#include "halyard/hal/host.h"

namespace halyard {
namespace {

// Intermediates share buffers once dead; a value read late must survive the nodes between.
TEST(HostExecutable, ReusedBuffersKeepLiveValues) {
  Graph g;
  const auto desc = TensorDesc::make(DType::kF32, 8);
  const TensorId a = g.add_tensor("a", desc, TensorRole::kInput);
  const TensorId b = g.add_op(OpKind::kAdd, {a, a}).value();  // 2a, read again at the end
  const TensorId c = g.add_op(OpKind::kAdd, {b, b}).value();  // 4a
  const TensorId d = g.add_op(OpKind::kAdd, {c, c}).value();  // 8a
  const TensorId e = g.add_op(OpKind::kAdd, {d, d}).value();  // 16a
  const TensorId f = g.add_op(OpKind::kAdd, {b, e}).value();  // 18a
  g.mark_output(f);
  auto exe = create_host_executable(g, [](const GraphNode&, std::span<const HostTensor> in, const HostTensor& out) {
    for (int i = 0; i < 8; ++i) {
      static_cast<float*>(out.data)[i] =
          static_cast<const float*>(in[0].data)[i] + static_cast<const float*>(in[1].data)[i];
    }
    return Status::ok();
  });
  ASSERT_TRUE(exe.is_ok()) << exe.status().to_string();
  auto in = HostBuffer::create(32).value();
  auto out = HostBuffer::create(32).value();
  std::vector<float> values{1, 2, 3, 4, 5, 6, 7, 8};
  ASSERT_TRUE(in->upload(0, values.data(), 32).is_ok());
  SyncQueue queue;
  const Binding bindings[] = {{a, in.get(), 0}, {f, out.get(), 0}};
  auto ev = exe.value()->run(queue, bindings);
  ASSERT_TRUE(ev.is_ok()) << ev.status().to_string();
  std::vector<float> result(8);
  ASSERT_TRUE(out->download(0, result.data(), 32).is_ok());
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(result[static_cast<std::size_t>(i)], 18 * values[static_cast<std::size_t>(i)]);
}

}  // namespace
}  // namespace halyard
