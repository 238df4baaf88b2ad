// The 5-bit and K-quant block formats: their descriptions, hand-built blocks decoded value by
// value, gguf-py's dequantizers as an independent oracle, and the reference quantizer's round
// trips and its error against llama.cpp's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "halyard/hal/blocks.h"
#include "halyard/hal/dtype.h"
#include "halyard/hal/tensor.h"
#include "quant_quality.h"

namespace halyard {
namespace {

constexpr DType kNewTypes[] = {DType::kQ5_0, DType::kQ5_1, DType::kQ2_K, DType::kQ3_K,
                               DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};

TEST(KQuantInfo, BlockSizesComeFromTheDtype) {
  struct Want {
    std::uint32_t id;
    DType dtype;
    const char* name;
    std::int64_t elements;
    std::size_t bytes;
  };
  const Want want[] = {{6, DType::kQ5_0, "q5_0", 32, 22},    {7, DType::kQ5_1, "q5_1", 32, 24},
                       {10, DType::kQ2_K, "q2_k", 256, 84},  {11, DType::kQ3_K, "q3_k", 256, 110},
                       {12, DType::kQ4_K, "q4_k", 256, 144}, {13, DType::kQ5_K, "q5_k", 256, 176},
                       {14, DType::kQ6_K, "q6_k", 256, 210}};
  for (const auto& w : want) {
    const auto info = dtype_info(w.id);
    ASSERT_TRUE(info.has_value()) << w.name;
    EXPECT_EQ(info->dtype, w.dtype);
    EXPECT_EQ(info->name, w.name);
    EXPECT_EQ(info->block_elements, w.elements) << w.name;
    EXPECT_EQ(info->block_bytes, w.bytes) << w.name;
    EXPECT_TRUE(info->quantized);
    EXPECT_TRUE(is_weight_dtype(w.dtype));
    EXPECT_EQ(dtype_from_name(w.name), w.dtype);
  }
  // A 768-wide row (SmolLM2-360M-like): 3 super-blocks, 24 blocks of 32.
  EXPECT_EQ(row_bytes(DType::kQ4_K, 768), 3u * 144u);
  EXPECT_EQ(row_bytes(DType::kQ6_K, 768), 3u * 210u);
  EXPECT_EQ(row_bytes(DType::kQ5_0, 768), 24u * 22u);
  EXPECT_EQ(TensorDesc::make(DType::kQ3_K, 512, 3).bytes(), 2u * 110u * 3u);
}

void put_f16(std::uint16_t* field, float v) {
  *field = f32_to_f16(v);
  ASSERT_EQ(f16_to_f32(*field), v) << "pick scales exact in f16";
}

// Hand-built blocks. Each test fills the block's bytes with a pattern, then states every weight's
// value from the format's description (blocks.h), indexing by weight, where dequantize_row walks
// the bytes; a few weights are also worked out in full in the comments.

TEST(KQuantDequantize, Q5_0HandBuilt) {
  BlockQ5_0 b{};
  put_f16(&b.d, 0.5f);
  for (int j = 0; j < 16; ++j)
    b.qs[j] = static_cast<std::uint8_t>(j | ((15 - j) << 4));
  // qh = 0x5555aaaa (little-endian): bit j set for odd j < 16, bit 16 + j for even j.
  b.qh[0] = 0xaa, b.qh[1] = 0xaa, b.qh[2] = 0x55, b.qh[3] = 0x55;
  float y[32];
  dequantize_row(DType::kQ5_0, &b, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], static_cast<float>(j + (j % 2 ? 16 : 0) - 16) * 0.5f) << j;
    EXPECT_EQ(y[16 + j], static_cast<float>(15 - j + (j % 2 ? 0 : 16) - 16) * 0.5f) << j;
  }
  EXPECT_EQ(y[0], -8.f);   // q = 0: (0 - 16) * 0.5
  EXPECT_EQ(y[1], 0.5f);   // q = 1 + 16 = 17
  EXPECT_EQ(y[16], 7.5f);  // q = 15 + 16 = 31
  EXPECT_EQ(y[17], -1.f);  // q = 14, no high bit: (14 - 16) * 0.5
}

TEST(KQuantDequantize, Q5_1HandBuilt) {
  BlockQ5_1 b{};
  put_f16(&b.d, 0.25f);
  put_f16(&b.m, -2.f);
  for (int j = 0; j < 16; ++j)
    b.qs[j] = static_cast<std::uint8_t>(j | ((15 - j) << 4));
  b.qh[0] = 0xaa, b.qh[1] = 0xaa, b.qh[2] = 0x55, b.qh[3] = 0x55;
  float y[32];
  dequantize_row(DType::kQ5_1, &b, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], static_cast<float>(j + (j % 2 ? 16 : 0)) * 0.25f - 2.f) << j;
    EXPECT_EQ(y[16 + j], static_cast<float>(15 - j + (j % 2 ? 0 : 16)) * 0.25f - 2.f) << j;
  }
  EXPECT_EQ(y[16], 5.75f);  // q = 31: 31 * 0.25 - 2
}

TEST(KQuantDequantize, Q2_KHandBuilt) {
  BlockQ2_K b{};
  put_f16(&b.d, 0.5f);
  put_f16(&b.dmin, 0.25f);
  for (int s = 0; s < 16; ++s)
    b.scales[s] = static_cast<std::uint8_t>(s | (((3 * s) & 15) << 4));
  for (int i = 0; i < 64; ++i)
    b.qs[i] = static_cast<std::uint8_t>(i * 7);
  std::vector<float> y(256);
  dequantize_row(DType::kQ2_K, &b, y.data(), 256);
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, j = (e % 128) / 32, l = e % 32, s = e / 16;
    const int q = (b.qs[32 * h + l] >> (2 * j)) & 3;
    EXPECT_EQ(y[e], 0.5f * static_cast<float>(b.scales[s] & 15) * static_cast<float>(q) -
                        0.25f * static_cast<float>(b.scales[s] >> 4))
        << e;
  }
  // Weight 37: h 0, j 1, l 5: qs[5] = 35 = 0b100011, bits 2..3 = 0; sub-block 2 (scale 2, min 6):
  // 0.5 * 2 * 0 - 0.25 * 6.
  EXPECT_EQ(y[37], -1.5f);
  // Weight 200: h 1, j 2, l 8: qs[40] = 280 & 255 = 24 = 0b011000, bits 4..5 = 1; sub-block 12
  // (scale 12, min 36 & 15 = 4): 0.5 * 12 * 1 - 0.25 * 4.
  EXPECT_EQ(y[200], 5.f);
}

TEST(KQuantDequantize, Q3_KHandBuilt) {
  BlockQ3_K b{};
  put_f16(&b.d, 0.5f);
  for (int l = 0; l < 32; ++l)
    b.hmask[l] = static_cast<std::uint8_t>(l * 37);
  for (int i = 0; i < 64; ++i)
    b.qs[i] = static_cast<std::uint8_t>(i * 7);
  const std::uint8_t scales[12] = {0x1f, 0x2e, 0x3d, 0x4c, 0x5b, 0x6a, 0x79, 0x88, 0x1b, 0xe4, 0x93, 0x6c};
  std::memcpy(b.scales, scales, 12);
  std::vector<float> y(256);
  dequantize_row(DType::kQ3_K, &b, y.data(), 256);
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, j = (e % 128) / 32, l = e % 32, s = e / 16;
    const int low = s < 8 ? scales[s] & 15 : scales[s - 8] >> 4;
    const int sc = (low | (((scales[8 + s % 4] >> (2 * (s / 4))) & 3) << 4)) - 32;
    const int q = ((b.qs[32 * h + l] >> (2 * j)) & 3) - (((b.hmask[l] >> (4 * h + j)) & 1) ? 0 : 4);
    EXPECT_EQ(y[e], 0.5f * static_cast<float>(sc) * static_cast<float>(q)) << e;
  }
  // Weight 0: scale 0 = 0x1f & 15 = 15 | (0x1b & 3 = 3) << 4 = 63, so 31; qs[0] = 0 and hmask[0]
  // bit 0 clear: q = 0 - 4. 0.5 * 31 * -4.
  EXPECT_EQ(y[0], -62.f);
  // Weight 145 (h 1, j 0, l 17; sub-block 9): scale = 0x2e >> 4 = 2 | ((0xe4 >> 4) & 3 = 2) << 4
  // = 34, so 2; qs[49] = 343 & 255 = 87 = 0b1010111, bits 0..1 = 3; hmask[17] = 629 & 255 = 117 =
  // 0b1110101, bit 4 set: q = 3. 0.5 * 2 * 3.
  EXPECT_EQ(y[145], 3.f);
  // Weight 250 (h 1, j 3, l 26; sub-block 15): scale = 0x88 >> 4 = 8 | (0x6c >> 6 = 1) << 4 = 24,
  // so -8; qs[58] = 406 & 255 = 150 = 0b10010110, bits 6..7 = 2; hmask[26] = 962 & 255 = 194 =
  // 0b11000010, bit 7 set: q = 2. 0.5 * -8 * 2.
  EXPECT_EQ(y[250], -8.f);
}

// Q4_K and Q5_K's packed 6-bit scale and minimum of sub-block j, as blocks.h describes them.
void k_scale_min_spec(const std::uint8_t* q, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 15) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

constexpr std::uint8_t kKScales[12] = {0xc5, 0x7f, 0x80, 0x41, 0x13, 0xe6, 0x2a, 0xbf, 0x9d, 0x0e, 0xf1, 0x5c};

TEST(KQuantDequantize, Q4_KHandBuilt) {
  BlockQ4_K b{};
  put_f16(&b.d, 0.5f);
  put_f16(&b.dmin, 0.125f);
  std::memcpy(b.scales, kKScales, 12);
  for (int i = 0; i < 128; ++i)
    b.qs[i] = static_cast<std::uint8_t>(i * 3);
  std::vector<float> y(256);
  dequantize_row(DType::kQ4_K, &b, y.data(), 256);
  for (int e = 0; e < 256; ++e) {
    const int c = e / 64, r = e % 64;
    int sc, m;
    k_scale_min_spec(kKScales, e / 32, &sc, &m);
    const int q = r < 32 ? b.qs[32 * c + r] & 15 : b.qs[32 * c + r - 32] >> 4;
    EXPECT_EQ(y[e], 0.5f * static_cast<float>(sc) * static_cast<float>(q) - 0.125f * static_cast<float>(m)) << e;
  }
  // Weight 0: sub-block 0: scale 0xc5 & 63 = 5, min 0x13 & 63 = 19; qs[0] = 0: -0.125 * 19.
  EXPECT_EQ(y[0], -2.375f);
  // Weight 229 (chunk 3, high nibble of qs[101] = 303 & 255 = 47 = 0x2f: 2; sub-block 7): scale =
  // (scales[11] = 0x5c & 15 = 12) | (scales[3] = 0x41 >> 6 = 1) << 4 = 28, min = (0x5c >> 4 = 5) |
  // (scales[7] = 0xbf >> 6 = 2) << 4 = 37: 0.5 * 28 * 2 - 0.125 * 37.
  EXPECT_EQ(y[229], 23.375f);
}

TEST(KQuantDequantize, Q5_KHandBuilt) {
  BlockQ5_K b{};
  put_f16(&b.d, 0.25f);
  put_f16(&b.dmin, 0.5f);
  std::memcpy(b.scales, kKScales, 12);
  for (int l = 0; l < 32; ++l)
    b.qh[l] = static_cast<std::uint8_t>(l * 29 + 3);
  for (int i = 0; i < 128; ++i)
    b.qs[i] = static_cast<std::uint8_t>(i * 3);
  std::vector<float> y(256);
  dequantize_row(DType::kQ5_K, &b, y.data(), 256);
  for (int e = 0; e < 256; ++e) {
    const int c = e / 64, r = e % 64, l = r % 32;
    int sc, m;
    k_scale_min_spec(kKScales, e / 32, &sc, &m);
    const int low = r < 32 ? b.qs[32 * c + l] & 15 : b.qs[32 * c + l] >> 4;
    const int high = (b.qh[l] >> (2 * c + (r < 32 ? 0 : 1))) & 1;
    EXPECT_EQ(y[e], 0.25f * static_cast<float>(sc) * static_cast<float>(low + 16 * high) - 0.5f * static_cast<float>(m))
        << e;
  }
  // Weight 229 (chunk 3, l 5): low 2 as for Q4_K; qh[5] = 148 = 0b10010100, bit 7 set: q = 18.
  // 0.25 * 28 * 18 - 0.5 * 37.
  EXPECT_EQ(y[229], 107.5f);
}

TEST(KQuantDequantize, Q6_KHandBuilt) {
  BlockQ6_K b{};
  put_f16(&b.d, 0.25f);
  for (int i = 0; i < 128; ++i)
    b.ql[i] = static_cast<std::uint8_t>(i * 5);
  for (int i = 0; i < 64; ++i)
    b.qh[i] = static_cast<std::uint8_t>(i * 11);
  for (int s = 0; s < 16; ++s)
    b.scales[s] = static_cast<std::int8_t>(s * 9 - 70);
  std::vector<float> y(256);
  dequantize_row(DType::kQ6_K, &b, y.data(), 256);
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, i = (e % 128) / 32, l = e % 32;
    const std::uint8_t lo_byte = b.ql[64 * h + l + 32 * (i & 1)];
    const int low = i < 2 ? lo_byte & 15 : lo_byte >> 4;
    const int high = (b.qh[32 * h + l] >> (2 * i)) & 3;
    EXPECT_EQ(y[e], 0.25f * static_cast<float>(b.scales[e / 16]) * static_cast<float>((low | (high << 4)) - 32)) << e;
  }
  // Weight 0: ql[0] = 0, qh[0] = 0: q = -32; scale -70: 0.25 * -70 * -32.
  EXPECT_EQ(y[0], 560.f);
  // Weight 170 (h 1, i 1, l 10): ql[64 + 10 + 32 = 106] = 530 & 255 = 18, low nibble 2; qh[42] =
  // 462 & 255 = 206 = 0b11001110, bits 2..3 = 3: q = 2 | 48 = 50, - 32 = 18; sub-block 10, scale
  // 20: 0.25 * 20 * 18.
  EXPECT_EQ(y[170], 90.f);
}

// ---- gguf-py's numpy dequantizers (tests/data/gguf_py_quants/dequant_blocks.py) ----

std::vector<std::uint8_t> from_hex(const std::string& hex) {
  std::vector<std::uint8_t> out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<std::uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return out;
}

class GgufPyDequant : public ::testing::TestWithParam<DType> {};

TEST_P(GgufPyDequant, SameFloats) {
  const DType dtype = GetParam();
  const std::string path = std::string(HALYARD_TEST_DATA_DIR) + "/gguf_py_quants/dequant_blocks.json";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  const auto doc = nlohmann::json::parse(in);
  const auto& t = doc.at("types").at(std::string(dtype_name(dtype)));
  const auto& info = dtype_info(dtype);
  ASSERT_EQ(t.at("block_elements").get<std::int64_t>(), info.block_elements);
  ASSERT_EQ(t.at("block_bytes").get<std::size_t>(), info.block_bytes);
  const auto& bits = t.at("f32_bits");
  std::size_t at = 0, blocks = 0;
  for (const auto& hex : t.at("blocks_hex")) {
    const std::vector<std::uint8_t> block = from_hex(hex.get<std::string>());
    ASSERT_EQ(block.size(), info.block_bytes);
    std::vector<float> y(static_cast<std::size_t>(info.block_elements));
    dequantize_row(dtype, block.data(), y.data(), info.block_elements);
    for (std::size_t i = 0; i < y.size(); ++i, ++at) {
      std::uint32_t got;
      std::memcpy(&got, &y[i], 4);
      const auto want = bits.at(at).get<std::uint32_t>();
      float want_f;
      std::memcpy(&want_f, &want, 4);
      ASSERT_EQ(got, want) << dtype_name(dtype) << " block " << blocks << " weight " << i << ": " << y[i]
                           << " vs gguf-py's " << want_f;
    }
    ++blocks;
  }
  EXPECT_EQ(at, bits.size());
  EXPECT_EQ(blocks, 8u);
}

INSTANTIATE_TEST_SUITE_P(AllBlockTypes, GgufPyDequant,
                         ::testing::Values(DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ8_0,
                                           DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K,
                                           DType::kIQ4_NL, DType::kIQ4_XS),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// ---- the reference quantizer ----

// N(0, 1) weights, with blocks that are hard in turn: all zero, constant, one outlier, all
// negative, tiny, and a sub-block of zeros beside large values.
std::vector<float> test_weights(std::int64_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> x(static_cast<std::size_t>(n));
  for (auto& v : x)
    v = normal(rng);
  const std::int64_t blocks = n / 256;
  for (std::int64_t b = 0; b < blocks; ++b) {
    float* v = x.data() + b * 256;
    switch (b % 8) {
      case 1:
        std::fill(v, v + 256, 0.f);
        break;
      case 2:
        std::fill(v, v + 256, 0.75f);
        break;
      case 3:
        v[100] = 30.f;
        break;
      case 4:
        for (int i = 0; i < 256; ++i)
          v[i] = -std::fabs(v[i]) - 0.5f;
        break;
      case 5:
        for (int i = 0; i < 256; ++i)
          v[i] *= 1e-3f;
        break;
      case 6:
        std::fill(v + 32, v + 64, 0.f);
        break;
      default:
        break;
    }
  }
  return x;
}

struct RoundTrip {
  double nmse;     // sum of squared errors / sum of squares, over the N(0, 1) blocks only
  double max_err;  // largest error / the largest magnitude of its block, over every block
};

RoundTrip round_trip(DType dtype, const std::vector<float>& x, std::vector<float>* y_out = nullptr) {
  const auto n = static_cast<std::int64_t>(x.size());
  std::vector<std::uint8_t> q(row_bytes(dtype, n));
  quantize_row(dtype, x.data(), q.data(), n);
  std::vector<float> y(x.size());
  dequantize_row(dtype, q.data(), y.data(), n);
  RoundTrip r{0, 0};
  double err = 0, norm = 0;
  for (std::int64_t b = 0; b < n / 256; ++b) {
    double amax = 0;
    for (int i = 0; i < 256; ++i)
      amax = std::max(amax, std::fabs(static_cast<double>(x[b * 256 + i])));
    for (int i = 0; i < 256; ++i) {
      const double e = std::fabs(static_cast<double>(x[b * 256 + i]) - y[b * 256 + i]);
      if (amax > 0)
        r.max_err = std::max(r.max_err, e / amax);
      else
        EXPECT_EQ(y[b * 256 + i], 0.f) << "an all-zero block must come back zero";
      if (b % 8 == 0 || b % 8 == 7) {
        err += e * e;
        norm += static_cast<double>(x[b * 256 + i]) * x[b * 256 + i];
      }
    }
  }
  r.nmse = err / norm;
  if (y_out)
    *y_out = std::move(y);
  return r;
}

// Per format: the NMSE of N(0, 1) weights and the largest error relative to its block's largest
// magnitude. The NMSE bounds are about 1.15x what the quantizer reaches (measured: see the
// comment on each; KQuantQuality below holds it to llama.cpp's), the max bounds about 1.3x, so a
// layout or rounding slip that costs a bit of precision fails. The K-quants' search may clip a
// sub-block's extremes where that lowers the squared error, and a sub-block whose scale rounds
// down to the super-block's smallest steps is their worst case, hence the max bounds' slack.
struct QuantBound {
  DType dtype;
  double nmse;
  double max_err;
};

class KQuantRoundTrip : public ::testing::TestWithParam<QuantBound> {};

TEST_P(KQuantRoundTrip, WithinBounds) {
  const QuantBound bound = GetParam();
  const auto x = test_weights(256 * 64, 7);
  const RoundTrip r = round_trip(bound.dtype, x);
  std::printf("%s: NMSE %.3e, max error / block max %.3e\n", std::string(dtype_name(bound.dtype)).c_str(), r.nmse,
              r.max_err);
  EXPECT_LT(r.nmse, bound.nmse) << dtype_name(bound.dtype);
  EXPECT_LT(r.max_err, bound.max_err) << dtype_name(bound.dtype);
}

INSTANTIATE_TEST_SUITE_P(
    Formats, KQuantRoundTrip,
    // Measured (seed 7): q5_0 1.72e-3 / 4.71e-2, q5_1 1.41e-3 / 3.16e-2, q2_k 7.03e-2 / 3.85e-1,
    // q3_k 2.10e-2 / 1.96e-1, q4_k 4.78e-3 / 8.06e-2, q5_k 1.18e-3 / 4.26e-2, q6_k 2.78e-4 / 1.89e-2.
    ::testing::Values(QuantBound{DType::kQ5_0, 2.3e-3, 6.2e-2}, QuantBound{DType::kQ5_1, 1.9e-3, 4.2e-2},
                      QuantBound{DType::kQ2_K, 8.1e-2, 5.0e-1}, QuantBound{DType::kQ3_K, 2.4e-2, 2.6e-1},
                      QuantBound{DType::kQ4_K, 5.5e-3, 1.05e-1}, QuantBound{DType::kQ5_K, 1.36e-3, 5.5e-2},
                      QuantBound{DType::kQ6_K, 3.2e-4, 2.5e-2}),
    [](const auto& info) { return std::string(dtype_name(info.param.dtype)); });

// ---- the quantizer's quality against llama.cpp's ----

std::vector<float> quality_weights(bool heavy_tailed, std::uint32_t seed) {
  return testing::random_weights(256 * 1024, seed, heavy_tailed);
}

double nmse(DType dtype, const std::vector<float>& x) {
  return testing::round_trip_nmse(dtype, x);
}

// Each bound is about 1.02x Halyard's own NMSE on these weights, so a search that gets a couple
// of percent worse fails; each is also below llama.cpp's NMSE on the same weights
// (ggml_quantize_chunk without an importance matrix, 0c1e57098, on these vectors written out),
// which is the bar, and the test checks that too.
struct QualityBound {
  DType dtype;
  double normal;        // bound on the NMSE of quality_weights(false, 21)
  double heavy;         // and of quality_weights(true, 22)
  double llama_normal;  // llama.cpp's NMSE on the same weights
  double llama_heavy;
};

class KQuantQuality : public ::testing::TestWithParam<QualityBound> {};

TEST_P(KQuantQuality, WithinBoundsAndBelowLlamaCpp) {
  const QualityBound bound = GetParam();
  const double normal = nmse(bound.dtype, quality_weights(false, 21));
  const double heavy = nmse(bound.dtype, quality_weights(true, 22));
  std::printf("%s: NMSE N(0, 1) %.4e (llama.cpp %.4e), t3 %.4e (llama.cpp %.4e)\n",
              std::string(dtype_name(bound.dtype)).c_str(), normal, bound.llama_normal, heavy, bound.llama_heavy);
  EXPECT_LT(normal, bound.normal) << dtype_name(bound.dtype);
  EXPECT_LT(heavy, bound.heavy) << dtype_name(bound.dtype);
  EXPECT_LT(bound.normal, bound.llama_normal) << "a bound above llama.cpp's error lets the quantizer fall behind it";
  EXPECT_LT(bound.heavy, bound.llama_heavy) << "a bound above llama.cpp's error lets the quantizer fall behind it";
}

INSTANTIATE_TEST_SUITE_P(Formats, KQuantQuality,
                         // Halyard, measured (N(0, 1) / t3): q2_k 6.929e-2 / 8.329e-2, q3_k 2.052e-2 / 3.329e-2, q4_k
                         // 4.883e-3 / 8.158e-3, q5_k 1.194e-3 / 2.041e-3, q6_k 2.766e-4 / 6.098e-4: 3-33% below
                         // llama.cpp's.
                         ::testing::Values(QualityBound{DType::kQ2_K, 7.07e-2, 8.50e-2, 8.76893e-2, 1.24275e-1},
                                           QualityBound{DType::kQ3_K, 2.094e-2, 3.395e-2, 2.26433e-2, 3.60832e-2},
                                           QualityBound{DType::kQ4_K, 4.98e-3, 8.32e-3, 5.06152e-3, 8.56113e-3},
                                           QualityBound{DType::kQ5_K, 1.217e-3, 2.08e-3, 1.30153e-3, 2.20792e-3},
                                           QualityBound{DType::kQ6_K, 2.82e-4, 6.22e-4, 3.12073e-4, 6.62630e-4}),
                         [](const auto& info) { return std::string(dtype_name(info.param.dtype)); });

// Same input, same bytes: test models and conformance inputs made from a seed are reproducible.
// The search keeps the best of several candidates, so it must not depend on anything but x.
TEST(KQuantQuantize, Deterministic) {
  const auto x = test_weights(256 * 16, 11);
  for (DType dt : kNewTypes) {
    const auto n = static_cast<std::int64_t>(x.size());
    std::vector<std::uint8_t> a(row_bytes(dt, n)), b(row_bytes(dt, n));
    quantize_row(dt, x.data(), a.data(), n);
    quantize_row(dt, x.data(), b.data(), n);
    EXPECT_EQ(a, b) << dtype_name(dt);
    // Row by row gives the same bytes as all at once: each super-block is quantized on its own.
    std::vector<std::uint8_t> c(row_bytes(dt, n));
    for (std::int64_t i = 0; i < n; i += 256)
      quantize_row(dt, x.data() + i, c.data() + row_bytes(dt, i), 256);
    EXPECT_EQ(a, c) << dtype_name(dt);
    std::vector<float> ya(x.size()), yb(x.size());
    dequantize_row(dt, a.data(), ya.data(), n);
    dequantize_row(dt, b.data(), yb.data(), n);
    EXPECT_EQ(0, std::memcmp(ya.data(), yb.data(), ya.size() * sizeof(float))) << dtype_name(dt);
  }
}

}  // namespace
}  // namespace halyard
