#include "halyard/hal/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "halyard/hal/blocks.h"

namespace halyard {
namespace {

TEST(DType, InfoMatchesGgufLayouts) {
  EXPECT_EQ(dtype_info(DType::kQ8_0).block_bytes, 34u);
  EXPECT_EQ(dtype_info(DType::kQ4_0).block_bytes, 18u);
  EXPECT_EQ(dtype_info(DType::kQ4_1).block_bytes, 20u);
  EXPECT_EQ(row_bytes(DType::kQ4_1, 576), 18u * 20u);
  EXPECT_EQ(row_bytes(DType::kF16, 10), 20u);
  EXPECT_FALSE(dtype_info(99u).has_value());
  EXPECT_EQ(dtype_info(8u)->dtype, DType::kQ8_0);
  EXPECT_EQ(dtype_from_name("bf16"), DType::kBF16);
}

TEST(DType, F16KnownValues) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(0.1f), 0x2e66);
  EXPECT_EQ(f32_to_f16(65504.f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.f), 0x7c00);                          // rounds to infinity
  EXPECT_EQ(f32_to_f16(std::ldexp(1.f, -24)), 0x0001);             // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.f, -26)), 0x0000);             // below half of it: zero
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.f, -11)), 0x3c00);      // tie to even (down)
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.f, -11)), 0x3c02);  // tie to even (up)
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(NAN))));
  EXPECT_EQ(f16_to_f32(0x3555), 0.333251953125f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.f, -24));
}

TEST(DType, F16RoundTripsEveryValue) {
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const auto bits = static_cast<std::uint16_t>(h);
    const bool nan = (bits & 0x7c00) == 0x7c00 && (bits & 0x3ff);
    if (nan)
      continue;
    ASSERT_EQ(f32_to_f16(f16_to_f32(bits)), bits) << std::hex << h;
  }
}

TEST(DType, BF16RoundsToNearestEven) {
  auto from_bits = [](std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  };
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f808000)), 0x3f80);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f818000)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f808001)), 0x3f81);
  EXPECT_EQ(bf16_to_f32(0xc040), -3.0f);
}

TEST(DType, DequantizeQ8_0HandComputed) {
  BlockQ8_0 b{};
  b.d = f32_to_f16(0.5f);
  for (int j = 0; j < 32; ++j)
    b.qs[j] = static_cast<std::int8_t>(j - 16);
  float out[32];
  dequantize_row(DType::kQ8_0, &b, out, 32);
  for (int j = 0; j < 32; ++j)
    EXPECT_EQ(out[j], (j - 16) * 0.5f) << j;
}

TEST(DType, DequantizeQ4_0HandComputed) {
  BlockQ4_0 b{};
  b.d = f32_to_f16(2.0f);
  for (int j = 0; j < 16; ++j)
    b.qs[j] = static_cast<std::uint8_t>(j | ((15 - j) << 4));
  float out[32];
  dequantize_row(DType::kQ4_0, &b, out, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], (j - 8) * 2.0f) << j;            // low nibbles: weights 0..15
    EXPECT_EQ(out[16 + j], (15 - j - 8) * 2.0f) << j;  // high nibbles: weights 16..31
  }
}

TEST(DType, DequantizeQ4_1HandComputed) {
  BlockQ4_1 b{};
  b.d = f32_to_f16(0.25f);
  b.m = f32_to_f16(-1.0f);
  for (int j = 0; j < 16; ++j)
    b.qs[j] = static_cast<std::uint8_t>(j | (3 << 4));
  float out[32];
  dequantize_row(DType::kQ4_1, &b, out, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], j * 0.25f - 1.0f) << j;
    EXPECT_EQ(out[16 + j], 3 * 0.25f - 1.0f) << j;
  }
}

struct RoundTrip {
  DType dtype;
  double max_error_per_range;  // bound on |x - deq(q(x))| relative to the block's value range
};

class QuantRoundTrip : public ::testing::TestWithParam<RoundTrip> {};

TEST_P(QuantRoundTrip, ErrorWithinFormatBound) {
  const auto [dtype, bound] = GetParam();
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> dist(-3.f, 3.f);
  const int n = 32 * 64;
  std::vector<float> x(n), y(n);
  for (auto& v : x)
    v = dist(rng);
  std::vector<std::uint8_t> q(row_bytes(dtype, n));
  quantize_row(dtype, x.data(), q.data(), n);
  dequantize_row(dtype, q.data(), y.data(), n);
  for (int b = 0; b < n / 32; ++b) {
    float lo = x[b * 32], hi = lo;
    for (int j = 0; j < 32; ++j) {
      lo = std::min(lo, x[b * 32 + j]);
      hi = std::max(hi, x[b * 32 + j]);
    }
    const double range = std::max(std::fabs(lo), std::fabs(hi)) * 2;
    for (int j = 0; j < 32; ++j) {
      ASSERT_LE(std::fabs(x[b * 32 + j] - y[b * 32 + j]), bound * range) << dtype_name(dtype) << " block " << b;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllWeightTypes, QuantRoundTrip,
                         ::testing::Values(RoundTrip{DType::kF32, 0.0}, RoundTrip{DType::kF16, 1.0 / 2048},
                                           RoundTrip{DType::kBF16, 1.0 / 256},
                                           // half a step of 2*amax/254, plus the f16 scale's rounding
                                           RoundTrip{DType::kQ8_0, 0.5 / 127 + 1e-3},
                                           // Q4_0: step amax/8 over a range of 2*amax
                                           RoundTrip{DType::kQ4_0, 1.0 / 16 + 1e-3},
                                           // Q4_1: half a step of (max-min)/15
                                           RoundTrip{DType::kQ4_1, 0.5 / 15 + 2e-3}),
                         [](const auto& info) { return std::string(dtype_name(info.param.dtype)); });

}  // namespace
}  // namespace halyard
