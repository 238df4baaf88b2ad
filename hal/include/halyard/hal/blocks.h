// GGUF block layouts (32 weights a block). Bit-exact with the file format; every backend reads
// weights through these definitions.
#pragma once

#include <cstdint>

namespace halyard {

inline constexpr int kQuantBlock = 32;

// x = q * d
struct BlockQ8_0 {
  std::uint16_t d;  // f16 scale
  std::int8_t qs[kQuantBlock];
};
static_assert(sizeof(BlockQ8_0) == 34);

// x = (q - 8) * d; low nibbles hold weights 0..15, high nibbles 16..31
struct BlockQ4_0 {
  std::uint16_t d;
  std::uint8_t qs[kQuantBlock / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

// x = q * d + m; same nibble order as Q4_0
struct BlockQ4_1 {
  std::uint16_t d;
  std::uint16_t m;
  std::uint8_t qs[kQuantBlock / 2];
};
static_assert(sizeof(BlockQ4_1) == 20);

}  // namespace halyard
