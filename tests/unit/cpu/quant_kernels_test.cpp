// The cpu kernel tables' quantized dot products and tiles for Q5_0, Q5_1, the K-quants, IQ4_NL
// and IQ4_XS, against a double-precision dot of hal's dequantize_row (the formats' definition)
// with the dequantized activations, and every table against the portable one. Weight rows are
// random bytes with sane f16 scales, so every bit of every scale, minimum and high-bit field is
// exercised, plus rows quantized from floats (the blocks real files hold).
// Built twice: as cpu_quant_kernels_tests, and on x86-64 as cpu_neon_emulated_tests with
// kernels_neon.cpp compiled against a scalar model of the NEON intrinsics
// (neon_emulation/arm_neon.h), so the NEON kernels run here too.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "halyard/hal/blocks.h"
#include "halyard/hal/dtype.h"
#include "kernels.h"

namespace halyard::cpu {
namespace {

#if defined(HALYARD_NEON_EMULATED)
#define QUANT_SUITE CpuQuantKernelsNeonEmulated
std::vector<const KernelTable*> runnable_tables() {
  return {&generic_kernels(), neon_kernels()};
}
#else
#define QUANT_SUITE CpuQuantKernels
std::vector<const KernelTable*> runnable_tables() {
  return runnable_kernel_tables();
}
#endif

// The formats every table must have, and those only some tables have on this branch (their
// portable kernels come with another change): those are tested where a table has them.
constexpr DType kRequired[] = {DType::kQ5_0, DType::kQ5_1, DType::kQ2_K, DType::kQ3_K, DType::kIQ4_NL, DType::kIQ4_XS};
constexpr DType kWherePresent[] = {DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};

// Where a block's f16 fields sit (scales and minimums), so random bytes get sane values there.
std::vector<std::size_t> f16_fields(DType dt) {
  switch (dt) {
    case DType::kQ5_0:
      return {offsetof(BlockQ5_0, d)};
    case DType::kQ5_1:
      return {offsetof(BlockQ5_1, d), offsetof(BlockQ5_1, m)};
    case DType::kQ2_K:
      return {offsetof(BlockQ2_K, d), offsetof(BlockQ2_K, dmin)};
    case DType::kQ3_K:
      return {offsetof(BlockQ3_K, d)};
    case DType::kQ4_K:
      return {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)};
    case DType::kQ5_K:
      return {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)};
    case DType::kQ6_K:
      return {offsetof(BlockQ6_K, d)};
    case DType::kIQ4_NL:
      return {offsetof(BlockIQ4_NL, d)};
    case DType::kIQ4_XS:
      return {offsetof(BlockIQ4_XS, d)};
    default:
      return {};
  }
}

// `rows` weight rows of k elements: random bytes with f16 fields of either sign in [1e-3, 5e-2]
// when `random_bytes`, else quantize_row of normal floats.
std::vector<std::uint8_t> make_rows(DType dt, std::int64_t k, int rows, bool random_bytes, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::size_t row = row_bytes(dt, k);
  std::vector<std::uint8_t> w(row * static_cast<std::size_t>(rows));
  if (random_bytes) {
    for (auto& b : w)
      b = static_cast<std::uint8_t>(rng());
    const auto& info = dtype_info(dt);
    const std::size_t n_blocks = w.size() / info.block_bytes;
    std::uniform_real_distribution<float> mag(1e-3f, 5e-2f);
    for (std::size_t i = 0; i < n_blocks; ++i) {
      for (std::size_t off : f16_fields(dt)) {
        const std::uint16_t h = f32_to_f16((rng() & 1 ? -1.f : 1.f) * mag(rng));
        std::memcpy(w.data() + i * info.block_bytes + off, &h, 2);
      }
    }
  } else {
    std::normal_distribution<float> normal(0.f, 1.f);
    std::vector<float> x(static_cast<std::size_t>(k));
    for (int r = 0; r < rows; ++r) {
      for (auto& v : x)
        v = normal(rng) * (r % 2 ? 0.02f : 1.f) + (r % 3 == 2 ? 0.5f : 0.f);  // scales and offsets vary
      quantize_row(dt, x.data(), w.data() + row * static_cast<std::size_t>(r), k);
    }
  }
  return w;
}

// One token's activations quantized by the table: normal values with a few outlier channels.
std::vector<ActBlock> make_activations(const KernelTable& kt, std::int64_t k, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> x(static_cast<std::size_t>(k));
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = normal(rng) * (i % 97 == 5 ? 30.f : 1.f);
  std::vector<ActBlock> act(static_cast<std::size_t>(k / kQuantBlock));
  kt.quantize_activations(x.data(), act.data(), static_cast<int>(act.size()));
  return act;
}

// The definition: sum_i w_i x_i in double, w from dequantize_row, x_i = d[group] qs[i]; and
// sum_i |w_i x_i|, the scale of the rounding the kernels may add.
struct Reference {
  double dot = 0, magnitude = 0;
};
Reference reference(DType dt, const std::uint8_t* row, const ActBlock* x, std::int64_t k) {
  std::vector<float> w(static_cast<std::size_t>(k));
  dequantize_row(dt, row, w.data(), k);
  Reference ref;
  for (std::int64_t i = 0; i < k; ++i) {
    const ActBlock& b = x[i / kQuantBlock];
    const int j = static_cast<int>(i % kQuantBlock);
    const double term = static_cast<double>(w[static_cast<std::size_t>(i)]) * b.d[j / kActGroup] * b.qs[j];
    ref.dot += term;
    ref.magnitude += std::fabs(term);
  }
  return ref;
}

// Float sums in another order than the double reference: a few ulp of the magnitude. A wrong
// scale, minimum or bit on one sub-block of 16 moves the result by about 16 terms' worth, far
// more than this for every k tested.
double tolerance(const Reference& ref) {
  return 2e-5 * ref.magnitude + 1e-6;
}

std::vector<std::int64_t> lengths(DType dt) {
  if (dtype_info(dt).block_elements == kSuperBlock)
    return {256, 768, 2048};
  return {32, 96, 160, 2048};  // odd block counts: the unrolled loops' tails
}

bool required(DType dt) {
  for (DType r : kRequired)
    if (r == dt)
      return true;
  return false;
}

std::vector<DType> formats() {
  std::vector<DType> all(std::begin(kRequired), std::end(kRequired));
  all.insert(all.end(), std::begin(kWherePresent), std::end(kWherePresent));
  return all;
}

TEST(QUANT_SUITE, EveryTableHasTheFormats) {
  for (const KernelTable* kt : runnable_tables()) {
    for (DType dt : kRequired)
      EXPECT_NE(kt->quantized(dt).dot, nullptr) << kt->name << " has no " << dtype_name(dt) << " dot";
  }
#if defined(HALYARD_NEON_EMULATED)
  // The NEON table has every new format's dot product, Q4_K .. Q6_K included.
  for (DType dt : kWherePresent)
    EXPECT_NE(neon_kernels()->quantized(dt).dot, nullptr) << "neon-dotprod has no " << dtype_name(dt) << " dot";
#elif defined(__x86_64__)
  // The x86 tables have tiles for them (prefill through the integer tiles and batched decode).
  for (const KernelTable* kt : {avx2_kernels(), avx512vnni_kernels()}) {
    if (!kt)
      continue;
    for (DType dt : kRequired)
      EXPECT_NE(kt->quantized(dt).tile, nullptr) << kt->name << " has no " << dtype_name(dt) << " tile";
  }
#endif
}

TEST(QUANT_SUITE, DotMatchesDequantizedReference) {
  for (const KernelTable* kt : runnable_tables()) {
    for (DType dt : formats()) {
      const QuantKernels& qk = kt->quantized(dt);
      if (!qk.dot) {
        EXPECT_FALSE(required(dt)) << kt->name << ": " << dtype_name(dt);
        continue;
      }
      for (std::int64_t k : lengths(dt)) {
        for (bool random_bytes : {true, false}) {
          constexpr int kRows = 6;
          const auto w = make_rows(dt, k, kRows, random_bytes, static_cast<std::uint64_t>(k) * 31 + random_bytes);
          const auto act = make_activations(*kt, k, static_cast<std::uint64_t>(k) + 7);
          const std::size_t row = row_bytes(dt, k);
          for (int r = 0; r < kRows; ++r) {
            const std::uint8_t* wr = w.data() + row * static_cast<std::size_t>(r);
            const Reference ref = reference(dt, wr, act.data(), k);
            const float got = qk.dot(wr, act.data(), static_cast<int>(k / kQuantBlock));
            EXPECT_NEAR(got, ref.dot, tolerance(ref)) << kt->name << " " << dtype_name(dt) << " k=" << k << " row " << r
                                                      << (random_bytes ? " (random bytes)" : " (quantized)");
          }
        }
      }
    }
  }
}

TEST(QUANT_SUITE, TilesMatchReferenceAndWriteOnlyTheirCells) {
  for (const KernelTable* kt : runnable_tables()) {
    for (DType dt : formats()) {
      const QuantKernels& qk = kt->quantized(dt);
      if (!qk.tile)
        continue;
      const int R = qk.tile_rows, T = qk.tile_tokens;
      for (std::int64_t k : lengths(dt)) {
        const auto w = make_rows(dt, k, R, true, static_cast<std::uint64_t>(k) * 5 + 1);
        const std::size_t row = row_bytes(dt, k);
        std::vector<std::vector<ActBlock>> acts;
        for (int t = 0; t < T; ++t)
          acts.push_back(make_activations(*kt, k, static_cast<std::uint64_t>(k) * 11 + static_cast<std::uint64_t>(t)));
        const void* wr[16];
        const ActBlock* xr[16];
        ASSERT_LE(R, 16);
        ASSERT_LE(T, 16);
        for (int r = 0; r < R; ++r)
          wr[r] = w.data() + row * static_cast<std::size_t>(r);
        for (int t = 0; t < T; ++t)
          xr[t] = acts[static_cast<std::size_t>(t)].data();
        const int ldo = R + 3;  // cells between the rows of the output stay untouched
        std::vector<float> out(static_cast<std::size_t>(T * ldo), -12345.f);
        qk.tile(wr, xr, static_cast<int>(k / kQuantBlock), out.data(), ldo);
        for (int t = 0; t < T; ++t) {
          for (int c = 0; c < ldo; ++c) {
            const float got = out[static_cast<std::size_t>(t * ldo + c)];
            if (c >= R) {
              EXPECT_EQ(got, -12345.f) << kt->name << " " << dtype_name(dt) << " wrote cell " << c;
              continue;
            }
            const auto* wc = static_cast<const std::uint8_t*>(wr[c]);
            const Reference ref = reference(dt, wc, xr[t], k);
            EXPECT_NEAR(got, ref.dot, tolerance(ref))
                << kt->name << " " << dtype_name(dt) << " tile k=" << k << " row " << c << " token " << t;
            EXPECT_NEAR(got, qk.dot(wc, xr[t], static_cast<int>(k / kQuantBlock)), tolerance(ref))
                << kt->name << " " << dtype_name(dt) << " tile against dot, k=" << k;
          }
        }
      }
    }
  }
}

// Tables against each other on the same activation blocks: a SIMD kernel that agreed with the
// reference only by compensating errors in two places would still show here against the
// portable kernels, which are plain loops.
TEST(QUANT_SUITE, TablesAgreeWithThePortableKernels) {
  const KernelTable& generic = generic_kernels();
  for (const KernelTable* kt : runnable_tables()) {
    if (kt == &generic)
      continue;
    for (DType dt : formats()) {
      const QuantKernels& qk = kt->quantized(dt);
      const QuantKernels& gk = generic.quantized(dt);
      if (!qk.dot || !gk.dot)
        continue;
      const std::int64_t k = 2048;
      const auto w = make_rows(dt, k, 8, true, 99);
      const auto act = make_activations(generic, k, 100);
      const std::size_t row = row_bytes(dt, k);
      for (int r = 0; r < 8; ++r) {
        const std::uint8_t* wr = w.data() + row * static_cast<std::size_t>(r);
        const Reference ref = reference(dt, wr, act.data(), k);
        EXPECT_NEAR(qk.dot(wr, act.data(), static_cast<int>(k / kQuantBlock)),
                    gk.dot(wr, act.data(), static_cast<int>(k / kQuantBlock)), tolerance(ref))
            << kt->name << " vs generic, " << dtype_name(dt) << " row " << r;
      }
    }
  }
}

// The f32 GEMM prefill path dequantizes weight rows with dequantize_row_fast: bit for bit the
// definition, every f16 scale pattern that is finite (subnormals and negatives included).
#if !defined(HALYARD_NEON_EMULATED)
TEST(QUANT_SUITE, DequantizeRowFastIsBitExact) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f"))
    GTEST_SKIP() << "dequantize_row_fast's vector paths need AVX-512F";
#endif
  for (DType dt : formats()) {
    const std::int64_t k = 4096;
    auto w = make_rows(dt, k, 1, true, 7);
    const auto& info = dtype_info(dt);
    std::mt19937_64 rng(8);
    for (std::size_t i = 0; i < w.size() / info.block_bytes; ++i) {
      for (std::size_t off : f16_fields(dt)) {
        std::uint16_t h;
        do {
          h = static_cast<std::uint16_t>(rng());
        } while ((h & 0x7c00) == 0x7c00);  // not inf or NaN
        std::memcpy(w.data() + i * info.block_bytes + off, &h, 2);
      }
    }
    std::vector<float> want(static_cast<std::size_t>(k)), got(static_cast<std::size_t>(k));
    dequantize_row(dt, w.data(), want.data(), k);
    dequantize_row_fast(dt, w.data(), got.data(), k);
    for (std::int64_t i = 0; i < k; ++i) {
      std::uint32_t a, b;
      std::memcpy(&a, &want[static_cast<std::size_t>(i)], 4);
      std::memcpy(&b, &got[static_cast<std::size_t>(i)], 4);
      ASSERT_EQ(a, b) << dtype_name(dt) << " element " << i << ": " << want[static_cast<std::size_t>(i)] << " vs "
                      << got[static_cast<std::size_t>(i)];
    }
  }
}
#endif

}  // namespace
}  // namespace halyard::cpu
