// The cpu kernel tables' f16 widening against hal's f16_to_f32: every one of the 65536 bit
// patterns, in one call and through the scalar tails. The attention reads f16 KV caches through
// it, so a wrong lane or rounding would show as slightly wrong logits, not as a crash.
#include "kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
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

}  // namespace
}  // namespace halyard::cpu
