// Element i of a weight row in its GGUF encoding, as an f32: the one decoder of every weight
// dtype that the CUDA and HIP kernels (ops.cu) read weights through. It is plain C++ with the
// qualifiers in a macro, so the host compiler builds it too and a host unit test
// (tests/unit/gpu/weight_decode_test.cpp) checks it bit for bit against dequantize_row, the
// definition (hal/src/dtype.cpp, hal/src/kquants.cpp), with no GPU. Layouts come from
// hal/blocks.h (offsetof, sizeof); bytes are read one at a time because a weight buffer may be
// bound at any offset.
//
// Bit-exactness: each value is computed with the reference's operations in the reference's order
// (scale products first, then one multiply and one add or subtract per weight). On NVIDIA the
// products go through the _rn intrinsics so that nvcc cannot contract them into fused
// multiply-adds; clang (hipcc and the host compiler) builds these sources with
// -ffp-contract=off, where a plain operator is one correctly rounded operation.
//
// A decode reads the scales of the element's block (or sub-block) each time: the kernels walk
// rows element by element, and neighbouring threads read the same block, so those reads hit
// the cache. Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "halyard/hal/blocks.h"
#include "halyard/hal/dtype.h"

#if defined(__CUDACC__) || defined(__HIP__)
#define HALYARD_HOST_DEVICE __host__ __device__
#else
#define HALYARD_HOST_DEVICE
#endif

namespace halyard::weight_decode {

HALYARD_HOST_DEVICE inline float bits_to_float(std::uint32_t u) {
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

HALYARD_HOST_DEVICE inline float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
HALYARD_HOST_DEVICE inline float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
HALYARD_HOST_DEVICE inline float sub_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}

HALYARD_HOST_DEVICE inline std::uint32_t u16_at(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8);
}
HALYARD_HOST_DEVICE inline std::uint32_t u32_at(const std::uint8_t* p) {
  return u16_at(p) | (u16_at(p + 2) << 16);
}

// IEEE binary16 bits to f32, exactly (as hal's f16_to_f32: subnormals normalised, NaN payloads kept).
HALYARD_HOST_DEVICE inline float half_to_float(std::uint32_t h) {
  const std::uint32_t sign = (h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    if (mant == 0)
      return bits_to_float(sign);
    int e = 1;
    while (!(mant & 0x400u)) {
      mant <<= 1;
      --e;
    }
    mant &= 0x3ffu;
    return bits_to_float(sign | (static_cast<std::uint32_t>(e + 112) << 23) | (mant << 13));
  }
  if (exp == 31)
    return bits_to_float(sign | 0x7f800000u | (mant << 13));
  return bits_to_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

// The f16 at byte `offset` of a block.
HALYARD_HOST_DEVICE inline float f16_field(const std::uint8_t* block, std::size_t offset) {
  return half_to_float(u16_at(block + offset));
}

// The start of the block that holds element i (>= 0), and i's index within it. Unsigned, so that
// the divisions by powers of two are shifts and masks.
template <typename Block, unsigned kElements>
HALYARD_HOST_DEVICE inline const std::uint8_t* block_of(const std::uint8_t* row, int i, int* j) {
  const auto u = static_cast<unsigned>(i);
  *j = static_cast<int>(u % kElements);
  return row + static_cast<std::size_t>(u / kElements) * sizeof(Block);
}

// Q4_K / Q5_K: sub-block s's 6-bit scale and minimum from the 12 packed bytes (hal's k_scale_min).
HALYARD_HOST_DEVICE inline void k_scale_min(const std::uint8_t* q, int s, int* scale, int* min) {
  if (s < 4) {
    *scale = q[s] & 63;
    *min = q[s + 4] & 63;
  } else {
    *scale = (q[s + 4] & 0x0f) | ((q[s - 4] >> 6) << 4);
    *min = (q[s + 4] >> 4) | ((q[s] >> 6) << 4);
  }
}

// Q3_K: sub-block s's 6-bit scale as stored (0..63; the scale is the stored value - 32).
HALYARD_HOST_DEVICE inline int q3_k_scale(const std::uint8_t* packed, int s) {
  const int low = s < 8 ? packed[s] & 0x0f : packed[s - 8] >> 4;
  const int high = (packed[8 + s % 4] >> (2 * (s / 4))) & 3;
  return low | (high << 4);
}

// The low 4 bits of weight j of a 32-weight block: low nibbles hold 0..15, high nibbles 16..31.
HALYARD_HOST_DEVICE inline int nibble32(const std::uint8_t* qs, int j) {
  return j < 16 ? (qs[j] & 15) : (qs[j - 16] >> 4);
}

// Element i of a row (byte address `row`) of dtype DT.
template <DType DT>
struct Weights;

template <>
struct Weights<DType::kF32> {
  static HALYARD_HOST_DEVICE float load(const std::uint8_t* row, int i) {
    return reinterpret_cast<const float*>(row)[i];  // f32 weights are bound 4-aligned (the backend checks)
  }
};
template <>
struct Weights<DType::kF16> {
  static HALYARD_HOST_DEVICE float load(const std::uint8_t* row, int i) {
    return half_to_float(u16_at(row + 2 * static_cast<std::size_t>(i)));
  }
};
template <>
struct Weights<DType::kBF16> {
  static HALYARD_HOST_DEVICE float load(const std::uint8_t* row, int i) {
    return bits_to_float(u16_at(row + 2 * static_cast<std::size_t>(i)) << 16);
  }
};

template <>
struct Weights<DType::kQ8_0> {  // x = q * d
  static HALYARD_HOST_DEVICE float load(const std::uint8_t* row, int i) {
    int j;
    const std::uint8_t* b = block_of<BlockQ8_0, kQuantBlock>(row, i, &j);
    const int q = static_cast<std::int8_t>(b[offsetof(BlockQ8_0, qs) + j]);
    return mul_rn(static_cast<float>(q), f16_field(b, offsetof(BlockQ8_0, d)));
  }
};
template <>
struct Weights<DType::kQ4_0> {  // x = (q - 8) * d
  static HALYARD_HOST_DEVICE float load(const std::uint8_t* row, int i) {
    int j;
    const std::uint8_t* b = block_of<BlockQ4_0, kQuantBlock>(row, i, &j);
    const int q = nibble32(b + offsetof(BlockQ4_0, qs), j);
    return mul_rn(static_cast<float>(q - 8), f16_field(b, offsetof(BlockQ4_0, d)));
  }
};
template <>
struct Weights<DType::kQ4_1> {  // x = q * d + m
  static HALYARD_HOST_DEVICE float load(const std::uint8_t* row, int i) {
    int j;
    const std::uint8_t* b = block_of<BlockQ4_1, kQuantBlock>(row, i, &j);
    const int q = nibble32(b + offsetof(BlockQ4_1, qs), j);
    return add_rn(mul_rn(static_cast<float>(q), f16_field(b, offsetof(BlockQ4_1, d))),
                  f16_field(b, offsetof(BlockQ4_1, m)));
  }
};
template <>
struct Weights<DType::kQ5_0> {  // x = (q - 16) * d, bit 4 of weight j in bit j of qh
  static HALYARD_HOST_DEVICE float load(const std::uint8_t* row, int i) {
    int j;
    const std::uint8_t* b = block_of<BlockQ5_0, kQuantBlock>(row, i, &j);
    const int q = nibble32(b + offsetof(BlockQ5_0, qs), j) |
                  static_cast<int>(((u32_at(b + offsetof(BlockQ5_0, qh)) >> j) & 1u) << 4);
    return mul_rn(static_cast<float>(q - 16), f16_field(b, offsetof(BlockQ5_0, d)));
  }
};
template <>
struct Weights<DType::kQ5_1> {  // x = q * d + m, q as Q5_0
  static HALYARD_HOST_DEVICE float load(const std::uint8_t* row, int i) {
    int j;
    const std::uint8_t* b = block_of<BlockQ5_1, kQuantBlock>(row, i, &j);
    const int q = nibble32(b + offsetof(BlockQ5_1, qs), j) |
                  static_cast<int>(((u32_at(b + offsetof(BlockQ5_1, qh)) >> j) & 1u) << 4);
    return add_rn(mul_rn(static_cast<float>(q), f16_field(b, offsetof(BlockQ5_1, d))),
                  f16_field(b, offsetof(BlockQ5_1, m)));
  }
};

// The K-quants: j is the weight's index in its super-block of 256; blocks.h gives each layout.
template <>
struct Weights<DType::kQ2_K> {  // x = (d * sc) * q - (dmin * m) per sub-block of 16
  static HALYARD_HOST_DEVICE float load(const std::uint8_t* row, int i) {
    int j;
    const std::uint8_t* b = block_of<BlockQ2_K, kSuperBlock>(row, i, &j);
    const int packed = b[offsetof(BlockQ2_K, scales) + j / 16];
    const int q = (b[offsetof(BlockQ2_K, qs) + 32 * (j / 128) + j % 32] >> (2 * ((j / 32) % 4))) & 3;
    const float dl = mul_rn(f16_field(b, offsetof(BlockQ2_K, d)), static_cast<float>(packed & 0x0f));
    const float ml = mul_rn(f16_field(b, offsetof(BlockQ2_K, dmin)), static_cast<float>(packed >> 4));
    return sub_rn(mul_rn(dl, static_cast<float>(q)), ml);
  }
};
template <>
struct Weights<DType::kQ3_K> {  // x = (d * (s - 32)) * (q - 4), bit 2 of q from hmask
  static HALYARD_HOST_DEVICE float load(const std::uint8_t* row, int i) {
    int j;
    const std::uint8_t* b = block_of<BlockQ3_K, kSuperBlock>(row, i, &j);
    const int h = j / 128, pair = (j / 32) % 4, l = j % 32;
    const int low = (b[offsetof(BlockQ3_K, qs) + 32 * h + l] >> (2 * pair)) & 3;
    const bool high = (b[offsetof(BlockQ3_K, hmask) + l] >> (4 * h + pair)) & 1;
    const float dl = mul_rn(f16_field(b, offsetof(BlockQ3_K, d)),
                            static_cast<float>(q3_k_scale(b + offsetof(BlockQ3_K, scales), j / 16) - 32));
    return mul_rn(dl, static_cast<float>(low - (high ? 0 : 4)));
  }
};
template <>
struct Weights<DType::kQ4_K> {  // x = (d * sc) * q - (dmin * m) per sub-block of 32
  static HALYARD_HOST_DEVICE float load(const std::uint8_t* row, int i) {
    int j;
    const std::uint8_t* b = block_of<BlockQ4_K, kSuperBlock>(row, i, &j);
    const int s = j / 32, byte = b[offsetof(BlockQ4_K, qs) + 32 * (j / 64) + j % 32];
    const int q = s % 2 ? byte >> 4 : byte & 0x0f;
    int sc, m;
    k_scale_min(b + offsetof(BlockQ4_K, scales), s, &sc, &m);
    const float dl = mul_rn(f16_field(b, offsetof(BlockQ4_K, d)), static_cast<float>(sc));
    const float ml = mul_rn(f16_field(b, offsetof(BlockQ4_K, dmin)), static_cast<float>(m));
    return sub_rn(mul_rn(dl, static_cast<float>(q)), ml);
  }
};
template <>
struct Weights<DType::kQ5_K> {  // as Q4_K, bit 4 of q in bit s of qh[j % 32]
  static HALYARD_HOST_DEVICE float load(const std::uint8_t* row, int i) {
    int j;
    const std::uint8_t* b = block_of<BlockQ5_K, kSuperBlock>(row, i, &j);
    const int s = j / 32, l = j % 32, byte = b[offsetof(BlockQ5_K, qs) + 32 * (j / 64) + l];
    const int q = (s % 2 ? byte >> 4 : byte & 0x0f) | (((b[offsetof(BlockQ5_K, qh) + l] >> s) & 1) << 4);
    int sc, m;
    k_scale_min(b + offsetof(BlockQ5_K, scales), s, &sc, &m);
    const float dl = mul_rn(f16_field(b, offsetof(BlockQ5_K, d)), static_cast<float>(sc));
    const float ml = mul_rn(f16_field(b, offsetof(BlockQ5_K, dmin)), static_cast<float>(m));
    return sub_rn(mul_rn(dl, static_cast<float>(q)), ml);
  }
};
template <>
struct Weights<DType::kQ6_K> {  // x = (d * sc) * (q - 32) per sub-block of 16
  static HALYARD_HOST_DEVICE float load(const std::uint8_t* row, int i) {
    int j;
    const std::uint8_t* b = block_of<BlockQ6_K, kSuperBlock>(row, i, &j);
    const int h = j / 128, quarter = (j / 32) % 4, l = j % 32;
    const int low_byte = b[offsetof(BlockQ6_K, ql) + 64 * h + l + 32 * (quarter % 2)];
    const int low = quarter < 2 ? low_byte & 0x0f : low_byte >> 4;
    const int high = (b[offsetof(BlockQ6_K, qh) + 32 * h + l] >> (2 * quarter)) & 3;
    const int sc = static_cast<std::int8_t>(b[offsetof(BlockQ6_K, scales) + j / 16]);
    const float dl = mul_rn(f16_field(b, offsetof(BlockQ6_K, d)), static_cast<float>(sc));
    return mul_rn(dl, static_cast<float>((low | (high << 4)) - 32));
  }
};

// IQ4_NL / IQ4_XS: a code's int8 level. A local table, since blocks.h's kIQ4Levels (a host
// array) cannot be read in device code; gpu_decode_tests checks every level against it through
// dequantize_row.
HALYARD_HOST_DEVICE inline int iq4_level(int code) {
  constexpr signed char kLevels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  return kLevels[code & 15];
}
template <>
struct Weights<DType::kIQ4_NL> {  // x = d * level[q]
  static HALYARD_HOST_DEVICE float load(const std::uint8_t* row, int i) {
    int j;
    const std::uint8_t* b = block_of<BlockIQ4_NL, kQuantBlock>(row, i, &j);
    const int byte = b[offsetof(BlockIQ4_NL, qs) + j % 16];
    return mul_rn(f16_field(b, offsetof(BlockIQ4_NL, d)), static_cast<float>(iq4_level(j < 16 ? byte : byte >> 4)));
  }
};
template <>
struct Weights<DType::kIQ4_XS> {  // x = (d * (s - 32)) * level[q] per sub-block of 32
  static HALYARD_HOST_DEVICE float load(const std::uint8_t* row, int i) {
    int j;
    const std::uint8_t* b = block_of<BlockIQ4_XS, kSuperBlock>(row, i, &j);
    const int s = j / 32, l = j % 32;
    const int low = (b[offsetof(BlockIQ4_XS, scales_l) + s / 2] >> (4 * (s % 2))) & 15;
    const int high = (static_cast<int>(u16_at(b + offsetof(BlockIQ4_XS, scales_h))) >> (2 * s)) & 3;
    const int byte = b[offsetof(BlockIQ4_XS, qs) + 16 * s + l % 16];
    const float dl = mul_rn(f16_field(b, offsetof(BlockIQ4_XS, d)), static_cast<float>((low | (high << 4)) - 32));
    return mul_rn(dl, static_cast<float>(iq4_level(l < 16 ? byte : byte >> 4)));
  }
};

// Element i of a row of runtime dtype dt (0 for I32, which is no weight): for kernels where the
// decode is not the hot loop (EMBED, COPY to f32), so that one kernel serves every dtype.
HALYARD_HOST_DEVICE inline float load_weight(DType dt, const std::uint8_t* row, int i) {
  switch (dt) {
    case DType::kF32:
      return Weights<DType::kF32>::load(row, i);
    case DType::kF16:
      return Weights<DType::kF16>::load(row, i);
    case DType::kBF16:
      return Weights<DType::kBF16>::load(row, i);
    case DType::kQ8_0:
      return Weights<DType::kQ8_0>::load(row, i);
    case DType::kQ4_0:
      return Weights<DType::kQ4_0>::load(row, i);
    case DType::kQ4_1:
      return Weights<DType::kQ4_1>::load(row, i);
    case DType::kQ5_0:
      return Weights<DType::kQ5_0>::load(row, i);
    case DType::kQ5_1:
      return Weights<DType::kQ5_1>::load(row, i);
    case DType::kQ2_K:
      return Weights<DType::kQ2_K>::load(row, i);
    case DType::kQ3_K:
      return Weights<DType::kQ3_K>::load(row, i);
    case DType::kQ4_K:
      return Weights<DType::kQ4_K>::load(row, i);
    case DType::kQ5_K:
      return Weights<DType::kQ5_K>::load(row, i);
    case DType::kQ6_K:
      return Weights<DType::kQ6_K>::load(row, i);
    case DType::kIQ4_NL:
      return Weights<DType::kIQ4_NL>::load(row, i);
    case DType::kIQ4_XS:
      return Weights<DType::kIQ4_XS>::load(row, i);
    case DType::kI32:
      break;
  }
  return 0.f;
}

}  // namespace halyard::weight_decode
