// f32 GEMM micro-kernel for prefill on AVX-512F (compiled with -mavx512f -mfma -mf16c): up to 6 weight
// rows x 64 tokens per call, 24 zmm accumulators, one broadcast weight per row and four
// 16-token activation vectors per step of k. The driver (backends/cpu) dequantizes weight rows
// and transposes the activations so both streams are contiguous.
// GCC 12 warns that its own AVX-512 intrinsics read an uninitialised value (their "undefined"
// pass-through operand; GCC bug 105593, fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstring>

#include "halyard/hal/dtype.h"
#include "kernels.h"
#include "kquants.h"

namespace halyard::cpu {
namespace {

template <int MR>
void block(const float* w, int ldw, const float* xt, int ldx, int k, float* ct, int ldc, bool accumulate) {
  // The unroll pragmas keep all MR x 4 accumulators in registers; without them GCC keeps the
  // array in memory and the kernel runs at a fraction of its speed.
  __m512 acc[MR][4];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      acc[r][v] =
          accumulate ? _mm512_loadu_ps(ct + static_cast<std::ptrdiff_t>(r) * ldc + 16 * v) : _mm512_setzero_ps();
    }
  }
  for (int kk = 0; kk < k; ++kk) {
    const float* xr = xt + static_cast<std::ptrdiff_t>(kk) * ldx;
    const __m512 b0 = _mm512_loadu_ps(xr), b1 = _mm512_loadu_ps(xr + 16);
    const __m512 b2 = _mm512_loadu_ps(xr + 32), b3 = _mm512_loadu_ps(xr + 48);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 a = _mm512_set1_ps(w[static_cast<std::ptrdiff_t>(r) * ldw + kk]);
      acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps(a, b2, acc[r][2]);
      acc[r][3] = _mm512_fmadd_ps(a, b3, acc[r][3]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v)
      _mm512_storeu_ps(ct + static_cast<std::ptrdiff_t>(r) * ldc + 16 * v, acc[r][v]);
  }
}

// Sixteen u8 (or s8) values to floats.
inline __m512 u8_to_ps(__m128i v) {
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v));
}
inline __m512 s8_to_ps(__m128i v) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v));
}
inline __m128i load16(const std::uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

// Q4_K and Q5_K as dequantize_q4_k / _q5_k: y = (d * sc) * q - dmin * m. Bit for bit even
// where the compiler fuses the multiply and the subtraction: d and dmin are f16 (11 significant
// bits), sc and m 6-bit, q 5-bit, so every product is exact in float and only the subtraction
// rounds, fused or not.
template <typename Block, bool kHigh>
void dequantize_q45_k(const Block* b, float* y, std::int64_t nblocks) {
  const __m128i low4 = _mm_set1_epi8(0x0f), bit4 = _mm_set1_epi8(0x10);
  for (std::int64_t i = 0; i < nblocks; ++i) {
    const float d = _cvtsh_ss(b[i].d), dmin = _cvtsh_ss(b[i].dmin);
    std::uint8_t sm[16];
    unpack_k_scales(b[i].scales, sm);
    for (int s = 0; s < 8; ++s, y += 32) {
      const __m512 ds = _mm512_set1_ps(d * static_cast<float>(sm[s]));
      const __m512 dm = _mm512_set1_ps(dmin * static_cast<float>(sm[8 + s]));
      for (int half = 0; half < 2; ++half) {
        __m128i q = load16(b[i].qs + 32 * (s / 2) + 16 * half);
        q = _mm_and_si128(s & 1 ? _mm_srli_epi16(q, 4) : q, low4);
        if constexpr (kHigh) {
          // bit s of qh[l] -> 16: shift it to bit 0 of its 16-bit lane's bytes, then to bit 4
          const __m128i h = _mm_srl_epi16(load16(b[i].qh + 16 * half), _mm_cvtsi32_si128(s));
          q = _mm_or_si128(q, _mm_and_si128(_mm_slli_epi16(h, 4), bit4));
        }
        _mm512_storeu_ps(y + 16 * half, _mm512_sub_ps(_mm512_mul_ps(ds, u8_to_ps(q)), dm));
      }
    }
  }
}

// Q6_K as dequantize_q6_k: y = (d * scale) * (q - 32).
void dequantize_q6_k_fast(const BlockQ6_K* b, float* y, std::int64_t nblocks) {
  const __m128i low4 = _mm_set1_epi8(0x0f), top2 = _mm_set1_epi8(0x30), k32 = _mm_set1_epi8(32);
  for (std::int64_t i = 0; i < nblocks; ++i) {
    const float d = _cvtsh_ss(b[i].d);
    for (int h = 0; h < 2; ++h, y += 128) {
      const std::int8_t* sc = b[i].scales + 8 * h;
      for (int part = 0; part < 2; ++part) {  // l in [16 part, 16 part + 16): one scale each
        const __m128i ql0 = load16(b[i].ql + 64 * h + 16 * part), ql1 = load16(b[i].ql + 64 * h + 32 + 16 * part);
        const __m128i qh = load16(b[i].qh + 32 * h + 16 * part);
        const __m128i q[4] = {
            _mm_or_si128(_mm_and_si128(ql0, low4), _mm_and_si128(_mm_slli_epi16(qh, 4), top2)),
            _mm_or_si128(_mm_and_si128(ql1, low4), _mm_and_si128(_mm_slli_epi16(qh, 2), top2)),
            _mm_or_si128(_mm_and_si128(_mm_srli_epi16(ql0, 4), low4), _mm_and_si128(qh, top2)),
            _mm_or_si128(_mm_and_si128(_mm_srli_epi16(ql1, 4), low4), _mm_and_si128(_mm_srli_epi16(qh, 2), top2)),
        };
        for (int j = 0; j < 4; ++j) {
          const __m512 ds = _mm512_set1_ps(d * static_cast<float>(sc[part + 2 * j]));
          _mm512_storeu_ps(y + 32 * j + 16 * part, _mm512_mul_ps(ds, s8_to_ps(_mm_sub_epi8(q[j], k32))));
        }
      }
    }
  }
}

}  // namespace

void gemm_f32_block_avx512(const float* w, int ldw, int rows, const float* xt, int ldx, int k, float* ct, int ldc,
                           bool accumulate) {
  dispatch_gemm_rows(rows, [&](auto r) { block<decltype(r)::value>(w, ldw, xt, ldx, k, ct, ldc, accumulate); });
}

void dequantize_row_fast(DType dtype, const void* src, float* dst, std::int64_t n) {
  switch (dtype) {
    case DType::kF16: {
      const auto* h = static_cast<const std::uint16_t*>(src);
      std::int64_t i = 0;
      for (; i + 16 <= n; i += 16) {
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + i))));
      }
      if (i < n)
        dequantize_row(dtype, h + i, dst + i, n - i);
      return;
    }
    case DType::kBF16: {
      const auto* h = static_cast<const std::uint16_t*>(src);
      std::int64_t i = 0;
      for (; i + 16 <= n; i += 16) {
        const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + i)));
        _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16)));
      }
      if (i < n)
        dequantize_row(dtype, h + i, dst + i, n - i);
      return;
    }
    case DType::kQ8_0: {
      const auto* b = static_cast<const BlockQ8_0*>(src);
      for (std::int64_t i = 0; i < n / kQuantBlock; ++i) {
        const __m512 d = _mm512_set1_ps(_cvtsh_ss(b[i].d));
        const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].qs));
        const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].qs + 16));
        _mm512_storeu_ps(dst + i * kQuantBlock, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0))));
        _mm512_storeu_ps(dst + i * kQuantBlock + 16, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1))));
      }
      return;
    }
    case DType::kQ4_0:
    case DType::kQ4_1: {
      const bool q41 = dtype == DType::kQ4_1;
      const std::size_t bytes = q41 ? sizeof(BlockQ4_1) : sizeof(BlockQ4_0);
      const auto* base = static_cast<const std::uint8_t*>(src);
      for (std::int64_t i = 0; i < n / kQuantBlock; ++i) {
        const auto* blk = base + static_cast<std::size_t>(i) * bytes;
        std::uint16_t dh, mh = 0;
        std::memcpy(&dh, blk, 2);
        if (q41)
          std::memcpy(&mh, blk + 2, 2);
        const std::uint8_t* qs = blk + (q41 ? 4 : 2);
        const __m512 d = _mm512_set1_ps(_cvtsh_ss(dh));
        const __m512 m = _mm512_set1_ps(q41 ? _cvtsh_ss(mh) : -8.f * _cvtsh_ss(dh));
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
        const __m128i lo = _mm_and_si128(raw, _mm_set1_epi8(0x0f));
        const __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0f));
        _mm512_storeu_ps(dst + i * kQuantBlock, _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(lo)), d, m));
        _mm512_storeu_ps(dst + i * kQuantBlock + 16,
                         _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(hi)), d, m));
      }
      return;
    }
    case DType::kQ5_0:
    case DType::kQ5_1: {
      // As Q4_0 / Q4_1, with the fifth bits of the 16 weights of each half (bits 0-15 and
      // 16-31 of qh) as a write mask that ORs 16 in. (q - 16) d and q d are exact (q < 32, d
      // an f16), so the fused q d + m rounds once, as the definition's product and sum do.
      const bool q51 = dtype == DType::kQ5_1;
      const std::size_t bytes = q51 ? sizeof(BlockQ5_1) : sizeof(BlockQ5_0);
      const auto* base = static_cast<const std::uint8_t*>(src);
      const __m512i sixteen = _mm512_set1_epi32(16);
      for (std::int64_t i = 0; i < n / kQuantBlock; ++i) {
        const auto* blk = base + static_cast<std::size_t>(i) * bytes;
        std::uint16_t dh, mh = 0;
        std::uint32_t qh;
        std::memcpy(&dh, blk, 2);
        if (q51)
          std::memcpy(&mh, blk + 2, 2);
        std::memcpy(&qh, blk + (q51 ? 4 : 2), 4);
        const std::uint8_t* qs = blk + (q51 ? 8 : 6);
        const __m512 d = _mm512_set1_ps(_cvtsh_ss(dh));
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
        __m512i lo = _mm512_cvtepu8_epi32(_mm_and_si128(raw, _mm_set1_epi8(0x0f)));
        __m512i hi = _mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0f)));
        lo = _mm512_mask_or_epi32(lo, static_cast<__mmask16>(qh & 0xffff), lo, sixteen);
        hi = _mm512_mask_or_epi32(hi, static_cast<__mmask16>(qh >> 16), hi, sixteen);
        float* y = dst + i * kQuantBlock;
        if (q51) {
          const __m512 m = _mm512_set1_ps(_cvtsh_ss(mh));
          _mm512_storeu_ps(y, _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo), d, m));
          _mm512_storeu_ps(y + 16, _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi), d, m));
        } else {
          _mm512_storeu_ps(y, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(lo, sixteen)), d));
          _mm512_storeu_ps(y + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(hi, sixteen)), d));
        }
      }
      return;
    }
    case DType::kQ4_K:
      dequantize_q45_k<BlockQ4_K, false>(static_cast<const BlockQ4_K*>(src), dst, n / kSuperBlock);
      return;
    case DType::kQ5_K:
      dequantize_q45_k<BlockQ5_K, true>(static_cast<const BlockQ5_K*>(src), dst, n / kSuperBlock);
      return;
    case DType::kQ6_K:
      dequantize_q6_k_fast(static_cast<const BlockQ6_K*>(src), dst, n / kSuperBlock);
      return;
    default:  // f32, i32 and the formats without a vector path here
      dequantize_row(dtype, src, dst, n);
      return;
  }
}

}  // namespace halyard::cpu
