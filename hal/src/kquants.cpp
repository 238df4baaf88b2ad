// The 5-bit and K-quant block formats. The dequantizers are the formats' definitions, written
// from GGUF's layouts (blocks.h) with the same float operations in the same order as ggml's
// reference (scale products first, then one multiply and one subtract per weight), so their
// results are bit-exact; dtype.cpp's build turns off FMA contraction for that reason.
//
// The K-quant quantizers search (kquant_fit.cpp) for the scales, minimums and levels with the
// least squared error under these dequantizers, deterministically, and only pack the result
// here: their RMSE is below llama.cpp's reference quantizers' (no importance matrix) on every
// format (bench/results/2026-12-01-kquant-quantizer-quality.md). The 32-weight formats follow
// ggml's reference rules byte for byte.
#include "kquants.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "halyard/hal/dtype.h"
#include "kquant_fit.h"

namespace halyard::detail {
namespace {

std::uint32_t load_u32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}
void store_u32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

// Q3_K's 6-bit scale s (0..15) from its 12 packed bytes, as stored (0..63; the value is s - 32).
int q3_k_scale(const std::uint8_t* packed, int s) {
  const int low = s < 8 ? packed[s] & 0x0f : packed[s - 8] >> 4;
  const int high = (packed[8 + s % 4] >> (2 * (s / 4))) & 3;
  return low | (high << 4);
}

void set_q3_k_scale(std::uint8_t* packed, int s, int stored) {
  if (s < 8)
    packed[s] = static_cast<std::uint8_t>(packed[s] | (stored & 0x0f));
  else
    packed[s - 8] = static_cast<std::uint8_t>(packed[s - 8] | ((stored & 0x0f) << 4));
  packed[8 + s % 4] = static_cast<std::uint8_t>(packed[8 + s % 4] | ((stored >> 4) << (2 * (s / 4))));
}

void set_k_scale_min(std::uint8_t* packed, int j, int scale, int min) {
  if (j < 4) {
    packed[j] = static_cast<std::uint8_t>(packed[j] | scale);
    packed[j + 4] = static_cast<std::uint8_t>(packed[j + 4] | min);
  } else {
    packed[j + 4] = static_cast<std::uint8_t>((scale & 0x0f) | ((min & 0x0f) << 4));
    packed[j - 4] = static_cast<std::uint8_t>(packed[j - 4] | ((scale >> 4) << 6));
    packed[j] = static_cast<std::uint8_t>(packed[j] | ((min >> 4) << 6));
  }
}

}  // namespace

void k_scale_min(int j, const std::uint8_t* q, int* scale, int* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
    *min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// ---- dequantization: the definitions ----

void dequantize_q5_0(const BlockQ5_0* b, float* y, std::int64_t nblocks) {
  for (std::int64_t i = 0; i < nblocks; ++i, y += kQuantBlock) {
    const float d = f16_to_f32(b[i].d);
    const std::uint32_t qh = load_u32(b[i].qh);
    for (int j = 0; j < kQuantBlock / 2; ++j) {
      const int lo = (b[i].qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (b[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      y[j] = static_cast<float>(lo - 16) * d;
      y[j + kQuantBlock / 2] = static_cast<float>(hi - 16) * d;
    }
  }
}

void dequantize_q5_1(const BlockQ5_1* b, float* y, std::int64_t nblocks) {
  for (std::int64_t i = 0; i < nblocks; ++i, y += kQuantBlock) {
    const float d = f16_to_f32(b[i].d);
    const float m = f16_to_f32(b[i].m);
    const std::uint32_t qh = load_u32(b[i].qh);
    for (int j = 0; j < kQuantBlock / 2; ++j) {
      const int lo = (b[i].qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (b[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      y[j] = static_cast<float>(lo) * d + m;
      y[j + kQuantBlock / 2] = static_cast<float>(hi) * d + m;
    }
  }
}

void dequantize_q2_k(const BlockQ2_K* b, float* y, std::int64_t nblocks) {
  for (std::int64_t i = 0; i < nblocks; ++i) {
    const float d = f16_to_f32(b[i].d);
    const float dmin = f16_to_f32(b[i].dmin);
    int s = 0;
    for (int h = 0; h < 2; ++h) {
      const std::uint8_t* q = b[i].qs + 32 * h;
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half = 0; half < 2; ++half, ++s) {  // two sub-blocks of 16 per 32 bytes
          const float dl = d * static_cast<float>(b[i].scales[s] & 0x0f);
          const float ml = dmin * static_cast<float>(b[i].scales[s] >> 4);
          for (int l = 0; l < 16; ++l)
            *y++ = dl * static_cast<float>((q[16 * half + l] >> shift) & 3) - ml;
        }
      }
    }
  }
}

void dequantize_q3_k(const BlockQ3_K* b, float* y, std::int64_t nblocks) {
  for (std::int64_t i = 0; i < nblocks; ++i) {
    const float d = f16_to_f32(b[i].d);
    int s = 0;
    for (int h = 0; h < 2; ++h) {
      const std::uint8_t* q = b[i].qs + 32 * h;
      for (int j = 0; j < 4; ++j) {
        const std::uint8_t mask = static_cast<std::uint8_t>(1u << (4 * h + j));
        for (int half = 0; half < 2; ++half, ++s) {
          const float dl = d * static_cast<float>(q3_k_scale(b[i].scales, s) - 32);
          for (int l = 16 * half; l < 16 * half + 16; ++l) {
            const int v = ((q[l] >> (2 * j)) & 3) - ((b[i].hmask[l] & mask) ? 0 : 4);
            *y++ = dl * static_cast<float>(v);
          }
        }
      }
    }
  }
}

void dequantize_q4_k(const BlockQ4_K* b, float* y, std::int64_t nblocks) {
  for (std::int64_t i = 0; i < nblocks; ++i) {
    const float d = f16_to_f32(b[i].d);
    const float dmin = f16_to_f32(b[i].dmin);
    for (int c = 0; c < 4; ++c) {
      const std::uint8_t* q = b[i].qs + 32 * c;
      int sc, m;
      k_scale_min(2 * c, b[i].scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
      k_scale_min(2 * c + 1, b[i].scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l)
        *y++ = d1 * static_cast<float>(q[l] & 0x0f) - m1;
      for (int l = 0; l < 32; ++l)
        *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void dequantize_q5_k(const BlockQ5_K* b, float* y, std::int64_t nblocks) {
  for (std::int64_t i = 0; i < nblocks; ++i) {
    const float d = f16_to_f32(b[i].d);
    const float dmin = f16_to_f32(b[i].dmin);
    for (int c = 0; c < 4; ++c) {
      const std::uint8_t* q = b[i].qs + 32 * c;
      const std::uint8_t lo_bit = static_cast<std::uint8_t>(1u << (2 * c)),
                         hi_bit = static_cast<std::uint8_t>(lo_bit << 1);
      int sc, m;
      k_scale_min(2 * c, b[i].scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
      k_scale_min(2 * c + 1, b[i].scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l)
        *y++ = d1 * static_cast<float>((q[l] & 0x0f) + ((b[i].qh[l] & lo_bit) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l)
        *y++ = d2 * static_cast<float>((q[l] >> 4) + ((b[i].qh[l] & hi_bit) ? 16 : 0)) - m2;
    }
  }
}

void dequantize_q6_k(const BlockQ6_K* b, float* y, std::int64_t nblocks) {
  for (std::int64_t i = 0; i < nblocks; ++i) {
    const float d = f16_to_f32(b[i].d);
    for (int h = 0; h < 2; ++h, y += 128) {
      const std::uint8_t* ql = b[i].ql + 64 * h;
      const std::uint8_t* qh = b[i].qh + 32 * h;
      const std::int8_t* sc = b[i].scales + 8 * h;
      for (int l = 0; l < 32; ++l) {
        const int s = l / 16;
        const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[s]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[s + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[s + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[s + 6]) * static_cast<float>(q4);
      }
    }
  }
}

// ---- quantization ----

float signed_absmax(const float* x, int n) {
  float amax = 0.f, max = 0.f;
  for (int j = 0; j < n; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

// ggml's reference rules for the 32-weight formats (quantize_row_q5_0_ref / _q5_1_ref): the
// same bytes as gguf-py's quantizers.
void quantize_q5_0(const float* x, BlockQ5_0* out, std::int64_t nblocks) {
  for (std::int64_t b = 0; b < nblocks; ++b, x += kQuantBlock) {
    const float max = signed_absmax(x, kQuantBlock);
    const float d = max / -16.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    out[b].d = f32_to_f16(d);
    std::uint32_t qh = 0;
    for (int j = 0; j < kQuantBlock / 2; ++j) {
      const int q0 = std::min(31, static_cast<int>(x[j] * id + 16.5f));
      const int q1 = std::min(31, static_cast<int>(x[j + kQuantBlock / 2] * id + 16.5f));
      out[b].qs[j] = static_cast<std::uint8_t>((q0 & 0x0f) | ((q1 & 0x0f) << 4));
      qh |= static_cast<std::uint32_t>(q0 >> 4) << j;
      qh |= static_cast<std::uint32_t>(q1 >> 4) << (j + 16);
    }
    store_u32(out[b].qh, qh);
  }
}

void quantize_q5_1(const float* x, BlockQ5_1* out, std::int64_t nblocks) {
  for (std::int64_t b = 0; b < nblocks; ++b, x += kQuantBlock) {
    float lo = x[0], hi = x[0];
    for (int j = 1; j < kQuantBlock; ++j) {
      lo = std::min(lo, x[j]);
      hi = std::max(hi, x[j]);
    }
    const float d = (hi - lo) / 31.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    out[b].d = f32_to_f16(d);
    out[b].m = f32_to_f16(lo);
    std::uint32_t qh = 0;
    for (int j = 0; j < kQuantBlock / 2; ++j) {
      const int q0 = std::min(31, static_cast<int>((x[j] - lo) * id + 0.5f));
      const int q1 = std::min(31, static_cast<int>((x[j + kQuantBlock / 2] - lo) * id + 0.5f));
      out[b].qs[j] = static_cast<std::uint8_t>((q0 & 0x0f) | ((q1 & 0x0f) << 4));
      qh |= static_cast<std::uint32_t>(q0 >> 4) << j;
      qh |= static_cast<std::uint32_t>(q1 >> 4) << (j + 16);
    }
    store_u32(out[b].qh, qh);
  }
}

void quantize_q2_k(const float* x, BlockQ2_K* out, std::int64_t nblocks) {
  for (std::int64_t b = 0; b < nblocks; ++b, x += kSuperBlock) {
    BlockQ2_K& o = out[b];
    std::memset(&o, 0, sizeof o);
    SuperBlockFit fit;
    fit_asymmetric(x, 16, 16, 3, 15, &fit);
    o.d = fit.d;
    o.dmin = fit.dmin;
    for (int e = 0; e < kSuperBlock; ++e) {
      const int h = e / 128, j = (e % 128) / 32, l = e % 32;
      o.qs[32 * h + l] = static_cast<std::uint8_t>(o.qs[32 * h + l] | (fit.q[e] << (2 * j)));
    }
    for (int s = 0; s < 16; ++s)
      o.scales[s] = static_cast<std::uint8_t>(fit.sc[s] | (fit.mn[s] << 4));
  }
}

void quantize_q3_k(const float* x, BlockQ3_K* out, std::int64_t nblocks) {
  for (std::int64_t b = 0; b < nblocks; ++b, x += kSuperBlock) {
    BlockQ3_K& o = out[b];
    std::memset(&o, 0, sizeof o);
    SuperBlockFit fit;
    fit_symmetric(x, 4, 32, &fit);
    o.d = fit.d;
    for (int e = 0; e < kSuperBlock; ++e) {
      const int u = fit.q[e] + 4, h = e / 128, j = (e % 128) / 32, l = e % 32;
      o.qs[32 * h + l] = static_cast<std::uint8_t>(o.qs[32 * h + l] | ((u & 3) << (2 * j)));
      if (u & 4)
        o.hmask[l] = static_cast<std::uint8_t>(o.hmask[l] | (1u << (4 * h + j)));
    }
    for (int s = 0; s < 16; ++s)
      set_q3_k_scale(o.scales, s, fit.sc[s] + 32);
  }
}

void quantize_q4_k(const float* x, BlockQ4_K* out, std::int64_t nblocks) {
  for (std::int64_t b = 0; b < nblocks; ++b, x += kSuperBlock) {
    BlockQ4_K& o = out[b];
    std::memset(&o, 0, sizeof o);
    SuperBlockFit fit;
    fit_asymmetric(x, 8, 32, 15, 63, &fit);
    o.d = fit.d;
    o.dmin = fit.dmin;
    for (int e = 0; e < kSuperBlock; ++e) {
      const int c = e / 64, r = e % 64;
      o.qs[32 * c + r % 32] = static_cast<std::uint8_t>(o.qs[32 * c + r % 32] | (fit.q[e] << (r >= 32 ? 4 : 0)));
    }
    for (int s = 0; s < 8; ++s)
      set_k_scale_min(o.scales, s, fit.sc[s], fit.mn[s]);
  }
}

void quantize_q5_k(const float* x, BlockQ5_K* out, std::int64_t nblocks) {
  for (std::int64_t b = 0; b < nblocks; ++b, x += kSuperBlock) {
    BlockQ5_K& o = out[b];
    std::memset(&o, 0, sizeof o);
    SuperBlockFit fit;
    fit_asymmetric(x, 8, 32, 31, 63, &fit);
    o.d = fit.d;
    o.dmin = fit.dmin;
    for (int e = 0; e < kSuperBlock; ++e) {
      const int q = fit.q[e], c = e / 64, r = e % 64, l = r % 32;
      o.qs[32 * c + l] = static_cast<std::uint8_t>(o.qs[32 * c + l] | ((q & 0x0f) << (r >= 32 ? 4 : 0)));
      if (q & 16)
        o.qh[l] = static_cast<std::uint8_t>(o.qh[l] | (1u << (2 * c + (r >= 32 ? 1 : 0))));
    }
    for (int s = 0; s < 8; ++s)
      set_k_scale_min(o.scales, s, fit.sc[s], fit.mn[s]);
  }
}

void quantize_q6_k(const float* x, BlockQ6_K* out, std::int64_t nblocks) {
  for (std::int64_t b = 0; b < nblocks; ++b, x += kSuperBlock) {
    BlockQ6_K& o = out[b];
    std::memset(&o, 0, sizeof o);
    SuperBlockFit fit;
    fit_symmetric(x, 32, 128, &fit);
    o.d = fit.d;
    for (int e = 0; e < kSuperBlock; ++e) {
      const int u = fit.q[e] + 32, h = e / 128, i = (e % 128) / 32, l = e % 32;
      std::uint8_t& low = o.ql[64 * h + l + 32 * (i & 1)];
      low = static_cast<std::uint8_t>(low | ((u & 0x0f) << (i >= 2 ? 4 : 0)));
      o.qh[32 * h + l] = static_cast<std::uint8_t>(o.qh[32 * h + l] | ((u >> 4) << (2 * i)));
    }
    for (int s = 0; s < 16; ++s)
      o.scales[s] = static_cast<std::int8_t>(fit.sc[s]);
  }
}

}  // namespace halyard::detail
