#include "gemm_matmul.h"

#include <algorithm>

namespace halyard::cpu {

Status gemm_matmul(CpuContext& ctx, const HostTensor& w, const HostTensor& x, const HostTensor& out) {
  const std::int64_t k = w.desc.ne[0], m = w.desc.ne[1], n = x.desc.ne[1];
  const std::int64_t n_pad = (n + kGemmTokens - 1) / kGemmTokens * kGemmTokens;
  // Activations transposed to [k, n_pad], padding columns zero, so a step of k reads 64
  // consecutive tokens.
  auto& xt = ctx.scratch.transposed;
  xt.resize(static_cast<std::size_t>(k * n_pad));
  const float* xs = static_cast<const float*>(x.data);
  constexpr int kChunk = 64;
  ctx.pool.parallel_for(static_cast<int>((k + kChunk - 1) / kChunk), [&](int c) {
    for (std::int64_t kk = std::int64_t{c} * kChunk; kk < std::min(k, std::int64_t{c + 1} * kChunk); ++kk) {
      float* row = xt.data() + kk * n_pad;
      for (std::int64_t t = 0; t < n; ++t)
        row[t] = xs[t * k + kk];
      for (std::int64_t t = n; t < n_pad; ++t)
        row[t] = 0.f;
    }
  });
  constexpr std::int64_t kBand = 8 * kGemmRows;
  constexpr std::int64_t kSliceK = 512;
  const auto* wb = static_cast<const std::uint8_t*>(w.data);
  const std::size_t row_size = w.desc.row_size();
  float* o = static_cast<float*>(out.data);
  const KernelTable& kt = ctx.kernels;
  ctx.pool.parallel_for(static_cast<int>((m + kBand - 1) / kBand), [&](int band) {
    thread_local std::vector<float> rows_f32, result;
    const std::int64_t j0 = std::int64_t{band} * kBand, rows = std::min(kBand, m - j0);
    rows_f32.resize(static_cast<std::size_t>(rows * k));
    result.resize(static_cast<std::size_t>(kBand * n_pad));
    for (std::int64_t r = 0; r < rows; ++r) {
      dequantize_row_fast(w.desc.dtype, wb + static_cast<std::size_t>(j0 + r) * row_size, rows_f32.data() + r * k, k);
    }
    // Slices of k keep the band's weights (48 x 512) and the activations (512 x 64) in L2: a
    // 1B model's FFN (k = 8192) otherwise streams from L3. Partial sums stay in `result`
    // ([rows, tokens], contiguous), which is scattered into the [tokens, rows] output once.
    for (std::int64_t k0 = 0; k0 < k; k0 += kSliceK) {
      const int kc = static_cast<int>(std::min(kSliceK, k - k0));
      for (std::int64_t t0 = 0; t0 < n; t0 += kGemmTokens) {
        for (std::int64_t r0 = 0; r0 < rows; r0 += kGemmRows) {
          kt.gemm_f32_block(rows_f32.data() + r0 * k + k0, static_cast<int>(k),
                            static_cast<int>(std::min<std::int64_t>(kGemmRows, rows - r0)), xt.data() + k0 * n_pad + t0,
                            static_cast<int>(n_pad), kc, result.data() + r0 * n_pad + t0, static_cast<int>(n_pad),
                            k0 > 0);
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

}  // namespace halyard::cpu
