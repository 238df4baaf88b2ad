// The CUDA/HIP kernels' per-element arithmetic (kernels/cuda/op_math.h) on the host, against the
// reference's formulas (cpu-reference/src/ops.cpp): RoPE's angle with frequency factors, the
// sliding window's first key, GEGLU's gelu, the norm-group geometry. A wrong bound or order of
// operations shows here without a GPU; the conformance suite checks the kernels on a device.
#include "op_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace halyard {
namespace {

using op_math::gelu_tanh;
using op_math::norm_runs;
using op_math::rope_angle;
using op_math::window_first;

TEST(GpuOpMath, RopeAngleIsTheReferencesWithAndWithoutFactors) {
  const std::vector<float> factors = {1.f, 2.f, 8.f, 0.25f, 3.5f, 1.f, 7.9f, 64.f};
  for (double base : {10000.0, 500000.0}) {
    for (int dims : {16, 12}) {
      for (std::int32_t pos : {0, 1, 17, 4095, 131071}) {
        for (int i = 0; i < dims / 2; ++i) {
          // The reference's expression, operation for operation.
          double want = pos * std::pow(base, -2.0 * i / dims);
          EXPECT_EQ(rope_angle(pos, base, i, dims, nullptr), want) << pos << " " << i;
          want /= static_cast<double>(factors[static_cast<std::size_t>(i)]);
          EXPECT_EQ(rope_angle(pos, base, i, dims, factors.data()), want) << pos << " " << i;
        }
      }
    }
  }
  // By hand: pair 0 turns by pos radians, divided by its factor; pair 1 of 4 dims by
  // pos / sqrt(base).
  EXPECT_EQ(rope_angle(10, 10000.0, 0, 4, factors.data() + 2), 10.0 / 8.0);
  EXPECT_DOUBLE_EQ(rope_angle(10, 10000.0, 1, 4, nullptr), 0.1);
}

TEST(GpuOpMath, WindowFirstIsTheFirstPositionInsideTheWindow) {
  EXPECT_EQ(window_first(40, 0), 0);  // no window
  EXPECT_EQ(window_first(40, 4), 37);
  EXPECT_EQ(window_first(3, 4), 0);  // the sequence is shorter than the window
  EXPECT_EQ(window_first(4, 4), 1);
  EXPECT_EQ(window_first(4, 5), 0);  // exactly as long as the window
  EXPECT_EQ(window_first(9, 1), 9);  // a token sees only itself
  // Against the definition (ops.h): j is attended iff p - w < j <= p.
  for (int w = 0; w <= 40; ++w) {
    for (int p = 0; p < 100; ++p) {
      int first = p + 1;
      for (int j = 0; j <= p; ++j) {
        if (w == 0 || p - w < j) {
          first = j;
          break;
        }
      }
      EXPECT_EQ(window_first(p, w), first) << "p " << p << " w " << w;
    }
  }
}

TEST(GpuOpMath, GeluIsTheTanhFormEverywhere) {
  constexpr double kSqrt2OverPi = 0.79788456080286535588;
  auto reference = [&](double g) { return 0.5 * g * (1.0 + std::tanh(kSqrt2OverPi * (g + 0.044715 * g * g * g))); };
  for (float x = -12.f; x <= 12.f; x += 0.01f) {
    const double want = reference(x);
    EXPECT_NEAR(gelu_tanh(x), want, 2e-6 * std::max(1.0, std::fabs(want))) << x;
  }
  EXPECT_EQ(gelu_tanh(0.f), 0.f);
  // Large inputs: gelu(x) -> x and gelu(-x) -> 0, never NaN (the clamp keeps tanh off inf).
  for (float x : {20.f, 1e4f, 1e13f, std::numeric_limits<float>::max()}) {
    EXPECT_EQ(gelu_tanh(x), x) << x;
    EXPECT_EQ(gelu_tanh(-x), 0.f) << x;
  }
}

TEST(GpuOpMath, NormRunsAreRowsOrGroups) {
  EXPECT_EQ(norm_runs(576, 7, 0).length, 576);
  EXPECT_EQ(norm_runs(576, 7, 0).count, 7);
  EXPECT_EQ(norm_runs(2048, 512, 128).length, 128);  // 16 heads of 128 per token
  EXPECT_EQ(norm_runs(2048, 512, 128).count, 512 * 16);
  EXPECT_EQ(norm_runs(256, 1, 256).count, 1);
}

}  // namespace
}  // namespace halyard
