// NEON kernels for AArch64 with the dot-product extension (ARMv8.2-A +dotprod), compiled with
// -march=armv8.2-a+dotprod and chosen at run time from HWCAP. Same layouts and arithmetic as the
// x86 kernels: sdot gives one int32 per 4 products, which meets its activation group's scale.
#include <arm_neon.h>

#include <cstring>

#include "kernels.h"
#include "kernels_common.h"
#include "kquant_scales.h"
#include "kquants.h"

namespace halyard::cpu {
namespace {

inline float half(std::uint16_t h) {
  return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

void quantize_activations(const float* x, ActBlock* out, int n_blocks) {
  for (int b = 0; b < n_blocks; ++b, x += kQuantBlock) {
    float sum = 0.f;
    for (int g = 0; g < kQuantBlock / kActGroup; ++g) {
      const float32x4_t v = vld1q_f32(x + g * kActGroup);
      const float amax = vmaxvq_f32(vabsq_f32(v));
      const float d = amax / 127.f;
      const float id = amax > 0.f ? 127.f / amax : 0.f;
      const int32x4_t q = vcvtnq_s32_f32(vmulq_n_f32(v, id));
      const int16x4_t q16 = vqmovn_s32(q);
      const int8x8_t q8 = vqmovn_s16(vcombine_s16(q16, q16));
      std::memcpy(out[b].qs + g * kActGroup, &q8, kActGroup);
      out[b].d[g] = d;
      sum += d * static_cast<float>(vaddvq_s32(q));
    }
    out[b].sum = sum;
  }
}

// sdot over one block: two int32x4 (groups 0-3, 4-7), scaled per group and by dw.
inline float32x4_t block(int8x16_t w0, int8x16_t w1, const ActBlock& x, float dw, float32x4_t acc) {
  const int32x4_t p0 = vdotq_s32(vdupq_n_s32(0), w0, vld1q_s8(x.qs));
  const int32x4_t p1 = vdotq_s32(vdupq_n_s32(0), w1, vld1q_s8(x.qs + 16));
  acc = vfmaq_f32(acc, vcvtq_f32_s32(p0), vmulq_n_f32(vld1q_f32(x.d), dw));
  return vfmaq_f32(acc, vcvtq_f32_s32(p1), vmulq_n_f32(vld1q_f32(x.d + 4), dw));
}

float dot_q8_0(const BlockQ8_0* w, const ActBlock* x, int n_blocks) {
  float32x4_t acc = vdupq_n_f32(0.f);
  for (int b = 0; b < n_blocks; ++b)
    acc = block(vld1q_s8(w[b].qs), vld1q_s8(w[b].qs + 16), x[b], half(w[b].d), acc);
  return vaddvq_f32(acc);
}

inline void nibbles(const std::uint8_t* qs, int8x16_t* lo, int8x16_t* hi) {
  const uint8x16_t raw = vld1q_u8(qs);
  *lo = vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0f)));
  *hi = vreinterpretq_s8_u8(vshrq_n_u8(raw, 4));
}

float dot_q4_0(const BlockQ4_0* w, const ActBlock* x, int n_blocks) {
  float32x4_t acc = vdupq_n_f32(0.f);
  float offset = 0.f;
  for (int b = 0; b < n_blocks; ++b) {
    int8x16_t lo, hi;
    nibbles(w[b].qs, &lo, &hi);
    const float dw = half(w[b].d);
    acc = block(lo, hi, x[b], dw, acc);
    offset += dw * x[b].sum;
  }
  return vaddvq_f32(acc) - 8.f * offset;
}

// IQ4_NL / IQ4_XS: 32 codes to their int8 levels with one table lookup per 16 (TBL).
inline void iq4_levels(const std::uint8_t* qs, int8x16_t* lo, int8x16_t* hi) {
  const int8x16_t table = vld1q_s8(kIQ4Levels);
  const uint8x16_t raw = vld1q_u8(qs);
  *lo = vqtbl1q_s8(table, vandq_u8(raw, vdupq_n_u8(0x0f)));
  *hi = vqtbl1q_s8(table, vshrq_n_u8(raw, 4));
}

float dot_iq4_nl(const BlockIQ4_NL* w, const ActBlock* x, int n_blocks) {
  float32x4_t acc = vdupq_n_f32(0.f);
  for (int b = 0; b < n_blocks; ++b) {
    int8x16_t lo, hi;
    iq4_levels(w[b].qs, &lo, &hi);
    acc = block(lo, hi, x[b], half(w[b].d), acc);
  }
  return vaddvq_f32(acc);
}

float dot_iq4_xs(const BlockIQ4_XS* w, const ActBlock* x, int n_blocks) {
  float32x4_t acc = vdupq_n_f32(0.f);
  for (int s = 0; s < n_blocks / kActPerSuper; ++s) {
    const float d = half(w[s].d);
    for (int j = 0; j < kActPerSuper; ++j) {
      const int code = ((w[s].scales_l[j / 2] >> (4 * (j % 2))) & 15) | (((w[s].scales_h >> (2 * j)) & 3) << 4);
      int8x16_t lo, hi;
      iq4_levels(w[s].qs + 16 * j, &lo, &hi);
      acc = block(lo, hi, x[s * kActPerSuper + j], d * static_cast<float>(code - 32), acc);
    }
  }
  return vaddvq_f32(acc);
}

float dot_q4_1(const BlockQ4_1* w, const ActBlock* x, int n_blocks) {
  float32x4_t acc = vdupq_n_f32(0.f);
  float offset = 0.f;
  for (int b = 0; b < n_blocks; ++b) {
    int8x16_t lo, hi;
    nibbles(w[b].qs, &lo, &hi);
    acc = block(lo, hi, x[b], half(w[b].d), acc);
    offset += half(w[b].m) * x[b].sum;
  }
  return vaddvq_f32(acc) + offset;
}

#include "kquants_neon.inc"

float dot_f32(const float* w, const float* x, int n) {
  float32x4_t a0 = vdupq_n_f32(0.f), a1 = a0;
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    a0 = vfmaq_f32(a0, vld1q_f32(w + i), vld1q_f32(x + i));
    a1 = vfmaq_f32(a1, vld1q_f32(w + i + 4), vld1q_f32(x + i + 4));
  }
  float acc = vaddvq_f32(vaddq_f32(a0, a1));
  for (; i < n; ++i)
    acc += w[i] * x[i];
  return acc;
}

float dot_f16(const std::uint16_t* w, const float* x, int n) {
  float32x4_t a0 = vdupq_n_f32(0.f);
  int i = 0;
  for (; i + 4 <= n; i += 4)
    a0 = vfmaq_f32(a0, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(w + i))), vld1q_f32(x + i));
  float acc = vaddvq_f32(a0);
  for (; i < n; ++i)
    acc += half(w[i]) * x[i];
  return acc;
}

float dot_bf16(const std::uint16_t* w, const float* x, int n) {
  float32x4_t a0 = vdupq_n_f32(0.f);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t wf = vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(w + i), 16));
    a0 = vfmaq_f32(a0, wf, vld1q_f32(x + i));
  }
  float acc = vaddvq_f32(a0);
  for (; i < n; ++i) {
    const std::uint32_t bits = static_cast<std::uint32_t>(w[i]) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    acc += f * x[i];
  }
  return acc;
}

void widen_f16(const std::uint16_t* src, float* dst, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4)
    vst1q_f32(dst + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(src + i))));
  for (; i < n; ++i)
    dst[i] = half(src[i]);
}

KernelTable make_neon() {
  KernelTable t{"neon-dotprod",
                dot_many_by_dots<dot_f32>,
                weighted_sum_scalar,
                exp_sum_scalar,
                swiglu_scalar,
                geglu_scalar,
                nullptr,
                quantize_activations,
                dot_f32,
                dot_f16,
                dot_bf16,
                widen_f16};
  t.quant = generic_kernels().quant;
  t.set(DType::kQ8_0, dot_kernels<BlockQ8_0, dot_q8_0>());
  t.set(DType::kQ4_0, dot_kernels<BlockQ4_0, dot_q4_0>());
  t.set(DType::kQ4_1, dot_kernels<BlockQ4_1, dot_q4_1>());
  t.set(DType::kQ5_0, dot_kernels<BlockQ5_0, dot_q5_0>());
  t.set(DType::kQ5_1, dot_kernels<BlockQ5_1, dot_q5_1>());
  t.set(DType::kQ2_K, dot_kernels<BlockQ2_K, dot_q2_k>());
  t.set(DType::kQ3_K, dot_kernels<BlockQ3_K, dot_q3_k>());
  t.set(DType::kQ4_K, dot_kernels<BlockQ4_K, dot_q4_k>());
  t.set(DType::kQ5_K, dot_kernels<BlockQ5_K, dot_q5_k>());
  t.set(DType::kQ6_K, dot_kernels<BlockQ6_K, dot_q6_k>());
  t.set(DType::kIQ4_NL, dot_kernels<BlockIQ4_NL, dot_iq4_nl>());
  t.set(DType::kIQ4_XS, dot_kernels<BlockIQ4_XS, dot_iq4_xs>());
  return t;
}

}  // namespace

const KernelTable* neon_kernels() {
  static const KernelTable table = make_neon();
  return &table;
}

}  // namespace halyard::cpu
