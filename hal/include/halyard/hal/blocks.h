// GGUF block layouts, bit-exact with the file format; every backend reads weights through these
// definitions. Two families: the original formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) are blocks of
// 32 weights with one f16 scale (and minimum); the K-quants (Q2_K .. Q6_K) are super-blocks of
// 256 weights whose sub-blocks of 16 or 32 carry small integer scales (and minimums) that one or
// two f16 super-scales multiply; IQ4_NL (blocks of 32) and IQ4_XS (super-blocks of 256) decode
// 4-bit codes through a fixed table of levels. The elements of a block are stored in element order unless a
// comment says how they interleave; dequantize_row in dtype.cpp is the definition of each.
// Code that walks blocks takes the block size from dtype_info(dtype).block_elements, never from
// these constants alone: a dtype's block is its own.
#pragma once

#include <cstdint>

namespace halyard {

inline constexpr int kQuantBlock = 32;   // elements per block of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0
inline constexpr int kSuperBlock = 256;  // elements per K-quant super-block (ggml's QK_K)
inline constexpr int kKScaleBytes = 12;  // Q4_K / Q5_K: 8 six-bit scales and 8 six-bit minimums

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

// x = (q - 16) * d with 5-bit q: the low 4 bits in nibbles as Q4_0 (weights 0..15 low, 16..31
// high), bit 4 of weight j in bit j of qh (a little-endian u32 stored as bytes: no alignment).
struct BlockQ5_0 {
  std::uint16_t d;
  std::uint8_t qh[4];
  std::uint8_t qs[kQuantBlock / 2];
};
static_assert(sizeof(BlockQ5_0) == 22);

// x = q * d + m; q as Q5_0
struct BlockQ5_1 {
  std::uint16_t d;
  std::uint16_t m;
  std::uint8_t qh[4];
  std::uint8_t qs[kQuantBlock / 2];
};
static_assert(sizeof(BlockQ5_1) == 24);

// 16 sub-blocks of 16: x = d * (scales[s] & 15) * q - dmin * (scales[s] >> 4), q in 0..3.
// Weight e = 128 h + 32 j + l (h < 2, j < 4, l < 32) is bits 2j..2j+1 of qs[32 h + l].
struct BlockQ2_K {
  std::uint8_t scales[kSuperBlock / 16];
  std::uint8_t qs[kSuperBlock / 4];
  std::uint16_t d;
  std::uint16_t dmin;
};
static_assert(sizeof(BlockQ2_K) == 84);

// 16 sub-blocks of 16: x = d * (s - 32) * (q - 4), q in 0..7, s a 6-bit scale. Weight
// e = 128 h + 32 j + l has q's low two bits in bits 2j..2j+1 of qs[32 h + l] and its bit 2 in
// bit 4h + j of hmask[l]. Scale s: low 4 bits in scales[s % 8] (low nibble for s < 8, high
// nibble after), high 2 bits in bits 2 (s / 4)..+1 of scales[8 + s % 4].
struct BlockQ3_K {
  std::uint8_t hmask[kSuperBlock / 8];
  std::uint8_t qs[kSuperBlock / 4];
  std::uint8_t scales[12];
  std::uint16_t d;
};
static_assert(sizeof(BlockQ3_K) == 110);

// 8 sub-blocks of 32: x = d * sc[s] * q - dmin * m[s], q in 0..15, sc and m 6-bit (packed in
// scales as k_scale_min() in dtype.cpp reads them). Chunk c < 4 of qs (32 bytes) holds
// sub-block 2c in its low nibbles and 2c + 1 in its high nibbles.
struct BlockQ4_K {
  std::uint16_t d;
  std::uint16_t dmin;
  std::uint8_t scales[kKScaleBytes];
  std::uint8_t qs[kSuperBlock / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

// As Q4_K with 5-bit q: bit 4 of the weight at byte l of chunk c is bit 2c (low nibble) or
// 2c + 1 (high nibble) of qh[l].
struct BlockQ5_K {
  std::uint16_t d;
  std::uint16_t dmin;
  std::uint8_t scales[kKScaleBytes];
  std::uint8_t qh[kSuperBlock / 8];
  std::uint8_t qs[kSuperBlock / 2];
};
static_assert(sizeof(BlockQ5_K) == 176);

// 16 sub-blocks of 16: x = d * scales[s] * (q - 32), q in 0..63. In half h (128 weights), weight
// 32 i + l (i < 4, l < 32) has its low 4 bits in ql[64 h + l + 32 (i & 1)] (low nibble for i < 2,
// high after) and its high 2 bits in bits 2i..2i+1 of qh[32 h + l].
struct BlockQ6_K {
  std::uint8_t ql[kSuperBlock / 2];
  std::uint8_t qh[kSuperBlock / 4];
  std::int8_t scales[kSuperBlock / 16];
  std::uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210);

// The non-linear 4-bit formats: a 4-bit code selects one of 16 fixed int8 levels (ggml's
// kvalues_iq4nl), denser near zero where trained weights are; the levels are not symmetric
// (-127 .. 113), so a block's scale may be negative. Backends look the codes up with a byte
// shuffle (vpshufb, vqtbl1q) on this table.
inline constexpr std::int8_t kIQ4Levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                               1,    13,   25,  38,  53,  69,  89,  113};

// x = d * kIQ4Levels[q]; q as Q4_0 (weights 0..15 in the low nibbles, 16..31 in the high).
struct BlockIQ4_NL {
  std::uint16_t d;
  std::uint8_t qs[kQuantBlock / 2];
};
static_assert(sizeof(BlockIQ4_NL) == 18);

// 8 sub-blocks of 32: x = (d * (s - 32)) * kIQ4Levels[q], s a 6-bit code: its low 4 bits in
// scales_l[j / 2] (low nibble for even j), its high 2 bits in bits 2j..2j+1 of scales_h.
// Sub-block j's codes are qs[16 j .. 16 j + 16) laid out as IQ4_NL's.
struct BlockIQ4_XS {
  std::uint16_t d;
  std::uint16_t scales_h;
  std::uint8_t scales_l[kSuperBlock / 64];
  std::uint8_t qs[kSuperBlock / 2];
};
static_assert(sizeof(BlockIQ4_XS) == 136);

}  // namespace halyard
