// CPU kernels with run-time dispatch: one table of function pointers per instruction set
// (AVX-512 with VNNI, AVX2, portable C++), chosen once from CPUID.
//
// Quantized matrix products do not dequantize weights: activations are quantized once per row
// to 8-bit blocks of 32 (ActBlock) and multiplied in integers against the weight blocks, the
// way llama.cpp's CPU backend works. Float weights (f32, f16, bf16) use float dot products.
// Thread safety: pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "halyard/hal/blocks.h"
#include "halyard/hal/dtype.h"

namespace halyard::cpu {

// One block of 32 activations, quantized in groups of 4: x[j] ~= d[j / 4] * qs[j];
// sum = sum_j d[j / 4] * qs[j] (for Q4_0's offset and Q4_1's minimum).
// Groups of 4, not one scale per 32: hidden states carry outlier channels, and one outlier
// would flatten its 31 neighbours to a few levels (llama.cpp's Q8 activations do; measured on
// SmolLM2 decode it costs up to 1e-2 logit NMSE). The integer dot instructions already give
// one int32 per 4 products, so each sum meets its own scale at no extra instruction.
inline constexpr int kActGroup = 4;
struct ActBlock {
  float d[kQuantBlock / kActGroup];
  float sum;
  std::int8_t qs[kQuantBlock];
};
static_assert(sizeof(ActBlock) == 68);

// Kernels of one quantized weight format, on its blocks as they are stored. `n_blocks` counts
// activation blocks (k / 32) whatever the weight block: a K-quant kernel walks n_blocks / 8
// super-blocks of 256, each meeting eight activation blocks.
// dot: the dot product of one weight row with one token.
// tile: `tile_rows` weight rows times `tile_tokens` activation rows at once, so each weight
// block is unpacked once per tile and each activation block loaded once per tile;
// out[t * ldo + r] = dot(w[r], x[t]). nullptr where the table has only the dot product.
using QuantDotFn = float (*)(const void* w, const ActBlock* x, int n_blocks);
using QuantTileFn = void (*)(const void* const* w, const ActBlock* const* x, int n_blocks, float* out, int ldo);
struct QuantKernels {
  QuantDotFn dot = nullptr;
  QuantTileFn tile = nullptr;
  int tile_rows = 1;
  int tile_tokens = 1;
};

// Kernel tables are indexed by dtype (GGUF ids, all below this): a weight format is added with
// one entry per table. The generic table has every quantized format the backend runs; a SIMD
// table starts from the generic entries (make_table below) and replaces those it has faster.
inline constexpr std::size_t kDTypeSlots = 32;

struct KernelTable {
  const char* name;
  // Attention: scores[j] = dot(q, k + j * stride) for j < len (head size hd), and
  // out = sum_j weights[j] * (v + j * stride).
  void (*dot_many_f32)(const float* q, const float* k, int stride, int len, int hd, float* scores);
  void (*weighted_sum_f32)(const float* weights, const float* v, int stride, int len, int hd, float* out);
  // Softmax numerator: s[j] = exp(s[j] - max) for j < n; returns their sum. Vector versions are
  // accurate to a few ulp (range reduction by ln 2, degree-6 polynomial).
  float (*exp_sum)(float* s, int n, float max);
  // SWIGLU: out[i] = g[i] * sigmoid(g[i]) * u[i] for i < n (vector versions through the same exp).
  void (*swiglu)(const float* g, const float* u, float* out, int n);
  // nullptr where the table has no f32 GEMM block (then prefill uses the tiles or OpenBLAS).
  void (*gemm_f32_block)(const float* w, int ldw, int rows, const float* xt, int ldx, int k, float* ct, int ldc,
                         bool accumulate);
  void (*quantize_activations)(const float* x, ActBlock* out, int n_blocks);
  float (*dot_f32)(const float* w, const float* x, int n);
  float (*dot_f16)(const std::uint16_t* w, const float* x, int n);
  float (*dot_bf16)(const std::uint16_t* w, const float* x, int n);
  // dst[i] = f16 src[i] widened to f32 for i < n, bit for bit halyard::f16_to_f32 except that a
  // signalling NaN may come out quiet. The attention reads an f16 KV cache through these copies:
  // one call per head and token of a decode step, so the scalar conversion was a third of a
  // batched decode step's time.
  void (*widen_f16)(const std::uint16_t* src, float* dst, int n);
  // Quantized weight formats, by dtype id; an entry whose dot is nullptr has no kernels.
  std::array<QuantKernels, kDTypeSlots> quant{};

  const QuantKernels& quantized(DType dtype) const {
    const auto id = static_cast<std::size_t>(dtype);
    static constexpr QuantKernels kNone{};
    return id < kDTypeSlots ? quant[id] : kNone;
  }
  void set(DType dtype, QuantKernels k) { quant.at(static_cast<std::size_t>(dtype)) = k; }
};

// Type-erased entries from kernels written on their block type.
template <typename Block, float (*Dot)(const Block*, const ActBlock*, int)>
float erased_dot(const void* w, const ActBlock* x, int n_blocks) {
  return Dot(static_cast<const Block*>(w), x, n_blocks);
}
template <typename Block, void (*Tile)(const Block* const*, const ActBlock* const*, int, float*, int)>
void erased_tile(const void* const* w, const ActBlock* const* x, int n_blocks, float* out, int ldo) {
  Tile(reinterpret_cast<const Block* const*>(w), x, n_blocks, out, ldo);
}
template <typename Block, float (*Dot)(const Block*, const ActBlock*, int)>
constexpr QuantKernels dot_kernels() {
  return {erased_dot<Block, Dot>, nullptr, 1, 1};
}

// f32 GEMM block for prefill (AVX-512 builds on x86-64): ct[r * ldc + t] (+)= sum_{kk < k}
// w[r * ldw + kk] * xt[kk * ldx + t] for r < rows (<= kGemmRows) and t < kGemmTokens, adding to
// ct when `accumulate` (a later slice of k). The result is [rows, tokens], contiguous per row,
// so slices of k accumulate with vector loads and stores. Call only where the CPU has AVX-512F.
inline constexpr int kGemmRows = 6;
inline constexpr int kGemmTokens = 64;

// Calls f(std::integral_constant<int, R>{}) with R = rows (1 to kGemmRows): the GEMM blocks take
// their row count as a template parameter, so their accumulators stay in registers.
template <typename F>
inline void dispatch_gemm_rows(int rows, F&& f) {
  switch (rows) {
    case 1:
      f(std::integral_constant<int, 1>{});
      return;
    case 2:
      f(std::integral_constant<int, 2>{});
      return;
    case 3:
      f(std::integral_constant<int, 3>{});
      return;
    case 4:
      f(std::integral_constant<int, 4>{});
      return;
    case 5:
      f(std::integral_constant<int, 5>{});
      return;
    default:
      f(std::integral_constant<int, kGemmRows>{});
      return;
  }
}
void gemm_f32_block_avx512(const float* w, int ldw, int rows, const float* xt, int ldx, int k, float* ct, int ldc,
                           bool accumulate);

// bf16 GEMM block (AVX512_BF16): as gemm_f32_block_avx512, with bf16 weights w[r * ldw + kk]
// and activations packed as pairs: xt[kp * ldx + t] holds tokens t's values at k = 2kp (low half)
// and 2kp + 1 (high half). kpairs steps of two. x86-64 builds only; call only where
// cpu_has_avx512_bf16() (false on other architectures).
void gemm_bf16_block_avx512(const std::uint16_t* w, int ldw, int rows, const std::uint32_t* xt, int ldx, int kpairs,
                            float* ct, int ldc, bool accumulate);
bool cpu_has_avx512_bf16();

// Row dequantization, bit for bit halyard::dequantize_row: the AVX-512F version on x86-64 (call
// it only where the CPU has AVX-512F, i.e. where a table's gemm_f32_block is set), the portable
// one elsewhere.
void dequantize_row_fast(DType dtype, const void* src, float* dst, std::int64_t n);

// Tables are built on first use (function-local statics), so a SIMD table can start from the
// generic one whatever the order of static initialisation.
const KernelTable& generic_kernels();
const KernelTable* avx2_kernels();        // nullptr when not compiled in
const KernelTable* avx512vnni_kernels();  // nullptr when not compiled in
const KernelTable* neon_kernels();        // AArch64 +dotprod; nullptr when not compiled in
// The best table this CPU runs; `forced` (generic, avx2, avx512vnni, neon-dotprod) picks one.
const KernelTable& select_kernels(const char* forced);
// Every table this CPU can run (its instruction sets present), the portable one first and the
// best last: what tests and benchmarks walk.
std::vector<const KernelTable*> runnable_kernel_tables();

}  // namespace halyard::cpu
