// Google Benchmark of the cpu backend's kernels, per kernel table this CPU runs: how many bytes
// of weights per second one core's decode dot products take in from cache and from memory, and
// the elementwise kernels of the kernel table. Decode is memory-bound only where a kernel reads
// faster than memory delivers; this says where that is.
//   build/release/bin/halyard-kernel-bench [--benchmark_filter=dot_q8_0]
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels.h"

namespace halyard::cpu {
namespace {

constexpr int kK = 2048;  // the 1B shape's hidden size: 64 blocks per row
constexpr int kBlocks = kK / kQuantBlock;

std::vector<float> random_floats(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v)
    x = normal(rng);
  return v;
}

// Rows of `dt` weights quantized from random floats, and one token's activations.
struct DotSetup {
  std::size_t row_size;
  std::vector<std::uint8_t> weights;
  std::vector<ActBlock> act;
  DotSetup(const KernelTable& kt, DType dt, std::int64_t rows) : row_size(row_bytes(dt, kK)) {
    weights.resize(row_size * static_cast<std::size_t>(rows));
    const auto row = random_floats(kK, 1);
    for (std::int64_t r = 0; r < rows; ++r)
      quantize_row(dt, row.data(), weights.data() + row_size * static_cast<std::size_t>(r), kK);
    act.resize(kBlocks);
    const auto x = random_floats(kK, 2);
    kt.quantize_activations(x.data(), act.data(), kBlocks);
  }
};

// One core computes every row's dot product with one token, as decode does for its band.
void dot_rows(benchmark::State& state, const KernelTable* kt, DType dt) {
  const std::int64_t rows = state.range(0);
  DotSetup s(*kt, dt, rows);
  const QuantDotFn dot = kt->quantized(dt).dot;
  for (auto _ : state) {
    float sum = 0.f;
    for (std::int64_t r = 0; r < rows; ++r)
      sum += dot(s.weights.data() + static_cast<std::size_t>(r) * s.row_size, s.act.data(), kBlocks);
    benchmark::DoNotOptimize(sum);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(s.weights.size()));
}

// One core computes every row against a decode batch of kTileTokens tokens through the table's
// R x T tiles, as a batched decode step does for its band; items are 32-value block-dots.
constexpr int kTileTokens = 8;
void tile_rows(benchmark::State& state, const KernelTable* kt, DType dt) {
  const std::int64_t rows = state.range(0);
  DotSetup s(*kt, dt, rows);
  std::vector<ActBlock> act(static_cast<std::size_t>(kTileTokens) * kBlocks);
  for (int t = 0; t < kTileTokens; ++t) {
    const auto x = random_floats(kK, 10 + static_cast<std::uint64_t>(t));
    kt->quantize_activations(x.data(), act.data() + t * kBlocks, kBlocks);
  }
  const QuantKernels& qk = kt->quantized(dt);
  const int R = qk.tile_rows, T = qk.tile_tokens;
  std::vector<float> out(static_cast<std::size_t>(kTileTokens * rows));
  for (auto _ : state) {
    for (std::int64_t j = 0; j + R <= rows; j += R) {
      const void* w[8];
      const ActBlock* x[8];
      for (int r = 0; r < R; ++r)
        w[r] = s.weights.data() + static_cast<std::size_t>(j + r) * s.row_size;
      for (int t0 = 0; t0 + T <= kTileTokens; t0 += T) {
        for (int t = 0; t < T; ++t)
          x[t] = act.data() + (t0 + t) * kBlocks;
        qk.tile(w, x, kBlocks, out.data() + t0 * rows + j, static_cast<int>(rows));
      }
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * rows * kTileTokens * kBlocks);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(s.weights.size()));
}

void quantize(benchmark::State& state, const KernelTable* kt) {
  const auto x = random_floats(kK, 3);
  std::vector<ActBlock> out(kBlocks);
  for (auto _ : state) {
    kt->quantize_activations(x.data(), out.data(), kBlocks);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kK);
}

void swiglu(benchmark::State& state, const KernelTable* kt) {
  const int n = 8192;  // the 1B shape's feed-forward width
  const auto g = random_floats(n, 4), u = random_floats(n, 5);
  std::vector<float> out(n);
  for (auto _ : state) {
    kt->swiglu(g.data(), u.data(), out.data(), n);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void exp_sum(benchmark::State& state, const KernelTable* kt) {
  const int n = 1024;  // one head's scores over a 1024-position cache
  const auto s = random_floats(n, 6);
  std::vector<float> work(n);
  for (auto _ : state) {
    work = s;
    benchmark::DoNotOptimize(kt->exp_sum(work.data(), n, 4.f));
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void register_table(const KernelTable* kt) {
  if (!kt)
    return;
  const std::string name = kt->name;
  // 256 rows (557 KB of Q8_0) stay in L2; 131072 rows (285 MB of Q8_0) stream from memory.
  const auto id = [&](const char* what) { return std::string(what) + "/" + name; };
  // Every quantized format the table has kernels for.
  for (std::size_t id_value = 0; id_value < kDTypeSlots; ++id_value) {
    const auto info = dtype_info(static_cast<std::uint32_t>(id_value));
    if (!info || !kt->quant[id_value].dot)
      continue;
    const std::string label = "dot_" + std::string(info->name);
    benchmark::RegisterBenchmark(id(label.c_str()).c_str(), dot_rows, kt, info->dtype)
        ->Arg(256)
        ->Arg(131072)
        ->Unit(benchmark::kMicrosecond);
    if (kt->quant[id_value].tile) {
      const std::string tl = "tile8_" + std::string(info->name);
      benchmark::RegisterBenchmark(id(tl.c_str()).c_str(), tile_rows, kt, info->dtype)
          ->Arg(256)
          ->Arg(32768)
          ->Unit(benchmark::kMicrosecond);
    }
  }
  benchmark::RegisterBenchmark(id("quantize_activations").c_str(), quantize, kt);
  benchmark::RegisterBenchmark(id("swiglu").c_str(), swiglu, kt);
  benchmark::RegisterBenchmark(id("exp_sum").c_str(), exp_sum, kt);
}

}  // namespace
}  // namespace halyard::cpu

int main(int argc, char** argv) {
  using namespace halyard::cpu;
  // Only tables this CPU can run.
  for (const KernelTable* kt : runnable_kernel_tables())
    register_table(kt);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
