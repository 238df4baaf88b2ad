// bf16 GEMM micro-kernel for prefill on AVX512_BF16 (compiled with -mavx512f -mavx512bw
// -mavx512bf16): the f32 block's shape (6 weight rows x 64 tokens, 24 zmm accumulators), but each
// vdpbf16ps multiplies two steps of k at once: a weight pair (w[k], w[k+1]) broadcast against 16
// tokens' activation pairs. Twice the multiply-adds per instruction of the f32 block, with bf16
// inputs (8-bit mantissas) and f32 sums.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstring>

#include "kernels.h"

namespace halyard::cpu {
namespace {

template <int MR>
void block(const std::uint16_t* w, int ldw, const std::uint32_t* xt, int ldx, int kpairs, float* ct, int ldc,
           bool accumulate) {
  __m512 acc[MR][4];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      acc[r][v] =
          accumulate ? _mm512_loadu_ps(ct + static_cast<std::ptrdiff_t>(r) * ldc + 16 * v) : _mm512_setzero_ps();
    }
  }
  for (int kp = 0; kp < kpairs; ++kp) {
    const std::uint32_t* xr = xt + static_cast<std::ptrdiff_t>(kp) * ldx;
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(xr), b1 = (__m512bh)_mm512_loadu_si512(xr + 16);
    const __m512bh b2 = (__m512bh)_mm512_loadu_si512(xr + 32), b3 = (__m512bh)_mm512_loadu_si512(xr + 48);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      std::uint32_t pair;
      std::memcpy(&pair, w + static_cast<std::ptrdiff_t>(r) * ldw + 2 * kp, 4);
      const __m512bh a = (__m512bh)_mm512_set1_epi32(static_cast<int>(pair));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
      acc[r][2] = _mm512_dpbf16_ps(acc[r][2], a, b2);
      acc[r][3] = _mm512_dpbf16_ps(acc[r][3], a, b3);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v)
      _mm512_storeu_ps(ct + static_cast<std::ptrdiff_t>(r) * ldc + 16 * v, acc[r][v]);
  }
}

}  // namespace

void gemm_bf16_block_avx512(const std::uint16_t* w, int ldw, int rows, const std::uint32_t* xt, int ldx, int kpairs,
                            float* ct, int ldc, bool accumulate) {
  dispatch_gemm_rows(rows, [&](auto r) { block<decltype(r)::value>(w, ldw, xt, ldx, kpairs, ct, ldc, accumulate); });
}

}  // namespace halyard::cpu
