// The cpu kernel tables' Q4_K, Q5_K and Q6_K dot products and tiles against a double-precision
// dot of the dequantized weights (hal's dequantize_row, the definition) with the dequantized
// activations, and the tables against each other. The weight blocks are random bytes with
// random f16 super-scales, so every bit of the packed scales, minimums, nibbles and high bits
// is exercised (a quantizer would leave most scale bits at its favourite values).
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "halyard/hal/dtype.h"
#include "kernels.h"

namespace halyard::cpu {
namespace {

std::vector<const KernelTable*> runnable_tables() {
  return runnable_kernel_tables();
}

struct Format {
  DType dtype;
  std::size_t block_bytes;
  std::size_t scale_offset;  // f16 super-scales: d at this offset, dmin (if any) right after
  bool has_min;
};

void PrintTo(const Format& f, std::ostream* os) {
  *os << dtype_name(f.dtype);
}

constexpr Format kFormats[] = {
    {DType::kQ4_K, sizeof(BlockQ4_K), offsetof(BlockQ4_K, d), true},
    {DType::kQ5_K, sizeof(BlockQ5_K), offsetof(BlockQ5_K, d), true},
    {DType::kQ6_K, sizeof(BlockQ6_K), offsetof(BlockQ6_K, d), false},
};

constexpr int kK = 4 * kSuperBlock;  // four super-blocks per row
constexpr int kNb = kK / kQuantBlock;

// `rows` rows of random super-blocks.
std::vector<std::uint8_t> random_rows(const Format& f, int rows, std::mt19937& rng) {
  const std::size_t per_row = f.block_bytes * (kK / kSuperBlock);
  std::vector<std::uint8_t> w(per_row * static_cast<std::size_t>(rows));
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(0.002f, 0.05f);
  for (auto& b : w)
    b = static_cast<std::uint8_t>(byte(rng));
  for (std::size_t blk = 0; blk < w.size() / f.block_bytes; ++blk) {
    std::uint8_t* p = w.data() + blk * f.block_bytes + f.scale_offset;
    const std::uint16_t d = f32_to_f16(scale(rng)), dmin = f32_to_f16(scale(rng));
    std::memcpy(p, &d, 2);
    if (f.has_min)
      std::memcpy(p + 2, &dmin, 2);
  }
  return w;
}

// Activations with an outlier channel, quantized by the generic table (what every table's
// kernels then read), and their dequantized values.
std::vector<ActBlock> random_activations(int tokens, std::mt19937& rng, std::vector<double>& dequantized) {
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> x(static_cast<std::size_t>(tokens) * kK);
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = normal(rng) * (i % 97 == 5 ? 20.f : 1.f);
  std::vector<ActBlock> act(static_cast<std::size_t>(tokens) * kNb);
  generic_kernels().quantize_activations(x.data(), act.data(), tokens * kNb);
  dequantized.resize(x.size());
  for (std::size_t b = 0; b < act.size(); ++b) {
    for (int j = 0; j < kQuantBlock; ++j)
      dequantized[b * kQuantBlock + j] = static_cast<double>(act[b].d[j / kActGroup]) * act[b].qs[j];
  }
  return act;
}

struct Expected {
  double value;
  double magnitude;  // sum |w x|: float rounding scales with it
};

Expected reference(const Format& f, const std::uint8_t* row, const double* x) {
  std::vector<float> w(kK);
  dequantize_row(f.dtype, row, w.data(), kK);
  Expected e{0.0, 0.0};
  for (int i = 0; i < kK; ++i) {
    e.value += static_cast<double>(w[i]) * x[i];
    e.magnitude += std::fabs(static_cast<double>(w[i]) * x[i]);
  }
  return e;
}

// Float sums over 1024 products in a few chains: well under 1e-5 of the magnitude. A wrong
// scale, nibble or high bit moves the result by a sizeable part of it.
double tolerance(const Expected& e) {
  return 1e-5 * e.magnitude + 1e-6;
}

class KQuantKernels : public ::testing::TestWithParam<Format> {};

TEST_P(KQuantKernels, DotMatchesDequantizedReferenceInEveryTable) {
  const Format f = GetParam();
  std::mt19937 rng(1234);
  constexpr int kRows = 6, kTokens = 3;
  const auto w = random_rows(f, kRows, rng);
  std::vector<double> xd;
  const auto act = random_activations(kTokens, rng, xd);
  const std::size_t row_bytes = w.size() / kRows;
  for (const KernelTable* kt : runnable_tables()) {
    const QuantKernels& qk = kt->quantized(f.dtype);
    ASSERT_NE(qk.dot, nullptr) << kt->name << " has no " << dtype_name(f.dtype) << " dot";
    for (int r = 0; r < kRows; ++r) {
      for (int t = 0; t < kTokens; ++t) {
        const std::uint8_t* row = w.data() + r * row_bytes;
        const Expected e = reference(f, row, xd.data() + t * kK);
        const float got = qk.dot(row, act.data() + t * kNb, kNb);
        EXPECT_NEAR(got, e.value, tolerance(e)) << kt->name << " " << dtype_name(f.dtype) << " row " << r;
        // Fewer super-blocks: the first one alone.
        std::vector<std::uint8_t> one(row, row + f.block_bytes);
        one.resize(row_bytes, 0);  // zero blocks after it dequantize to 0 (d = dmin = 0)
        const Expected e1 = reference(f, one.data(), xd.data() + t * kK);
        const float got1 = qk.dot(row, act.data() + t * kNb, kSuperBlock / kQuantBlock);
        EXPECT_NEAR(got1, e1.value, tolerance(e1)) << kt->name << " " << dtype_name(f.dtype) << " one block";
        const float generic = generic_kernels().quantized(f.dtype).dot(row, act.data() + t * kNb, kNb);
        EXPECT_NEAR(got, generic, 2 * tolerance(e)) << kt->name << " against generic";
      }
    }
  }
}

TEST_P(KQuantKernels, TileMatchesDequantizedReferenceInEveryTable) {
  const Format f = GetParam();
  std::mt19937 rng(99);
  constexpr int kRows = 8, kTokens = 8;
  const auto w = random_rows(f, kRows, rng);
  std::vector<double> xd;
  const auto act = random_activations(kTokens, rng, xd);
  const std::size_t row_bytes = w.size() / kRows;
  int tiles_run = 0;
  for (const KernelTable* kt : runnable_tables()) {
    const QuantKernels& qk = kt->quantized(f.dtype);
    if (!qk.tile)
      continue;
    ASSERT_LE(qk.tile_rows, kRows);
    ASSERT_LE(qk.tile_tokens, kTokens);
    ++tiles_run;
    // A tile at an offset in both directions, into an output with a row stride.
    const int r0 = kRows - qk.tile_rows, t0 = kTokens - qk.tile_tokens, ldo = 11;
    const void* wr[8];
    const ActBlock* xr[8];
    for (int r = 0; r < qk.tile_rows; ++r)
      wr[r] = w.data() + (r0 + r) * row_bytes;
    for (int t = 0; t < qk.tile_tokens; ++t)
      xr[t] = act.data() + (t0 + t) * kNb;
    std::vector<float> out(static_cast<std::size_t>(ldo) * qk.tile_tokens, -12345.f);
    qk.tile(wr, xr, kNb, out.data(), ldo);
    for (int t = 0; t < qk.tile_tokens; ++t) {
      for (int r = 0; r < ldo; ++r) {
        const float got = out[static_cast<std::size_t>(t * ldo + r)];
        if (r >= qk.tile_rows) {
          EXPECT_EQ(got, -12345.f) << kt->name << " wrote outside the tile";
          continue;
        }
        const Expected e = reference(f, w.data() + (r0 + r) * row_bytes, xd.data() + (t0 + t) * kK);
        EXPECT_NEAR(got, e.value, tolerance(e)) << kt->name << " " << dtype_name(f.dtype) << " r " << r << " t " << t;
        EXPECT_NEAR(got, qk.dot(wr[r], xr[t], kNb), 2 * tolerance(e)) << kt->name << " tile against its dot";
      }
    }
  }
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    EXPECT_GT(tiles_run, 0) << "no table has a " << dtype_name(f.dtype) << " tile";
  }
#endif
}

// The prefill GEMM dequantizes weight rows with dequantize_row_fast: bit for bit the definition.
TEST_P(KQuantKernels, FastDequantizationIsBitExact) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f"))
    GTEST_SKIP() << "dequantize_row_fast needs AVX-512F here";
#endif
  const Format f = GetParam();
  std::mt19937 rng(7);
  const auto w = random_rows(f, 3, rng);
  const std::int64_t n = 3 * std::int64_t{kK};
  std::vector<float> want(static_cast<std::size_t>(n)), got(static_cast<std::size_t>(n), -1.f);
  dequantize_row(f.dtype, w.data(), want.data(), n);
  dequantize_row_fast(f.dtype, w.data(), got.data(), n);
  for (std::int64_t i = 0; i < n; ++i) {
    std::uint32_t a, b;
    std::memcpy(&a, &want[static_cast<std::size_t>(i)], 4);
    std::memcpy(&b, &got[static_cast<std::size_t>(i)], 4);
    ASSERT_EQ(a, b) << dtype_name(f.dtype) << " element " << i << ": " << want[static_cast<std::size_t>(i)] << " vs "
                    << got[static_cast<std::size_t>(i)];
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, KQuantKernels, ::testing::ValuesIn(kFormats),
                         [](const ::testing::TestParamInfo<Format>& info) {
                           return std::string(dtype_name(info.param.dtype));
                         });

}  // namespace
}  // namespace halyard::cpu
