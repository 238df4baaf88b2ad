#include "halyard/hal/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
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

// Quantization checked against blocks worked out by hand from the GGUF reference rules (the
// arithmetic is in the comments), not against hal/src/dtype.cpp itself, which the reference and
// every backend share. Scales are chosen to be exact in f16 so every expected value is exact.
TEST(DType, QuantizeQ8_0HandComputed) {
  // amax = 63.5, d = amax / 127 = 0.5 (f16 0x3800), 1/d = 2: q = round(x * 2), halves away from 0.
  float x[32] = {};
  x[0] = 63.5f;    // 127
  x[1] = -63.5f;   // -127
  x[2] = 1.3f;     // 2.6 -> 3 (truncation gives 2)
  x[3] = -1.3f;    // -2.6 -> -3
  x[4] = 1.2f;     // 2.4 -> 2
  x[5] = 0.75f;    // 1.5 -> 2 (a half rounds away from zero, as roundf)
  x[6] = -0.75f;   // -1.5 -> -2
  x[7] = 0.2f;     // 0.4 -> 0
  x[31] = 10.26f;  // 20.52 -> 21
  BlockQ8_0 b{};
  quantize_row(DType::kQ8_0, x, &b, 32);
  EXPECT_EQ(b.d, 0x3800);
  const std::int8_t expected[32] = {127, -127, 3, -3, 2, 2, -2, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                    0,   0,    0, 0,  0, 0, 0,  0, 0, 0, 0, 0, 0, 0, 0, 21};
  for (int j = 0; j < 32; ++j)
    EXPECT_EQ(b.qs[j], expected[j]) << j;
}

TEST(DType, QuantizeQ4_0HandComputed) {
  // The value of largest magnitude is -16, so d = -16 / -8 = 2 (f16 0x4000) and 1/d = 0.5;
  // q = min(15, int(x * 0.5 + 8.5)), i.e. x / 2 rounded half up, offset by 8.
  float x[32] = {};
  x[0] = -16.f;   // -8 + 8.5 = 0.5 -> 0
  x[1] = 3.1f;    // 1.55 + 8.5 = 10.05 -> 10 (truncation of x * 0.5 + 8 gives 9)
  x[2] = 2.9f;    // 1.45 + 8.5 = 9.95 -> 9
  x[3] = 3.f;     // 1.5 + 8.5 = 10 -> 10 (a half rounds up)
  x[4] = -3.f;    // -1.5 + 8.5 = 7 -> 7 (a half rounds up, towards +inf)
  x[5] = 15.f;    // 7.5 + 8.5 = 16 -> clamped to 15
  x[16] = 5.1f;   // 2.55 + 8.5 = 11.05 -> 11 (high nibble of byte 0)
  x[17] = -4.9f;  // -2.45 + 8.5 = 6.05 -> 6
  // every other x is 0: 8.5 -> 8
  BlockQ4_0 b{};
  quantize_row(DType::kQ4_0, x, &b, 32);
  EXPECT_EQ(b.d, 0x4000);
  std::uint8_t expected[16];
  for (auto& e : expected)
    e = 8 | (8 << 4);
  expected[0] = 0 | (11 << 4);
  expected[1] = 10 | (6 << 4);
  expected[2] = 9 | (8 << 4);
  expected[3] = 10 | (8 << 4);
  expected[4] = 7 | (8 << 4);
  expected[5] = 15 | (8 << 4);
  for (int j = 0; j < 16; ++j)
    EXPECT_EQ(b.qs[j], expected[j]) << j;
}

TEST(DType, QuantizeQ4_1HandComputed) {
  // min = -1, max = 14: d = 15 / 15 = 1 (f16 0x3c00), m = -1 (f16 0xbc00);
  // q = min(15, int((x + 1) * 1 + 0.5)), i.e. x + 1 rounded half up.
  float x[32];
  for (auto& v : x)
    v = 0.f;      // 1.5 -> 1
  x[0] = -1.f;    // 0.5 -> 0
  x[1] = 14.f;    // 15.5 -> 15
  x[2] = 2.4f;    // 3.9 -> 3
  x[3] = 2.6f;    // 4.1 -> 4 (truncation of x + 1 gives 3)
  x[20] = 6.5f;   // 8 -> 8 (high nibble of byte 4)
  x[21] = 9.45f;  // 10.95 -> 10
  BlockQ4_1 b{};
  quantize_row(DType::kQ4_1, x, &b, 32);
  EXPECT_EQ(b.d, 0x3c00);
  EXPECT_EQ(b.m, 0xbc00);
  std::uint8_t expected[16];
  for (auto& e : expected)
    e = 1 | (1 << 4);
  expected[0] = 0 | (1 << 4);
  expected[1] = 15 | (1 << 4);
  expected[2] = 3 | (1 << 4);
  expected[3] = 4 | (1 << 4);
  expected[4] = 1 | (8 << 4);
  expected[5] = 1 | (10 << 4);
  for (int j = 0; j < 16; ++j)
    EXPECT_EQ(b.qs[j], expected[j]) << j;
}

// Against another implementation: bytes the ggml project's Python writer (the `gguf` package)
// made of 64 blocks that include ties, an all-zero block, a tiny one and outliers
// (tests/data/gguf_py_quants/README.md says how they were made).
std::vector<std::uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), {});
}

class QuantizeLikeGgufPy : public ::testing::TestWithParam<DType> {};

TEST_P(QuantizeLikeGgufPy, SameBytes) {
  const DType dtype = GetParam();
  const std::string dir = std::string(HALYARD_TEST_DATA_DIR) + "/gguf_py_quants/";
  const std::vector<std::uint8_t> raw = read_file(dir + "input.f32");
  const std::vector<std::uint8_t> want = read_file(dir + std::string(dtype_name(dtype)) + ".bin");
  ASSERT_EQ(raw.size(), 64u * 32u * 4u) << dir;
  const std::int64_t n = static_cast<std::int64_t>(raw.size() / 4);
  ASSERT_EQ(want.size(), row_bytes(dtype, n));
  std::vector<float> x(static_cast<std::size_t>(n));
  std::memcpy(x.data(), raw.data(), raw.size());
  std::vector<std::uint8_t> got(want.size());
  quantize_row(dtype, x.data(), got.data(), n);
  const std::size_t block = dtype_info(dtype).block_bytes;
  for (std::size_t b = 0; b < got.size() / block; ++b) {
    EXPECT_TRUE(std::equal(got.begin() + static_cast<std::ptrdiff_t>(b * block),
                           got.begin() + static_cast<std::ptrdiff_t>((b + 1) * block),
                           want.begin() + static_cast<std::ptrdiff_t>(b * block)))
        << dtype_name(dtype) << " block " << b << " differs from gguf-py's";
  }
}

INSTANTIATE_TEST_SUITE_P(BlockTypes, QuantizeLikeGgufPy,
                         ::testing::Values(DType::kQ8_0, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// Round trips of random blocks: every value comes back within half a quantization step (what
// rounding to nearest guarantees), plus the error of storing the scale (and Q4_1's minimum) in
// f16, whose relative rounding error is at most 2^-11. The one exception is Q4_0's clamp: the
// largest-magnitude value maps to -8 exactly, so values of the other sign beyond 7.5 steps are
// clamped to +7 and may be up to one step off; the bound there is their distance to 7 steps.
class QuantRoundTrip : public ::testing::TestWithParam<DType> {};

TEST_P(QuantRoundTrip, ErrorWithinHalfAStep) {
  const DType dtype = GetParam();
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> dist(-3.f, 3.f);
  const int n = 32 * 256;
  std::vector<float> x(n), y(n);
  for (auto& v : x)
    v = dist(rng);
  // Some blocks with one large value (an outlier sets the scale), some tiny.
  for (int b = 0; b < n / 32; b += 7)
    x[b * 32 + b % 32] *= 40.f;
  for (int b = 3; b < n / 32; b += 11) {
    for (int j = 0; j < 32; ++j)
      x[b * 32 + j] *= 1e-2f;
  }
  std::vector<std::uint8_t> q(row_bytes(dtype, n));
  quantize_row(dtype, x.data(), q.data(), n);
  dequantize_row(dtype, q.data(), y.data(), n);
  constexpr double kF16Rel = 1.0 / 2048;  // 2^-11: f16's relative rounding error (normal values)
  double worst_ratio = 0.0;               // largest error / bound seen: a check that the bound is not loose
  for (int b = 0; b < n / 32; ++b) {
    const float* xb = &x[b * 32];
    double lo = xb[0], hi = xb[0], amax = 0.0, signed_max = 0.0;
    for (int j = 0; j < 32; ++j) {
      lo = std::min<double>(lo, xb[j]);
      hi = std::max<double>(hi, xb[j]);
      if (std::fabs(xb[j]) > amax) {
        amax = std::fabs(xb[j]);
        signed_max = xb[j];
      }
    }
    for (int j = 0; j < 32; ++j) {
      const double v = xb[j];
      double bound = 0.0;
      switch (dtype) {
        case DType::kF32:
          bound = 0.0;
          break;
        case DType::kF16:
          bound = std::fabs(v) * kF16Rel + std::ldexp(1.0, -25);
          break;  // half an ulp
        case DType::kBF16:
          bound = std::fabs(v) / 256.0;
          break;  // 2^-8: half an ulp
        case DType::kQ8_0: {
          const double step = amax / 127.0;  // |q| <= 127
          bound = 0.5 * step + 127.0 * step * kF16Rel;
          break;
        }
        case DType::kQ4_0: {
          const double step = amax / 8.0;            // q - 8 in [-8, 7]
          const double t = v / (signed_max / -8.0);  // the value in steps
          bound = std::max(0.5, t - 7.0) * step + 8.0 * step * kF16Rel;
          break;
        }
        case DType::kQ4_1: {
          const double step = (hi - lo) / 15.0;  // q in [0, 15]
          bound = 0.5 * step + 15.0 * step * kF16Rel + std::fabs(lo) * kF16Rel;
          break;
        }
        case DType::kQ5_0: {  // as Q4_0 with q - 16 in [-16, 15]
          const double step = amax / 16.0;
          const double t = v / (signed_max / -16.0);
          bound = std::max(0.5, t - 15.0) * step + 16.0 * step * kF16Rel;
          break;
        }
        case DType::kQ5_1: {  // as Q4_1 with q in [0, 31]
          const double step = (hi - lo) / 31.0;
          bound = 0.5 * step + 31.0 * step * kF16Rel + std::fabs(lo) * kF16Rel;
          break;
        }
        default:
          FAIL() << "no bound for " << dtype_name(dtype);
      }
      bound += 1e-6 * std::fabs(v) + 1e-30;  // float arithmetic in the quantizer
      const double err = std::fabs(v - y[b * 32 + j]);
      ASSERT_LE(err, bound) << dtype_name(dtype) << " block " << b << " element " << j << ": x = " << v;
      worst_ratio = std::max(worst_ratio, err / bound);
    }
  }
  // Random inputs come close to the bound: a test whose bound were 10x too wide would not know.
  if (dtype != DType::kF32) {
    EXPECT_GT(worst_ratio, 0.8) << dtype_name(dtype);
  }
}

INSTANTIATE_TEST_SUITE_P(AllWeightTypes, QuantRoundTrip,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0,
                                           DType::kQ4_1, DType::kQ5_0, DType::kQ5_1),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace halyard
