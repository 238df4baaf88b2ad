// K-quant (Q4_K, Q5_K, Q6_K) pieces shared by the cpu kernel tables: the portable dot products
// and the unpacking of Q4_K / Q5_K's packed 6-bit sub-block scales and minimums.
// The kernels read super-blocks as they are stored (blocks.h); n_blocks counts activation
// blocks (k / 32), eight per super-block. Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels.h"

namespace halyard::cpu {

inline constexpr int kActPerSuper = kSuperBlock / kQuantBlock;  // activation blocks per super-block

// The twelve bytes of Q4_K / Q5_K scales as two runs of eight bytes: scale_min[0..7] the 6-bit
// scales of sub-blocks 0..7, scale_min[8..15] their minimums. Four 32-bit word operations per
// super-block instead of sixteen byte extractions (the same values as hal's k_scale_min: for
// j < 4 the low 6 bits of bytes j and j + 4, for j >= 4 a nibble of byte j + 4 with the top two
// bits of bytes j - 4 and j).
inline void unpack_k_scales(const std::uint8_t* packed, std::uint8_t scale_min[16]) {
  std::uint32_t w[3];
  std::memcpy(w, packed, 12);
  const std::uint32_t low6 = 0x3f3f3f3fu, low4 = 0x0f0f0f0fu, top2 = 0x03030303u;
  const std::uint32_t out[4] = {
      w[0] & low6,                                         // scales 0..3
      (w[2] & low4) | (((w[0] >> 6) & top2) << 4),         // scales 4..7
      w[1] & low6,                                         // minimums 0..3
      ((w[2] >> 4) & low4) | (((w[1] >> 6) & top2) << 4),  // minimums 4..7
  };
  std::memcpy(scale_min, out, 16);
}

// Portable dot products (the generic table's entries).
float dot_q4_k_generic(const BlockQ4_K* w, const ActBlock* x, int n_blocks);
float dot_q5_k_generic(const BlockQ5_K* w, const ActBlock* x, int n_blocks);
float dot_q6_k_generic(const BlockQ6_K* w, const ActBlock* x, int n_blocks);

}  // namespace halyard::cpu
