// IQ4_NL and IQ4_XS: their descriptions, hand-built blocks decoded value by value (gguf-py's
// dequantizers are the independent oracle in kquant_test.cpp's GgufPyDequant), and the
// reference quantizer: round trips, determinism, and its error against llama.cpp's.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "halyard/hal/blocks.h"
#include "halyard/hal/dtype.h"
#include "quant_quality.h"

namespace halyard {
namespace {

// ggml's kvalues_iq4nl, written out again here so a slip in blocks.h's copy fails.
constexpr int kLevels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

TEST(IQ4Info, IdsNamesAndBlockSizes) {
  const auto nl = dtype_info(20u);
  ASSERT_TRUE(nl.has_value());
  EXPECT_EQ(nl->dtype, DType::kIQ4_NL);
  EXPECT_EQ(nl->name, "iq4_nl");
  EXPECT_EQ(nl->block_elements, 32);
  EXPECT_EQ(nl->block_bytes, 18u);
  EXPECT_TRUE(nl->quantized);
  const auto xs = dtype_info(23u);
  ASSERT_TRUE(xs.has_value());
  EXPECT_EQ(xs->dtype, DType::kIQ4_XS);
  EXPECT_EQ(xs->name, "iq4_xs");
  EXPECT_EQ(xs->block_elements, 256);
  EXPECT_EQ(xs->block_bytes, 136u);
  EXPECT_TRUE(xs->quantized);
  EXPECT_TRUE(is_weight_dtype(DType::kIQ4_NL));
  EXPECT_TRUE(is_weight_dtype(DType::kIQ4_XS));
  EXPECT_EQ(dtype_from_name("iq4_nl"), DType::kIQ4_NL);
  EXPECT_EQ(dtype_from_name("iq4_xs"), DType::kIQ4_XS);
  EXPECT_EQ(row_bytes(DType::kIQ4_NL, 768), 24u * 18u);
  EXPECT_EQ(row_bytes(DType::kIQ4_XS, 768), 3u * 136u);
  for (int i = 0; i < 16; ++i)
    EXPECT_EQ(kIQ4Levels[i], kLevels[i]) << i;
}

TEST(IQ4Dequantize, NLHandBuilt) {
  BlockIQ4_NL b{};
  b.d = f32_to_f16(0.5f);
  for (int j = 0; j < 16; ++j)
    b.qs[j] = static_cast<std::uint8_t>(j | ((15 - j) << 4));
  float y[32];
  dequantize_row(DType::kIQ4_NL, &b, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * static_cast<float>(kLevels[j])) << j;
    EXPECT_EQ(y[16 + j], 0.5f * static_cast<float>(kLevels[15 - j])) << j;
  }
  EXPECT_EQ(y[0], -63.5f);   // code 0: 0.5 * -127
  EXPECT_EQ(y[8], 0.5f);     // code 8: 0.5 * 1
  EXPECT_EQ(y[16], 56.5f);   // high nibble of qs[0] is 15: 0.5 * 113
  EXPECT_EQ(y[31], -63.5f);  // high nibble of qs[15] is 0
}

TEST(IQ4Dequantize, NLNegativeScaleAndTwoBlocks) {
  BlockIQ4_NL b[2]{};
  b[0].d = f32_to_f16(-0.25f);
  b[1].d = f32_to_f16(2.f);
  for (int j = 0; j < 16; ++j) {
    b[0].qs[j] = 0x7f;  // low code 15, high code 7
    b[1].qs[j] = static_cast<std::uint8_t>(j == 3 ? 0x90 : 0x00);
  }
  float y[64];
  dequantize_row(DType::kIQ4_NL, b, y, 64);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], -28.25f);    // -0.25 * 113
    EXPECT_EQ(y[16 + j], 2.5f);  // -0.25 * -10
    EXPECT_EQ(y[32 + j], -254.f) << j;
    EXPECT_EQ(y[48 + j], j == 3 ? 26.f : -254.f) << j;  // code 9 is 13
  }
}

TEST(IQ4Dequantize, XSHandBuilt) {
  BlockIQ4_XS b{};
  b.d = f32_to_f16(0.25f);
  // Sub-block codes 0, 1, 15, 16, 31, 32, 47, 63 (scale code - 32): packed by hand from the
  // description, low 4 bits in scales_l's nibbles, high 2 bits in scales_h's bit pairs.
  const int code[8] = {0, 1, 15, 16, 31, 32, 47, 63};
  b.scales_l[0] = 0x10;  // 0 (even: low nibble), 1 (odd: high nibble)
  b.scales_l[1] = 0x0f;  // 15, 16 & 15 = 0
  b.scales_l[2] = 0x0f;  // 31 & 15 = 15, 32 & 15 = 0
  b.scales_l[3] = 0xff;  // 47 & 15, 63 & 15
  // high bits: 0, 0, 0, 1, 1, 2, 2, 3 in bit pairs 0..7
  b.scales_h = static_cast<std::uint16_t>((1 << 6) | (1 << 8) | (2 << 10) | (2 << 12) | (3 << 14));
  for (int s = 0; s < 8; ++s)
    for (int j = 0; j < 16; ++j)
      b.qs[16 * s + j] = static_cast<std::uint8_t>(((j + s) & 15) | ((15 - j) << 4));
  float y[256];
  dequantize_row(DType::kIQ4_XS, &b, y, 256);
  for (int s = 0; s < 8; ++s) {
    const float dl = 0.25f * static_cast<float>(code[s] - 32);
    for (int j = 0; j < 16; ++j) {
      EXPECT_EQ(y[32 * s + j], dl * static_cast<float>(kLevels[(j + s) & 15])) << s << " " << j;
      EXPECT_EQ(y[32 * s + 16 + j], dl * static_cast<float>(kLevels[15 - j])) << s << " " << j;
    }
  }
  EXPECT_EQ(y[0], 1016.f);                                                 // (0.25 * (0 - 32)) * -127
  EXPECT_EQ(y[32 * 5], 0.f);                                               // code 32: scale 0
  EXPECT_EQ(y[32 * 7 + 16], -871.75f / 1.f * 0.f + 0.25f * 31.f * 113.f);  // 7.75 * 113
  EXPECT_EQ(y[32 * 3 + 16], -0.f * 0.f + 0.25f * -16.f * 113.f);           // code 16: -4 * 113
}

// ---- the reference quantizer ----

std::vector<float> normal_weights(std::int64_t n, std::uint32_t seed, bool heavy_tailed = false) {
  return testing::random_weights(n, seed, heavy_tailed);
}

double nmse(DType dtype, const std::vector<float>& x) {
  return testing::round_trip_nmse(dtype, x);
}

double plain_nl_nmse(const std::vector<float>& x) {
  double err = 0, norm = 0;
  for (std::size_t b = 0; b < x.size(); b += 32) {
    float max = 0.f;
    for (int j = 0; j < 32; ++j)
      if (std::fabs(x[b + j]) > std::fabs(max))
        max = x[b + j];
    const float d = f16_to_f32(f32_to_f16(max / -127.f));
    for (int j = 0; j < 32; ++j) {
      double best = 1e30;
      for (int l : kLevels)
        best = std::min(best, std::fabs(static_cast<double>(x[b + j]) - d * static_cast<float>(l)));
      err += best * best;
      norm += static_cast<double>(x[b + j]) * x[b + j];
    }
  }
  return err / norm;
}

struct QualityBound {
  DType dtype;
  double normal;        // bound on the NMSE of normal_weights(256 * 1024, 21)
  double heavy;         // and of normal_weights(256 * 1024, 22, true)
  double llama_normal;  // llama.cpp's NMSE on the same weights (ggml_quantize_chunk, no imatrix)
  double llama_heavy;
};

class IQ4Quality : public ::testing::TestWithParam<QualityBound> {};

// The bounds are about 1.015x the measured NMSE (in the instantiation's comment), so a search
// that gets a couple of percent worse fails; each is also below llama.cpp's NMSE on the same
// vectors (ggml_quantize_chunk without an importance matrix, 0c1e57098, the generator above
// compiled against libggml-base.so), and the test checks that too.
TEST_P(IQ4Quality, WithinBounds) {
  const QualityBound bound = GetParam();
  const double normal = nmse(bound.dtype, normal_weights(256 * 1024, 21));
  const double heavy = nmse(bound.dtype, normal_weights(256 * 1024, 22, true));
  std::printf("%s: NMSE N(0, 1) %.4e (llama.cpp %.4e), t3 %.4e (llama.cpp %.4e)\n",
              std::string(dtype_name(bound.dtype)).c_str(), normal, bound.llama_normal, heavy, bound.llama_heavy);
  EXPECT_LT(normal, bound.normal);
  EXPECT_LT(heavy, bound.heavy);
  EXPECT_LT(bound.normal, bound.llama_normal) << "a bound above llama.cpp's error lets the quantizer fall behind it";
  EXPECT_LT(bound.heavy, bound.llama_heavy) << "a bound above llama.cpp's error lets the quantizer fall behind it";
}

INSTANTIATE_TEST_SUITE_P(Formats, IQ4Quality,
                         // Measured (N(0, 1) / t3): iq4_nl 5.6002e-3 / 1.0099e-2, iq4_xs 5.6638e-3 /
                         // 1.0322e-2: 2-3% below llama.cpp's.
                         ::testing::Values(QualityBound{DType::kIQ4_NL, 5.684e-3, 1.0250e-2, 5.77180e-3, 1.02806e-2},
                                           QualityBound{DType::kIQ4_XS, 5.749e-3, 1.0477e-2, 5.85844e-3, 1.05317e-2}),
                         [](const auto& info) { return std::string(dtype_name(info.param.dtype)); });

TEST(IQ4Quantize, SearchBeatsThePlainScale) {
  const auto x = normal_weights(256 * 256, 3);
  const double plain = plain_nl_nmse(x);
  const double nl = nmse(DType::kIQ4_NL, x);
  std::printf("iq4_nl NMSE %.4e, plain %.4e\n", nl, plain);
  EXPECT_LT(nl, 0.9 * plain);
}

// Special blocks: all zero decodes to zero, a constant block comes back within one level step,
// a block with one huge outlier keeps the outlier close, tiny values do not become NaN.
TEST(IQ4Quantize, SpecialBlocks) {
  for (DType dt : {DType::kIQ4_NL, DType::kIQ4_XS}) {
    const std::int64_t n = 256 * 4;
    std::vector<float> x(n, 0.f);
    for (int i = 256; i < 512; ++i)
      x[i] = 0.75f;
    const auto noise = normal_weights(256, 9);
    for (int i = 0; i < 256; ++i)
      x[512 + i] = noise[i];
    x[600] = 40.f;
    for (int i = 0; i < 256; ++i)
      x[768 + i] = 1e-3f * noise[i];  // scales in f16's subnormal range
    std::vector<std::uint8_t> q(row_bytes(dt, n));
    quantize_row(dt, x.data(), q.data(), n);
    std::vector<float> y(n);
    dequantize_row(dt, q.data(), y.data(), n);
    for (int i = 0; i < 256; ++i)
      EXPECT_EQ(y[i], 0.f) << dtype_name(dt) << " " << i;
    for (int i = 256; i < 512; ++i)
      EXPECT_NEAR(y[i], 0.75f, 0.75f * 0.02f) << dtype_name(dt) << " " << i;
    EXPECT_NEAR(y[600], 40.f, 40.f * 0.03f) << dtype_name(dt);
    for (float v : y)
      EXPECT_TRUE(std::isfinite(v)) << dtype_name(dt);
    double err = 0, norm = 0;
    for (int i = 768; i < 1024; ++i) {
      err += (x[i] - y[i]) * (x[i] - y[i]);
      norm += x[i] * x[i];
    }
    EXPECT_LT(err / norm, 0.05) << dtype_name(dt) << ": tiny weights keep their shape";
  }
}

// Same input, same bytes; row by row the same bytes as all at once (each block on its own).
TEST(IQ4Quantize, DeterministicAndSplittable) {
  const auto x = normal_weights(256 * 16, 11);
  for (DType dt : {DType::kIQ4_NL, DType::kIQ4_XS}) {
    const auto n = static_cast<std::int64_t>(x.size());
    std::vector<std::uint8_t> a(row_bytes(dt, n)), b(row_bytes(dt, n)), c(row_bytes(dt, n));
    quantize_row(dt, x.data(), a.data(), n);
    quantize_row(dt, x.data(), b.data(), n);
    EXPECT_EQ(a, b) << dtype_name(dt);
    for (std::int64_t i = 0; i < n; i += 256)
      quantize_row(dt, x.data() + i, c.data() + row_bytes(dt, i), 256);
    EXPECT_EQ(a, c) << dtype_name(dt);
  }
}

}  // namespace
}  // namespace halyard
