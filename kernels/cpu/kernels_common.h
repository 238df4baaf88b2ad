// Kernel-table entries that the portable and the NEON tables build from their own dot products.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "halyard/hal/dtype.h"
#include "kernels.h"

namespace halyard::cpu {

// Attention scores as one dot product per key.
template <float (*DotF32)(const float*, const float*, int)>
void dot_many_by_dots(const float* q, const float* k, int stride, int len, int hd, float* scores) {
  for (int j = 0; j < len; ++j)
    scores[j] = DotF32(q, k + static_cast<std::ptrdiff_t>(j) * stride, hd);
}

inline void weighted_sum_scalar(const float* weights, const float* v, int stride, int len, int hd, float* out) {
  for (int i = 0; i < hd; ++i)
    out[i] = 0.f;
  for (int j = 0; j < len; ++j) {
    const float* vj = v + static_cast<std::ptrdiff_t>(j) * stride;
    for (int i = 0; i < hd; ++i)
      out[i] += weights[j] * vj[i];
  }
}

inline void swiglu_scalar(const float* g, const float* u, float* out, int n) {
  for (int i = 0; i < n; ++i)
    out[i] = g[i] / (1.f + std::exp(-g[i])) * u[i];
}

// The argument of GEGLU's sigmoid: 2 sqrt(2/pi) (g + 0.044715 g^3) (kernels.h).
inline float geglu_sigmoid_arg(float g) {
  constexpr float kTwoSqrt2OverPi = 1.5957691216057308f;
  return kTwoSqrt2OverPi * (g + 0.044715f * g * g * g);
}

inline void geglu_scalar(const float* g, const float* u, float* out, int n) {
  for (int i = 0; i < n; ++i)
    out[i] = g[i] / (1.f + std::exp(-geglu_sigmoid_arg(g[i]))) * u[i];
}

inline void widen_f16_scalar(const std::uint16_t* src, float* dst, int n) {
  for (int i = 0; i < n; ++i)
    dst[i] = f16_to_f32(src[i]);
}

inline float exp_sum_scalar(float* s, int n, float max) {
  float sum = 0.f;
  for (int j = 0; j < n; ++j) {
    s[j] = std::exp(s[j] - max);
    sum += s[j];
  }
  return sum;
}

}  // namespace halyard::cpu
