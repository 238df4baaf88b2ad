#include "gemm_matmul.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace halyard::cpu {
namespace {

// The f32 and bf16 paths differ only in the element types of the two streams and the block.
struct F32Path {
  using W = float;
  using X = float;
  static constexpr int kStep = 1;  // k values per X element
  static X pack(const float* xs, std::int64_t k, std::int64_t t, std::int64_t kx) { return xs[t * k + kx]; }
  static void block(const KernelTable& kt, const W* w, int ldw, int rows, const X* xt, int ldx, int kx, float* ct,
                    int ldc, bool acc) {
    kt.gemm_f32_block(w, ldw, rows, xt, ldx, kx, ct, ldc, acc);
  }
};

#if defined(__x86_64__)
std::uint16_t to_bf16(float f) {  // round to nearest even, as halyard::f32_to_bf16 (inputs are finite)
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

struct Bf16Path {
  using W = std::uint16_t;
  using X = std::uint32_t;  // a pair of bf16: k = 2 kx (low half) and 2 kx + 1 (high half)
  static constexpr int kStep = 2;
  static void store_row(const float* src, std::uint16_t* dst, std::int64_t k, std::int64_t k_pad) {
    for (std::int64_t i = 0; i < k; ++i)
      dst[i] = to_bf16(src[i]);
    for (std::int64_t i = k; i < k_pad; ++i)
      dst[i] = 0;
  }
  static X pack(const float* xs, std::int64_t k, std::int64_t t, std::int64_t kx) {
    const std::int64_t k0 = 2 * kx;
    const std::uint32_t lo = to_bf16(xs[t * k + k0]);
    const std::uint32_t hi = k0 + 1 < k ? to_bf16(xs[t * k + k0 + 1]) : 0u;
    return lo | (hi << 16);
  }
  static void block(const KernelTable&, const W* w, int ldw, int rows, const X* xt, int ldx, int kx, float* ct, int ldc,
                    bool acc) {
    gemm_bf16_block_avx512(w, ldw, rows, xt, ldx, kx, ct, ldc, acc);
  }
};
#endif

template <typename Path>
Status run(CpuContext& ctx, const HostTensor& w, const HostTensor& x, const HostTensor& out,
           std::vector<typename Path::X>& xt) {
  using W = typename Path::W;
  const std::int64_t k = w.desc.ne[0], m = w.desc.ne[1], n = x.desc.ne[1];
  const std::int64_t n_pad = (n + kGemmTokens - 1) / kGemmTokens * kGemmTokens;
  const std::int64_t kx_len = (k + Path::kStep - 1) / Path::kStep;  // rows of xt
  const std::int64_t k_pad = kx_len * Path::kStep;
  // Activations transposed to [kx, n_pad] (padding columns zero), so a step of k reads 64
  // consecutive tokens.
  xt.resize(static_cast<std::size_t>(kx_len * n_pad));
  const float* xs = static_cast<const float*>(x.data);
  constexpr int kChunk = 64;
  ctx.pool.parallel_for(static_cast<int>((kx_len + kChunk - 1) / kChunk), [&](int c) {
    for (std::int64_t kx = std::int64_t{c} * kChunk; kx < std::min(kx_len, std::int64_t{c + 1} * kChunk); ++kx) {
      auto* row = xt.data() + kx * n_pad;
      for (std::int64_t t = 0; t < n; ++t)
        row[t] = Path::pack(xs, k, t, kx);
      for (std::int64_t t = n; t < n_pad; ++t)
        row[t] = 0;
    }
  });
  constexpr std::int64_t kBand = 8 * kGemmRows;
  constexpr std::int64_t kSliceK = 512;  // in k; a multiple of every kStep
  const auto* wb = static_cast<const std::uint8_t*>(w.data);
  const std::size_t row_size = w.desc.row_size();
  float* o = static_cast<float*>(out.data);
  const KernelTable& kt = ctx.kernels;
  ctx.pool.parallel_for(static_cast<int>((m + kBand - 1) / kBand), [&](int band) {
    thread_local std::vector<float> row_f32, result;
    thread_local std::vector<W> rows_w;
    const std::int64_t j0 = std::int64_t{band} * kBand, rows = std::min(kBand, m - j0);
    row_f32.resize(static_cast<std::size_t>(k));
    rows_w.resize(static_cast<std::size_t>(rows * k_pad));
    result.resize(static_cast<std::size_t>(kBand * n_pad));
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::uint8_t* src = wb + static_cast<std::size_t>(j0 + r) * row_size;
      if constexpr (std::is_same_v<W, float>) {
        dequantize_row_fast(w.desc.dtype, src, rows_w.data() + r * k_pad, k);
      } else {
        dequantize_row_fast(w.desc.dtype, src, row_f32.data(), k);
        Path::store_row(row_f32.data(), rows_w.data() + r * k_pad, k, k_pad);
      }
    }
    // Slices of k keep the band's weights (48 x 512) and the activations (512 x 64) in L2: a
    // 1B model's FFN (k = 8192) otherwise streams from L3. Partial sums stay in `result`
    // ([rows, tokens], contiguous), which is scattered into the [tokens, rows] output once.
    for (std::int64_t k0 = 0; k0 < k_pad; k0 += kSliceK) {
      const int kc = static_cast<int>(std::min(kSliceK, k_pad - k0));
      for (std::int64_t t0 = 0; t0 < n; t0 += kGemmTokens) {
        for (std::int64_t r0 = 0; r0 < rows; r0 += kGemmRows) {
          Path::block(kt, rows_w.data() + r0 * k_pad + k0, static_cast<int>(k_pad),
                      static_cast<int>(std::min<std::int64_t>(kGemmRows, rows - r0)),
                      xt.data() + (k0 / Path::kStep) * n_pad + t0, static_cast<int>(n_pad), kc / Path::kStep,
                      result.data() + r0 * n_pad + t0, static_cast<int>(n_pad), k0 > 0);
        }
      }
    }
    for (std::int64_t t = 0; t < n; ++t) {
      for (std::int64_t r = 0; r < rows; ++r)
        o[t * m + j0 + r] = result[static_cast<std::size_t>(r * n_pad + t)];
    }
  });
  return Status::ok();
}

}  // namespace

Status gemm_matmul(CpuContext& ctx, const HostTensor& w, const HostTensor& x, const HostTensor& out) {
  return run<F32Path>(ctx, w, x, out, ctx.scratch.transposed);
}

Status gemm_bf16_matmul(CpuContext& ctx, const HostTensor& w, const HostTensor& x, const HostTensor& out) {
#if defined(__x86_64__)
  return run<Bf16Path>(ctx, w, x, out, ctx.scratch.transposed_bf16);
#else
  (void)ctx, (void)w, (void)x, (void)out;
  return unimplemented("the bf16 GEMM exists on x86-64 only");
#endif
}

}  // namespace halyard::cpu
