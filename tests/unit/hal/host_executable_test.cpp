#include <gtest/gtest.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "halyard/hal/host.h"

namespace halyard {
namespace {

// Adds its two inputs elementwise (8 floats), the node function of these tests.
Status add8(std::span<const HostTensor> in, const HostTensor& out) {
  for (int i = 0; i < 8; ++i) {
    static_cast<float*>(out.data)[i] =
        static_cast<const float*>(in[0].data)[i] + static_cast<const float*>(in[1].data)[i];
  }
  return Status::ok();
}

const std::vector<float> kValues{1, 2, 3, 4, 5, 6, 7, 8};

// Runs `exe` with kValues bound to `in` and returns what it wrote to `out` (8 floats).
std::vector<float> run_on_values(Executable& exe, TensorId in, TensorId out) {
  auto in_buf = HostBuffer::create(32).value();
  auto out_buf = HostBuffer::create(32).value();
  EXPECT_TRUE(in_buf->upload(0, kValues.data(), 32).is_ok());
  SyncQueue queue;
  const Binding bindings[] = {{in, in_buf.get(), 0}, {out, out_buf.get(), 0}};
  auto ev = exe.run(queue, bindings);
  EXPECT_TRUE(ev.is_ok()) << ev.status().to_string();
  std::vector<float> result(8);
  EXPECT_TRUE(out_buf->download(0, result.data(), 32).is_ok());
  return result;
}

// Buffers of a huge page or more start on a huge-page boundary (the transparent-huge-page hint
// covers whole huge pages only), smaller ones on kAlignment; both hold what is uploaded.
TEST(HostBuffer, LargeBuffersStartOnAHugePage) {
  for (std::size_t bytes : {std::size_t{100}, HostBuffer::kHugePage + 12345}) {
    auto buffer = HostBuffer::create(bytes);
    ASSERT_TRUE(buffer.is_ok()) << buffer.status().to_string();
    const auto address = reinterpret_cast<std::uintptr_t>(static_cast<HostBuffer*>(buffer.value().get())->data());
    const std::size_t alignment = bytes >= HostBuffer::kHugePage ? HostBuffer::kHugePage : HostBuffer::kAlignment;
    EXPECT_EQ(address % alignment, 0u) << bytes << " bytes";
    std::vector<std::uint8_t> in(bytes), out(bytes);
    for (std::size_t i = 0; i < bytes; ++i)
      in[i] = static_cast<std::uint8_t>(i * 7);
    ASSERT_TRUE(buffer.value()->upload(0, in.data(), bytes).is_ok());
    ASSERT_TRUE(buffer.value()->download(0, out.data(), bytes).is_ok());
    EXPECT_EQ(in, out);
  }
}

#if defined(__linux__)
// The VmFlags of the mapping that holds `p` (from /proc/self/smaps), or "" if none does.
std::string vm_flags(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    std::uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR " ", &lo, &hi) == 2 && line.find(':') > line.find(' '))
      inside = lo <= address && address < hi;
    else if (inside && line.rfind("VmFlags:", 0) == 0)
      return line;
  }
  return "";
}

// Only a buffer written whole (weights) asks for transparent huge pages; one filled piece by
// piece (a KV cache, an intermediate) keeps small pages, so its first touches stay cheap.
TEST(HostBuffer, OnlyBuffersWrittenWholeAskForHugePages) {
  const std::size_t bytes = 2 * HostBuffer::kHugePage;
  std::vector<std::uint8_t> data(bytes, 1);
  auto cache = HostBuffer::create(bytes).value();
  ASSERT_TRUE(cache->upload(0, data.data(), 4096).is_ok());
  const std::string cache_flags = vm_flags(static_cast<HostBuffer*>(cache.get())->data());
  ASSERT_NE(cache_flags, "");
  EXPECT_EQ(cache_flags.find(" hg"), std::string::npos) << cache_flags;
  auto weights = HostBuffer::create(bytes).value();
  ASSERT_TRUE(weights->upload(0, data.data(), bytes).is_ok());
  const std::string weight_flags = vm_flags(static_cast<HostBuffer*>(weights.get())->data());
  EXPECT_NE(weight_flags.find(" hg"), std::string::npos) << weight_flags;
}
#endif

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
  auto exe = create_host_executable(
      g, [](const GraphNode&, std::span<const HostTensor> in, const HostTensor& out) { return add8(in, out); });
  ASSERT_TRUE(exe.is_ok()) << exe.status().to_string();
  const std::vector<float> result = run_on_values(*exe.value(), a, f);
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(result[static_cast<std::size_t>(i)], 18 * kValues[static_cast<std::size_t>(i)]);
}

// A group gets its nodes in order with their own tensors, and the rest still runs node by node.
TEST(HostExecutable, GroupsRunTogetherWithTheirOwnTensors) {
  Graph g;
  const auto desc = TensorDesc::make(DType::kF32, 8);
  const TensorId a = g.add_tensor("a", desc, TensorRole::kInput);
  const TensorId b = g.add_op(OpKind::kAdd, {a, a}).value();  // 2a  | one group:
  const TensorId c = g.add_op(OpKind::kMul, {a, a}).value();  // a*a | both read a
  const TensorId d = g.add_op(OpKind::kAdd, {b, c}).value();  // 2a + a*a, alone
  g.mark_output(d);
  std::vector<std::size_t> group_sizes;
  int singles = 0;
  HostGrouping grouping{[](const Graph& graph, std::size_t first) -> std::size_t {
                          return graph.nodes()[first].op == OpKind::kAdd && first == 0 ? 2 : 1;
                        },
                        [&](std::span<const HostNodeCall> calls) {
                          group_sizes.push_back(calls.size());
                          EXPECT_EQ(calls[0].node->op, OpKind::kAdd);
                          EXPECT_EQ(calls[1].node->op, OpKind::kMul);
                          HALYARD_RETURN_IF_ERROR(add8(calls[0].inputs, calls[0].output));
                          for (int i = 0; i < 8; ++i) {
                            static_cast<float*>(calls[1].output.data)[i] =
                                static_cast<const float*>(calls[1].inputs[0].data)[i] *
                                static_cast<const float*>(calls[1].inputs[1].data)[i];
                          }
                          return Status::ok();
                        }};
  auto exe = create_host_executable(
      g,
      [&](const GraphNode&, std::span<const HostTensor> in, const HostTensor& out) {
        ++singles;
        return add8(in, out);
      },
      grouping);
  ASSERT_TRUE(exe.is_ok()) << exe.status().to_string();
  const std::vector<float> result = run_on_values(*exe.value(), a, d);
  EXPECT_EQ(group_sizes, std::vector<std::size_t>{2});
  EXPECT_EQ(singles, 1);
  for (int i = 0; i < 8; ++i) {
    const float v = kValues[static_cast<std::size_t>(i)];
    EXPECT_EQ(result[static_cast<std::size_t>(i)], 2 * v + v * v);
  }
}

// Groups whose nodes could not run together under the sequential buffer plan are refused at
// compile time: a member reading another's output, and an intermediate freed inside the group
// (its slot could go to a later member's output while the earlier member still uses it).
TEST(HostExecutable, RefusesGroupsThatCannotRunTogether) {
  const auto desc = TensorDesc::make(DType::kF32, 8);
  auto run_node = [](const GraphNode&, std::span<const HostTensor> in, const HostTensor& out) { return add8(in, out); };
  auto group_of_first_two = [](const Graph&, std::size_t first) -> std::size_t { return first == 0 ? 2 : 1; };
  auto run_group = [](std::span<const HostNodeCall>) { return Status::ok(); };
  {
    Graph g;
    const TensorId a = g.add_tensor("a", desc, TensorRole::kInput);
    const TensorId b = g.add_op(OpKind::kAdd, {a, a}).value();
    const TensorId c = g.add_op(OpKind::kAdd, {b, a}).value();  // reads b
    g.mark_output(c);
    auto exe = create_host_executable(g, run_node, {group_of_first_two, run_group});
    ASSERT_FALSE(exe.is_ok());
    EXPECT_NE(exe.status().message().find("reads the output"), std::string::npos) << exe.status().to_string();
  }
  {
    Graph g;
    const TensorId a = g.add_tensor("a", desc, TensorRole::kInput);
    const TensorId b = g.add_op(OpKind::kAdd, {a, a}).value();  // read only by the next node
    const TensorId c = g.add_op(OpKind::kAdd, {b, b}).value();
    const TensorId d = g.add_op(OpKind::kAdd, {a, a}).value();  // grouped with c: b dies at c
    const TensorId e = g.add_op(OpKind::kAdd, {c, d}).value();
    g.mark_output(e);
    auto group_c_d = [](const Graph&, std::size_t first) -> std::size_t { return first == 1 ? 2 : 1; };
    auto exe = create_host_executable(g, run_node, {group_c_d, run_group});
    ASSERT_FALSE(exe.is_ok());
    EXPECT_NE(exe.status().message().find("freed before its group ends"), std::string::npos)
        << exe.status().to_string();
  }
  {
    Graph g;
    const TensorId a = g.add_tensor("a", desc, TensorRole::kInput);
    g.add_op(OpKind::kAdd, {a, a}).value();  // its output is read by nobody
    const TensorId c = g.add_op(OpKind::kAdd, {a, a}).value();
    g.mark_output(c);
    auto exe = create_host_executable(g, run_node, {group_of_first_two, run_group});
    ASSERT_FALSE(exe.is_ok());
    EXPECT_NE(exe.status().message().find("freed before its group ends"), std::string::npos)
        << exe.status().to_string();
  }
}

// The buffer plan itself, on random graphs: two intermediates whose lifetimes overlap (from the
// node that writes one to the last node that reads it, both ends included, so a node's output
// never shares with its own inputs) never share a slot, every slot is large enough for what it
// holds, only intermediates get slots, and a chain reuses memory.
TEST(PlanIntermediates, OverlappingLifetimesNeverShareASlot) {
  std::mt19937 rng(2026);
  const std::int64_t sizes[] = {8, 16, 64};
  for (int trial = 0; trial < 200; ++trial) {
    Graph g;
    // Per size class, the tensors a node of that size may read (ADD takes equal shapes).
    std::vector<std::vector<TensorId>> readable(3);
    for (int c = 0; c < 3; ++c)
      readable[static_cast<std::size_t>(c)].push_back(
          g.add_tensor("in" + std::to_string(c), TensorDesc::make(DType::kF32, sizes[c]), TensorRole::kInput));
    const int n_nodes = 2 + static_cast<int>(rng() % 30);
    for (int n = 0; n < n_nodes; ++n) {
      auto& pool = readable[rng() % 3];
      const TensorId x = pool[rng() % pool.size()];
      // Mostly recent tensors, sometimes old ones: long and short lifetimes.
      const TensorId y = rng() % 2 ? pool.back() : pool[rng() % pool.size()];
      const TensorId out = g.add_op(OpKind::kAdd, {x, y}).value();
      pool.push_back(out);
    }
    const TensorId last = g.nodes().back().output;
    g.mark_output(last);
    ASSERT_TRUE(g.validate().is_ok());

    const IntermediatePlan plan = plan_intermediates(g);
    const auto& tensors = g.tensors();
    ASSERT_EQ(plan.slot_of.size(), tensors.size());
    // Lifetimes: the writing node to the last reading node (an unread output lives at its node).
    std::vector<int> first(tensors.size(), -1), end(tensors.size(), -1);
    for (std::size_t n = 0; n < g.nodes().size(); ++n) {
      const auto out = static_cast<std::size_t>(g.nodes()[n].output);
      first[out] = end[out] = static_cast<int>(n);
      for (TensorId in : g.nodes()[n].inputs)
        end[static_cast<std::size_t>(in)] = static_cast<int>(n);
    }
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      const int slot = plan.slot_of[i];
      if (tensors[i].role != TensorRole::kIntermediate) {
        EXPECT_EQ(slot, -1) << "tensor " << i << " is not an intermediate but has a slot";
        continue;
      }
      ASSERT_GE(slot, 0) << "intermediate " << i << " has no slot";
      ASSERT_LT(static_cast<std::size_t>(slot), plan.slot_bytes.size());
      EXPECT_GE(plan.slot_bytes[static_cast<std::size_t>(slot)], tensors[i].desc.bytes()) << "tensor " << i;
      for (std::size_t j = i + 1; j < tensors.size(); ++j) {
        if (tensors[j].role != TensorRole::kIntermediate || plan.slot_of[j] != slot)
          continue;
        const bool overlap = first[i] <= end[j] && first[j] <= end[i];
        EXPECT_FALSE(overlap) << "trial " << trial << ": tensors " << i << " [" << first[i] << ", " << end[i]
                              << "] and " << j << " [" << first[j] << ", " << end[j] << "] share slot " << slot;
      }
    }
  }
}

TEST(PlanIntermediates, TensorsThatDoNotOverlapShareMemory) {
  // A chain a -> b -> c -> d -> e -> out of equal sizes: each lives from its node to the next,
  // so two slots suffice (b and d can share, c and e can share).
  Graph g;
  const auto desc = TensorDesc::make(DType::kF32, 8);
  TensorId t = g.add_tensor("a", desc, TensorRole::kInput);
  std::vector<TensorId> chain;
  for (int i = 0; i < 5; ++i) {
    t = g.add_op(OpKind::kAdd, {t, t}).value();
    chain.push_back(t);
  }
  const TensorId out = g.add_op(OpKind::kAdd, {t, t}).value();
  g.mark_output(out);
  const IntermediatePlan plan = plan_intermediates(g);
  EXPECT_EQ(plan.slot_bytes.size(), 2u);
  EXPECT_EQ(plan.slot_of[static_cast<std::size_t>(chain[0])], plan.slot_of[static_cast<std::size_t>(chain[2])]);
  EXPECT_EQ(plan.slot_of[static_cast<std::size_t>(chain[1])], plan.slot_of[static_cast<std::size_t>(chain[3])]);
  EXPECT_NE(plan.slot_of[static_cast<std::size_t>(chain[0])], plan.slot_of[static_cast<std::size_t>(chain[1])]);
  EXPECT_EQ(plan.slot_of[static_cast<std::size_t>(out)], -1);
  // A smaller tensor fits a freed larger slot; a larger one needs a new slot.
  Graph h;
  const TensorId big_in = h.add_tensor("big", TensorDesc::make(DType::kF32, 64), TensorRole::kInput);
  const TensorId small_in = h.add_tensor("small", TensorDesc::make(DType::kF32, 8), TensorRole::kInput);
  const TensorId big = h.add_op(OpKind::kAdd, {big_in, big_in}).value();
  const TensorId big2 = h.add_op(OpKind::kAdd, {big, big}).value();  // big dies here
  const TensorId small = h.add_op(OpKind::kAdd, {small_in, small_in}).value();
  const TensorId small2 = h.add_op(OpKind::kAdd, {small, small}).value();
  h.mark_output(big2);
  h.mark_output(small2);
  const IntermediatePlan p2 = plan_intermediates(h);
  ASSERT_EQ(p2.slot_bytes.size(), 1u);
  EXPECT_EQ(p2.slot_of[static_cast<std::size_t>(small)], p2.slot_of[static_cast<std::size_t>(big)]);
  EXPECT_EQ(p2.slot_bytes[0], 64u * 4u);
}

}  // namespace
}  // namespace halyard
