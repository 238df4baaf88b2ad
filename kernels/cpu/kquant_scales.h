// The packed sub-block scales of the K-quant formats, unpacked to one byte per sub-block with
// whole-word operations (layouts in blocks.h; hal/src/kquants.cpp reads them one at a time, and
// is the definition). Every kernel table unpacks a super-block's scales through these, once per
// weight row and super-block, so they stay off the per-weight path.
#pragma once

#include <cstdint>
#include <cstring>

namespace halyard::cpu {

// Q3_K: out[s] = the stored 6-bit scale of sub-block s (0..63; its value is out[s] - 32).
// Sub-block s takes its low 4 bits from byte s % 8 (low nibble for s < 8, high after) and its
// high 2 bits from bits 2 (s / 4) of byte 8 + s % 4: word by word, sub-blocks 4w .. 4w + 3 take
// their low nibbles from word w % 2 (shifted by 4 for w >= 2) and their high bits from word 2
// shifted by 2w.
inline void q3_k_scales(const std::uint8_t* packed, std::uint8_t out[16]) {
  std::uint32_t a[3];
  std::memcpy(a, packed, 12);
  constexpr std::uint32_t kLow = 0x0f0f0f0f, kHigh = 0x03030303;
  const std::uint32_t u[4] = {
      (a[0] & kLow) | ((a[2] & kHigh) << 4),
      (a[1] & kLow) | (((a[2] >> 2) & kHigh) << 4),
      ((a[0] >> 4) & kLow) | (((a[2] >> 4) & kHigh) << 4),
      ((a[1] >> 4) & kLow) | (((a[2] >> 6) & kHigh) << 4),
  };
  std::memcpy(out, u, 16);
}

// Q4_K / Q5_K: the eight 6-bit scales (sc[j]) and minimums (mn[j]) of the 12 packed bytes.
// Sub-blocks 0-3 keep theirs in the low 6 bits of bytes 0-3 (scales) and 4-7 (minimums);
// sub-blocks 4-7 take 4 bits from byte j + 4 (scale low nibble, minimum high nibble) and their
// top 2 bits from the top of bytes j - 4 (scales) and j (minimums).
inline void k_scales_mins(const std::uint8_t* packed, std::uint8_t sc[8], std::uint8_t mn[8]) {
  std::uint32_t a[3];
  std::memcpy(a, packed, 12);
  constexpr std::uint32_t k6 = 0x3f3f3f3f, k4 = 0x0f0f0f0f, k2 = 0x03030303;
  const std::uint32_t s[2] = {a[0] & k6, (a[2] & k4) | (((a[0] >> 6) & k2) << 4)};
  const std::uint32_t m[2] = {a[1] & k6, ((a[2] >> 4) & k4) | (((a[1] >> 6) & k2) << 4)};
  std::memcpy(sc, s, 8);
  std::memcpy(mn, m, 8);
}

}  // namespace halyard::cpu
