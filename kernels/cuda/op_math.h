// The per-element arithmetic of the CUDA/HIP kernels (ops.cu) that has a definition to match and
// no GPU to check it on here: RoPE's angle with frequency factors, the sliding window's first
// key, the tanh form of GELU, the norm-group geometry. Plain C++ with the qualifiers in a macro
// (as weight_decode.h), so the host compiler builds it too and tests/unit/gpu/op_math_test.cpp
// checks it against the reference's formulas (cpu-reference/src/ops.cpp) with no GPU. Pure
// functions.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__) || defined(__HIP__)
#define HALYARD_OP_MATH_HD __host__ __device__
#else
#define HALYARD_OP_MATH_HD
#endif

namespace halyard::op_math {

// ROPE: the angle pair i of `dims` rotated dims turns by at `pos`, in double as the reference
// computes it: pos * base^(-2i / dims), divided by factors[i] when there are frequency factors
// (ROPE's third input, Llama 3.1's rope_freqs; nullptr: all 1).
HALYARD_OP_MATH_HD inline double rope_angle(std::int32_t pos, double base, int i, int dims, const float* factors) {
  double theta = static_cast<double>(pos) * pow(base, -2.0 * i / dims);
  if (factors)
    theta /= static_cast<double>(factors[i]);
  return theta;
}

// ATTENTION with a sliding window w (0: none): the first logical position a token at `pos`
// attends to, max(0, pos - w + 1); the walk over keys starts there, so keys before it are never
// read.
HALYARD_OP_MATH_HD inline int window_first(int pos, int window) {
  if (window <= 0 || pos + 1 <= window)
    return 0;
  return pos + 1 - window;
}

// GEGLU's gelu: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) in f32. tanh's argument is
// clamped to [-10, 10], where tanh is +-1 in f32, so that no implementation that forms tanh
// through exp(2u) meets inf / inf.
HALYARD_OP_MATH_HD inline float gelu_tanh(float x) {
  float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
  u = u < -10.f ? -10.f : (u > 10.f ? 10.f : u);
  return 0.5f * x * (1.f + tanhf(u));
}

// RMS_NORM: the run of elements one block normalizes (the row, or a norm group: one head of it)
// and how many such runs a [d, tokens] tensor holds.
struct NormRuns {
  std::int64_t length, count;
};
HALYARD_OP_MATH_HD inline NormRuns norm_runs(std::int64_t d, std::int64_t tokens, int norm_group) {
  const std::int64_t len = norm_group > 0 ? norm_group : d;
  return NormRuns{len, tokens * (d / len)};
}

}  // namespace halyard::op_math
