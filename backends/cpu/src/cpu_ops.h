// The cpu backend's implementation of every op: multi-threaded where it pays (matrix products,
// attention), SIMD through the dispatched kernel table.
#pragma once

#include <span>
#include <vector>

#include "halyard/hal/graph.h"
#include "halyard/hal/host.h"
#include "kernels.h"
#include "thread_pool.h"

namespace halyard::cpu {

// How prompt-sized matrix products (>= 32 tokens) run: the f32 GEMM on dequantized weight bands
// (AVX-512), OpenBLAS sgemm on the same, or the integer tiles that decode uses.
enum class PrefillPath { kGemm, kGemmBf16, kBlas, kTiles };

// One band of a matrix product's rows, a task of the pool (matmul_group).
struct MatmulBand {
  int part;
  std::int64_t j0, j1;
};

// Per-executable scratch memory (quantized activations), reused across runs.
struct Scratch {
  std::vector<MatmulBand> bands;
  std::vector<ActBlock> activations;
  std::vector<float> dequantized;              // weight rows for the BLAS path
  std::vector<float> transposed;               // activations [k, tokens] for the GEMM path
  std::vector<std::uint32_t> transposed_bf16;  // the same as bf16 pairs [k / 2, tokens]
  std::vector<float> keys_t;                   // attention: K^T per KV head, [head_dim, keys] each
  std::vector<float> values_f32;               // attention, f16 caches: V widened, [keys, kv_dim]
};

struct CpuContext {
  ThreadPool& pool;
  const KernelTable& kernels;
  Scratch& scratch;
  PrefillPath prefill = PrefillPath::kTiles;
};

// True for the weight dtypes MATMUL has kernels for: the float types, and the quantized
// formats with an entry in the generic kernel table (which every table starts from).
bool has_matmul_kernels(DType dtype);

Status run_cpu_op(CpuContext& ctx, const GraphNode& node, std::span<const HostTensor> in, const HostTensor& out);

// Node groups (HostGrouping): consecutive MATMULs that read the same activations (Q, K and V;
// gate and up) run as one parallel region with the activations quantized once.
constexpr std::size_t kMaxMatmulGroup = 8;
std::size_t cpu_group_size(const Graph& graph, std::size_t first);
Status run_cpu_group(CpuContext& ctx, std::span<const HostNodeCall> calls);

}  // namespace halyard::cpu
