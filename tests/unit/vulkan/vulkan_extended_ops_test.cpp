// The op forms of Gemma 3, Qwen3 and Llama 3.1 on Vulkan (GEGLU, per-head RMS_NORM groups, RoPE
// frequency factors, sliding-window ATTENTION, scaled EMBED), each checked against the
// reference through the conformance suite's run_op_case, on every device variant the
// conformance ctest entries use (subgroup and shared-memory reductions, f32 and f16 prefill
// tiles, weights in row ranges, staging copies), all under the Khronos validation layer and once
// with synchronization validation. The conformance suite's own cases for these forms live in
// conformance/src/op_cases.cpp; these are the shapes the shaders' edge cases need (a norm group
// of 256, windows shorter than, equal to and longer than a sequence, table splits of EMBED).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "halyard/conformance/op_cases.h"
#include "halyard/hal/dtype.h"
#include "halyard/hal/registry.h"
#include "test_registry.h"

namespace halyard {
namespace {

using conformance::Fill;
using conformance::KvTable;
using conformance::OpCase;

constexpr double kElementwise = 1e-7;  // the suite's tolerances (docs/architecture.md)
constexpr double kReduction = 5e-4;

std::vector<OpCase> geglu_cases() {
  std::vector<OpCase> out;
  for (const auto& [d, n] : {std::pair<std::int64_t, std::int64_t>{1, 1}, {33, 1}, {576, 7}, {100, 512}}) {
    const auto x = TensorDesc::make(DType::kF32, d, n);
    out.push_back({"GEGLU/d" + std::to_string(d) + "_n" + std::to_string(n),
                   OpKind::kGeglu,
                   {x, x},
                   {Fill::kRandom, Fill::kRandom},
                   {},
                   0,
                   0,
                   kElementwise});
  }
  return out;
}

std::vector<OpCase> norm_group_cases() {
  std::vector<OpCase> out;
  for (int group : {64, 128, 256}) {
    for (int heads : {1, 7, 16}) {
      for (int n : {1, 7, 512}) {
        OpParams p;
        p.eps = 1e-6f;
        p.norm_group = group;
        // Tiny rows (near or below eps, some all zero) on the middle shape: the same per-group
        // scale must come out of either reduction.
        const Fill x_fill = n == 7 ? Fill::kTinyRows : Fill::kRandom;
        out.push_back(
            {"RMS_NORM/group" + std::to_string(group) + "_heads" + std::to_string(heads) + "_n" + std::to_string(n),
             OpKind::kRmsNorm,
             {TensorDesc::make(DType::kF32, std::int64_t{group} * heads, n), TensorDesc::make(DType::kF32, group)},
             {x_fill, Fill::kRandom},
             p,
             0,
             0,
             kElementwise});
      }
    }
  }
  // 32 heads of 64 over 2049 tokens: 65568 groups, more workgroups than one grid dimension holds.
  OpParams p;
  p.eps = 1e-6f;
  p.norm_group = 64;
  out.push_back({"RMS_NORM/group64_heads32_n2049",
                 OpKind::kRmsNorm,
                 {TensorDesc::make(DType::kF32, 64 * 32, 2049), TensorDesc::make(DType::kF32, 64)},
                 {Fill::kRandom, Fill::kRandom},
                 p,
                 0,
                 0,
                 kElementwise});
  return out;
}

std::vector<OpCase> rope_factor_cases() {
  std::vector<OpCase> out;
  for (RopeLayout layout : {RopeLayout::kNormal, RopeLayout::kNeox}) {
    for (const auto& [hd, heads, n, dims] :
         {std::tuple<int, int, int, int>{64, 3, 1, 64}, {128, 2, 17, 128}, {64, 4, 5, 32}, {128, 4, 40, 96}}) {
      OpParams p;
      p.head_dim = hd;
      p.rope_dims = dims;
      p.rope_base = 500000.f;
      p.rope_layout = layout;
      out.push_back({std::string("ROPE/factors_") + (layout == RopeLayout::kNormal ? "normal" : "neox") + "_hd" +
                         std::to_string(hd) + "_heads" + std::to_string(heads) + "_n" + std::to_string(n) + "_rot" +
                         std::to_string(dims),
                     OpKind::kRope,
                     {TensorDesc::make(DType::kF32, std::int64_t{hd} * heads, n), TensorDesc::make(DType::kI32, n),
                      TensorDesc::make(DType::kF32, dims / 2)},
                     {Fill::kRandom, Fill::kPositions, Fill::kRandom},
                     p,
                     0,
                     0,
                     kElementwise});
    }
  }
  return out;
}

struct WindowShape {
  int hd, heads, kv_heads, n, block_size, max_blocks, slots, start, window;
  KvTable table;
  DType kv;
  int spread = 16;  // a decode batch's positions: start + [0, spread)
  const char* what;
};

// Laid out as the suite's ATTENTION cases (op_cases.h): q, k, v, the two caches, positions,
// slots, the block table.
OpCase window_case(const WindowShape& s) {
  OpParams p;
  p.head_dim = s.hd;
  p.n_heads = s.heads;
  p.n_kv_heads = s.kv_heads;
  p.sliding_window = s.window;
  const std::int64_t qd = std::int64_t{s.hd} * s.heads, kvd = std::int64_t{s.hd} * s.kv_heads;
  const auto cache = TensorDesc::make(s.kv, kvd, s.block_size, std::int64_t{s.slots} * s.max_blocks + 2);
  OpCase c{std::string("ATTENTION/window") + std::to_string(s.window) + "_" + (s.kv == DType::kF16 ? "f16" : "f32") +
               "_" + s.what,
           OpKind::kAttention,
           {TensorDesc::make(DType::kF32, qd, s.n), TensorDesc::make(DType::kF32, kvd, s.n),
            TensorDesc::make(DType::kF32, kvd, s.n), cache, cache, TensorDesc::make(DType::kI32, s.n),
            TensorDesc::make(DType::kI32, s.n), TensorDesc::make(DType::kI32, s.max_blocks, s.slots)},
           {Fill::kRandom, Fill::kRandom, Fill::kRandom, Fill::kCache, Fill::kCache, Fill::kPositions, Fill::kSlots,
            Fill::kBlockTable},
           p,
           0,
           s.start,
           kReduction};
  c.one_slot_per_token = s.slots > 1 && s.slots == s.n;
  c.position_spread = s.spread;
  c.kv_table = s.table;
  return c;
}

std::vector<OpCase> window_cases() {
  using T = KvTable;
  std::vector<OpCase> out;
  for (DType kv : {DType::kF32, DType::kF16}) {
    const WindowShape shapes[] = {
        // Prefill after 20 positions of history, 40 tokens (positions 20..59): a window shorter
        // than the sequence, one as long as the last token's sequence, one longer.
        {64, 4, 2, 40, 16, 4, 1, 20, 8, T::kPermuted, kv, 16, "prefill_history"},
        {64, 4, 2, 40, 16, 4, 1, 20, 60, T::kPermuted, kv, 16, "prefill_history"},
        {64, 4, 2, 40, 16, 4, 1, 20, 500, T::kPermuted, kv, 16, "prefill_history"},
        // A window past one chunk of keys (128 on this backend), head 128, from scratch.
        {128, 2, 1, 200, 32, 7, 1, 0, 150, T::kPermuted, kv, 16, "prefill_long"},
        // A window of 1: each token sees only itself.
        {64, 2, 2, 9, 16, 2, 1, 3, 1, T::kIdentity, kv, 16, "prefill_self"},
        // Decode batches: each token its own sequence, positions in [start, start + spread).
        {64, 8, 2, 4, 16, 12, 4, 100, 32, T::kPermuted, kv, 64, "decode_batch"},
        {128, 4, 4, 3, 16, 10, 3, 120, 128, T::kPermuted, kv, 32, "decode_batch"},
        {64, 9, 3, 1, 16, 8, 1, 77, 78, T::kIdentity, kv, 16, "decode_equal"},
        {64, 9, 3, 1, 16, 8, 1, 77, 4096, T::kIdentity, kv, 16, "decode_longer"},
    };
    for (const auto& s : shapes)
      out.push_back(window_case(s));
  }
  return out;
}

std::vector<OpCase> embed_scale_cases() {
  std::vector<OpCase> out;
  for (DType dt : {DType::kF32, DType::kQ8_0, DType::kQ4_K}) {
    for (const auto& [d, rows, n, scale] :
         {std::tuple<std::int64_t, std::int64_t, std::int64_t, float>{256, 5, 1, 16.f},
          {512, 100, 9, 22.627417f},
          {256, 40, 33, -0.5f}}) {
      OpParams p;
      p.scale = scale;
      // f32 rows of 512 would be 2048 bytes: more than the chunked variant's whole range.
      const std::int64_t dd = dt == DType::kF32 ? std::min<std::int64_t>(d, 384) : d;
      out.push_back({"EMBED/scale_" + std::string(dtype_name(dt)) + "_d" + std::to_string(dd) + "_rows" +
                         std::to_string(rows) + "_n" + std::to_string(n),
                     OpKind::kEmbed,
                     {TensorDesc::make(dt, dd, rows), TensorDesc::make(DType::kI32, n)},
                     {Fill::kRandom, Fill::kIds},
                     p,
                     rows,
                     0,
                     kElementwise});
    }
  }
  return out;
}

std::vector<OpCase> all_cases() {
  std::vector<OpCase> all;
  for (auto part : {geglu_cases(), norm_group_cases(), rope_factor_cases(), window_cases(), embed_scale_cases()})
    all.insert(all.end(), part.begin(), part.end());
  return all;
}

// The device variants of tests/CMakeLists.txt's conformance_ops_vulkan_* entries, as options.
struct Variant {
  const char* name;
  std::vector<OptionSetting> options;
};
const Variant kVariants[] = {
    {"default", {{"vulkan.validation", "1"}}},
    {"nosubgroups", {{"vulkan.validation", "1"}, {"vulkan.no_subgroups", "1"}}},
    {"nofp16", {{"vulkan.validation", "1"}, {"vulkan.no_fp16", "1"}}},
    {"chunked", {{"vulkan.validation", "1"}, {"vulkan.weight_chunk_bytes", "2048"}}},
    {"staging", {{"vulkan.validation", "1"}, {"vulkan.force_staging", "1"}}},
    {"syncval", {{"vulkan.validation", "sync"}}},
};

void PrintTo(const Variant& v, std::ostream* os) {
  *os << v.name;
}

class VulkanExtendedOps : public ::testing::TestWithParam<Variant> {};

TEST_P(VulkanExtendedOps, MatchTheReference) {
  auto reg = testing::load_registry();
  ASSERT_NE(reg, nullptr);
  ASSERT_NE(reg->find("vulkan"), nullptr) << "the vulkan plugin was not built";
  if (Status a = reg->find("vulkan")->availability(); !a.is_ok())
    GTEST_SKIP() << "vulkan unavailable: " << a.message();
  DeviceOptions o;
  o.backend_options = GetParam().options;
  auto dev = reg->open_device("vulkan:0", o);
  ASSERT_TRUE(dev.is_ok()) << dev.status().to_string();
  const auto cases = all_cases();
  ASSERT_EQ(cases.size(), 67u);  // 4 GEGLU, 28 RMS_NORM, 8 ROPE, 18 ATTENTION, 9 EMBED
  int seed = 0;
  for (const OpCase& c : cases) {
    const conformance::CaseResult r = conformance::run_op_case(*dev.value(), c, 1000 + seed++);
    // Unsupported is a failure here: these forms are implemented on this backend.
    EXPECT_TRUE(r.passed && !r.unsupported)
        << c.name << ": " << (r.unsupported ? "unsupported: " : "") << r.message << " (nmse " << r.nmse << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, VulkanExtendedOps, ::testing::ValuesIn(kVariants),
                         [](const ::testing::TestParamInfo<Variant>& info) { return std::string(info.param.name); });

// The window is not a mask over the whole sequence: a key outside it may hold anything, NaN
// included, without reaching the output (a masked walk would multiply NaN by a zero weight).
// The case puts history NaNs into the caches through a first run, then attends with a window.
TEST(VulkanExtendedOpsWindow, KeysOutsideTheWindowAreNeverRead) {
  auto reg = testing::load_registry();
  ASSERT_NE(reg, nullptr);
  ASSERT_NE(reg->find("vulkan"), nullptr) << "the vulkan plugin was not built";
  if (Status a = reg->find("vulkan")->availability(); !a.is_ok())
    GTEST_SKIP() << "vulkan unavailable: " << a.message();
  auto dev_r = reg->open_device("vulkan:0");
  ASSERT_TRUE(dev_r.is_ok()) << dev_r.status().to_string();
  Device& dev = *dev_r.value();
  const int hd = 64, bs = 16, blocks = 4, n_hist = 40;
  OpParams p;
  p.head_dim = hd;
  p.n_heads = 1;
  p.n_kv_heads = 1;
  Graph g;
  const auto row = TensorDesc::make(DType::kF32, hd, 1);
  const TensorId q = g.add_tensor("q", row, TensorRole::kInput);
  const TensorId k = g.add_tensor("k", row, TensorRole::kInput);
  const TensorId v = g.add_tensor("v", row, TensorRole::kInput);
  const TensorId kc = g.add_tensor("kc", TensorDesc::make(DType::kF32, hd, bs, blocks), TensorRole::kState);
  const TensorId vc = g.add_tensor("vc", TensorDesc::make(DType::kF32, hd, bs, blocks), TensorRole::kState);
  const TensorId pos = g.add_tensor("pos", TensorDesc::make(DType::kI32, 1), TensorRole::kInput);
  const TensorId slot = g.add_tensor("slot", TensorDesc::make(DType::kI32, 1), TensorRole::kInput);
  const TensorId table = g.add_tensor("table", TensorDesc::make(DType::kI32, blocks, 1), TensorRole::kInput);
  p.sliding_window = 4;
  auto o = g.add_op(OpKind::kAttention, {q, k, v, kc, vc, pos, slot, table}, p, "o");
  ASSERT_TRUE(o.is_ok()) << o.status().to_string();
  g.mark_output(o.value());
  auto exe = dev.compile(g);
  ASSERT_TRUE(exe.is_ok()) << exe.status().to_string();
  auto queue = dev.create_queue();
  ASSERT_TRUE(queue.is_ok());
  // Caches: NaN at positions 0 .. n_hist - 4 (outside the window of the token at n_hist), 1
  // elsewhere; the token's own k and v are 1 too, so every windowed output element is 1.
  std::vector<float> cache(static_cast<std::size_t>(hd) * bs * blocks, 1.f);
  for (int j = 0; j <= n_hist - 4; ++j) {
    for (int i = 0; i < hd; ++i)
      cache[static_cast<std::size_t>(j) * hd + static_cast<std::size_t>(i)] = std::nanf("");
  }
  const std::vector<float> ones(hd, 1.f);
  const std::int32_t pos_v = n_hist, slot_v = 0;
  const std::vector<std::int32_t> table_v = {0, 1, 2, 3};
  std::vector<std::unique_ptr<Buffer>> bufs;
  std::vector<Binding> bindings;
  auto bind = [&](TensorId id, const void* data, std::size_t bytes) {
    auto b = dev.allocate(bytes);
    ASSERT_TRUE(b.is_ok()) << b.status().to_string();
    ASSERT_TRUE(b.value()->upload(0, data, bytes).is_ok());
    bindings.push_back({id, b.value().get(), 0});
    bufs.push_back(std::move(b).value());
  };
  bind(q, ones.data(), ones.size() * 4);
  bind(k, ones.data(), ones.size() * 4);
  bind(v, ones.data(), ones.size() * 4);
  bind(kc, cache.data(), cache.size() * 4);
  bind(vc, cache.data(), cache.size() * 4);
  bind(pos, &pos_v, 4);
  bind(slot, &slot_v, 4);
  bind(table, table_v.data(), table_v.size() * 4);
  std::vector<float> out(hd, 0.f);
  bind(o.value(), out.data(), out.size() * 4);
  auto ev = exe.value()->run(*queue.value(), bindings);
  ASSERT_TRUE(ev.is_ok()) << ev.status().to_string();
  ASSERT_TRUE(ev.value()->wait().is_ok());
  ASSERT_TRUE(bufs.back()->download(0, out.data(), out.size() * 4).is_ok());
  for (int i = 0; i < hd; ++i)
    EXPECT_FLOAT_EQ(out[static_cast<std::size_t>(i)], 1.f) << "element " << i;
}

}  // namespace
}  // namespace halyard
