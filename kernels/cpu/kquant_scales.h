// Q3_K's packed sub-block scales, unpacked to one byte per sub-block with whole-word operations
// (Q4_K / Q5_K's are unpack_k_scales in kquants.h) (layouts in blocks.h; hal/src/kquants.cpp reads them one at a time,
// and is the definition). Every kernel table unpacks a super-block's scales through these, once per weight row and
// super-block, so they stay off the per-weight path.
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

}  // namespace halyard::cpu
