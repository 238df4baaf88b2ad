// The cpu kernel tables' f16 widening against hal's f16_to_f32: every one of the 65536 bit
// patterns, in one call and through the scalar tails. The attention reads f16 KV caches through
// it, so a wrong lane or rounding would show as slightly wrong logits, not as a crash.
#include "kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "halyard/hal/dtype.h"

namespace halyard::cpu {
namespace {

std::vector<const KernelTable*> runnable_tables() {
  return runnable_kernel_tables();
}

std::uint32_t bits(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

void expect_widened(const std::uint16_t* h, const float* got, int n, const char* table) {
  for (int i = 0; i < n; ++i) {
    const float want = f16_to_f32(h[i]);
    if (std::isnan(want))
      EXPECT_TRUE(std::isnan(got[i])) << table << ": f16 0x" << std::hex << h[i];
    else
      EXPECT_EQ(bits(got[i]), bits(want)) << table << ": f16 0x" << std::hex << h[i];
  }
}

TEST(CpuKernels, WidenF16IsExactForEveryBitPattern) {
  std::vector<std::uint16_t> h(65536);
  for (std::size_t i = 0; i < h.size(); ++i)
    h[i] = static_cast<std::uint16_t>(i);
  for (const KernelTable* kt : runnable_tables()) {
    std::vector<float> out(h.size(), -1.f);
    kt->widen_f16(h.data(), out.data(), static_cast<int>(h.size()));
    expect_widened(h.data(), out.data(), static_cast<int>(h.size()), kt->name);
    // Lengths and offsets that leave scalar tails; nothing past n is written.
    for (int n : {1, 3, 7, 9, 13, 17}) {
      std::vector<float> part(static_cast<std::size_t>(n) + 1, -7.f);
      kt->widen_f16(h.data() + 0x3c01, part.data(), n);  // 1.0009765625 and on
      expect_widened(h.data() + 0x3c01, part.data(), n, kt->name);
      EXPECT_EQ(part[static_cast<std::size_t>(n)], -7.f) << kt->name << " wrote past n = " << n;
    }
  }
}

// The gated activations against their definitions in double (cpu-reference's forms: silu
// g / (1 + e^-g) and gelu-tanh 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3)))), and every table
// against the portable one: gates from -60 to 60 (the tails where the sigmoid saturates or
// underflows), N(0, 1) gates as models have them, lengths with scalar tails, nothing written
// past n. The conformance tolerance is 1e-7 NMSE; this asks each element for a few ulp of
// relative error, with an absolute floor far below the element's scale |g u| for the negative
// tail, whose exact value underflows.
double gelu_tanh(double g) {
  constexpr double kSqrt2OverPi = 0.79788456080286535588;
  return 0.5 * g * (1.0 + std::tanh(kSqrt2OverPi * (g + 0.044715 * g * g * g)));
}
double silu(double g) {
  return g / (1.0 + std::exp(-g));
}

struct GatedCase {
  const char* name;
  void (*KernelTable::*kernel)(const float*, const float*, float*, int);
  double (*definition)(double);
};
constexpr GatedCase kGated[] = {{"swiglu", &KernelTable::swiglu, silu}, {"geglu", &KernelTable::geglu, gelu_tanh}};

void gated_inputs(std::vector<float>& g, std::vector<float>& u, int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  g.resize(static_cast<std::size_t>(n));
  u.resize(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    // Half the gates sweep [-60, 60], half are N(0, 1).
    g[static_cast<std::size_t>(i)] =
        i % 2 ? -60.f + 120.f * static_cast<float>(i) / static_cast<float>(n) : normal(rng);
    u[static_cast<std::size_t>(i)] = normal(rng);
  }
}

TEST(CpuKernels, GatedActivationsMatchTheirDefinitions) {
  for (const GatedCase& gc : kGated) {
    for (const KernelTable* kt : runnable_tables()) {
      for (int n : {1, 7, 8, 9, 31, 4099}) {
        std::vector<float> g, u;
        gated_inputs(g, u, n, static_cast<unsigned>(n));
        std::vector<float> out(static_cast<std::size_t>(n) + 1, -7.f);
        (kt->*gc.kernel)(g.data(), u.data(), out.data(), n);
        for (int i = 0; i < n; ++i) {
          const double gi = g[static_cast<std::size_t>(i)], ui = u[static_cast<std::size_t>(i)];
          const double want = gc.definition(gi) * ui;
          EXPECT_NEAR(out[static_cast<std::size_t>(i)], want, 1e-6 * std::abs(want) + 1e-12 * std::abs(gi * ui))
              << kt->name << " " << gc.name << " g = " << gi << " u = " << ui;
        }
        EXPECT_EQ(out[static_cast<std::size_t>(n)], -7.f) << kt->name << " " << gc.name << " wrote past n = " << n;
      }
    }
  }
}

TEST(CpuKernels, GatedActivationsAgreeWithThePortableKernels) {
  const KernelTable& generic = generic_kernels();
  const int n = 4099;
  std::vector<float> g, u;
  gated_inputs(g, u, n, 5);
  for (const GatedCase& gc : kGated) {
    std::vector<float> want(static_cast<std::size_t>(n));
    (generic.*gc.kernel)(g.data(), u.data(), want.data(), n);
    for (const KernelTable* kt : runnable_tables()) {
      std::vector<float> got(static_cast<std::size_t>(n));
      (kt->*gc.kernel)(g.data(), u.data(), got.data(), n);
      for (int i = 0; i < n; ++i) {
        const float w = want[static_cast<std::size_t>(i)];
        EXPECT_NEAR(
            got[static_cast<std::size_t>(i)], w,
            2e-6 * std::abs(w) + 1e-12 * std::abs(g[static_cast<std::size_t>(i)] * u[static_cast<std::size_t>(i)]))
            << kt->name << " vs generic, " << gc.name << " g = " << g[static_cast<std::size_t>(i)];
      }
    }
  }
}

}  // namespace
}  // namespace halyard::cpu
