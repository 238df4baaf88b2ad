#include "halyard/hal/dtype.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "halyard/hal/blocks.h"
#include "iq4.h"
#include "kquants.h"

namespace halyard {
namespace {

// Names as ggml's type_name (lower case): what GGUF tools print and gguf_dtype_label uses.
constexpr std::array<DTypeInfo, 16> kDTypes{{
    {DType::kF32, "f32", 1, 4, false},
    {DType::kF16, "f16", 1, 2, false},
    {DType::kQ4_0, "q4_0", kQuantBlock, sizeof(BlockQ4_0), true},
    {DType::kQ4_1, "q4_1", kQuantBlock, sizeof(BlockQ4_1), true},
    {DType::kQ5_0, "q5_0", kQuantBlock, sizeof(BlockQ5_0), true},
    {DType::kQ5_1, "q5_1", kQuantBlock, sizeof(BlockQ5_1), true},
    {DType::kQ8_0, "q8_0", kQuantBlock, sizeof(BlockQ8_0), true},
    {DType::kQ2_K, "q2_k", kSuperBlock, sizeof(BlockQ2_K), true},
    {DType::kQ3_K, "q3_k", kSuperBlock, sizeof(BlockQ3_K), true},
    {DType::kQ4_K, "q4_k", kSuperBlock, sizeof(BlockQ4_K), true},
    {DType::kQ5_K, "q5_k", kSuperBlock, sizeof(BlockQ5_K), true},
    {DType::kQ6_K, "q6_k", kSuperBlock, sizeof(BlockQ6_K), true},
    {DType::kIQ4_NL, "iq4_nl", kQuantBlock, sizeof(BlockIQ4_NL), true},
    {DType::kIQ4_XS, "iq4_xs", kSuperBlock, sizeof(BlockIQ4_XS), true},
    {DType::kI32, "i32", 1, 4, false},
    {DType::kBF16, "bf16", 1, 2, false},
}};

std::uint32_t float_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float bits_float(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void quantize_q8_0(const float* x, BlockQ8_0* out, std::int64_t nblocks) {
  for (std::int64_t b = 0; b < nblocks; ++b, x += kQuantBlock) {
    float amax = 0.f;
    for (int j = 0; j < kQuantBlock; ++j)
      amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    out[b].d = f32_to_f16(d);
    for (int j = 0; j < kQuantBlock; ++j)
      out[b].qs[j] = static_cast<std::int8_t>(std::lround(x[j] * id));
  }
}

void quantize_q4_0(const float* x, BlockQ4_0* out, std::int64_t nblocks) {
  for (std::int64_t b = 0; b < nblocks; ++b, x += kQuantBlock) {
    // The signed value of largest magnitude maps to -8, so the full 4-bit range is used.
    const float max = detail::signed_absmax(x, kQuantBlock);
    const float d = max / -8.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    out[b].d = f32_to_f16(d);
    for (int j = 0; j < kQuantBlock / 2; ++j) {
      const int q0 = std::min(15, static_cast<int>(x[j] * id + 8.5f));
      const int q1 = std::min(15, static_cast<int>(x[j + kQuantBlock / 2] * id + 8.5f));
      out[b].qs[j] = static_cast<std::uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quantize_q4_1(const float* x, BlockQ4_1* out, std::int64_t nblocks) {
  for (std::int64_t b = 0; b < nblocks; ++b, x += kQuantBlock) {
    float lo = x[0], hi = x[0];
    for (int j = 1; j < kQuantBlock; ++j) {
      lo = std::min(lo, x[j]);
      hi = std::max(hi, x[j]);
    }
    const float d = (hi - lo) / 15.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    out[b].d = f32_to_f16(d);
    out[b].m = f32_to_f16(lo);
    for (int j = 0; j < kQuantBlock / 2; ++j) {
      const int q0 = std::min(15, static_cast<int>((x[j] - lo) * id + 0.5f));
      const int q1 = std::min(15, static_cast<int>((x[j + kQuantBlock / 2] - lo) * id + 0.5f));
      out[b].qs[j] = static_cast<std::uint8_t>(q0 | (q1 << 4));
    }
  }
}

}  // namespace

std::optional<DTypeInfo> dtype_info(std::uint32_t id) {
  for (const auto& info : kDTypes) {
    if (static_cast<std::uint32_t>(info.dtype) == id)
      return info;
  }
  return std::nullopt;
}

const DTypeInfo& dtype_info(DType dtype) {
  for (const auto& info : kDTypes) {
    if (info.dtype == dtype)
      return info;
  }
  return kDTypes[0];  // unreachable for a valid enum value
}

std::string_view dtype_name(DType dtype) {
  return dtype_info(dtype).name;
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& info : kDTypes) {
    if (info.name == name)
      return info.dtype;
  }
  return std::nullopt;
}

std::size_t row_bytes(DType dtype, std::int64_t n) {
  const auto& info = dtype_info(dtype);
  return static_cast<std::size_t>(n / info.block_elements) * info.block_bytes;
}

bool is_weight_dtype(DType dtype) {
  return dtype != DType::kI32;
}

std::uint16_t f32_to_f16(float value) {
  const std::uint32_t x = float_bits(value);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  const std::uint32_t exp = (x >> 23) & 0xffu;
  std::uint32_t mant = x & 0x7fffffu;
  if (exp == 0xff) {  // inf or NaN (NaN stays a quiet NaN)
    return static_cast<std::uint16_t>(sign | 0x7c00u | (mant ? 0x200u | (mant >> 13) : 0u));
  }
  const int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 31)
    return static_cast<std::uint16_t>(sign | 0x7c00u);
  if (e <= 0) {  // subnormal half (or zero)
    if (e < -10)
      return static_cast<std::uint16_t>(sign);
    mant |= 0x800000u;
    const int shift = 14 - e;
    std::uint32_t h = mant >> shift;
    const std::uint32_t rem = mant & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u)))
      ++h;
    return static_cast<std::uint16_t>(sign | h);
  }
  std::uint32_t h = (static_cast<std::uint32_t>(e) << 10) | (mant >> 13);
  const std::uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
    ++h;  // a carry may round up to inf: correct
  return static_cast<std::uint16_t>(sign | h);
}

float f16_to_f32(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    if (mant == 0)
      return bits_float(sign);
    int e = 1;
    while (!(mant & 0x400u)) {
      mant <<= 1;
      --e;
    }
    mant &= 0x3ffu;
    return bits_float(sign | (static_cast<std::uint32_t>(e + 127 - 15) << 23) | (mant << 13));
  }
  if (exp == 31)
    return bits_float(sign | 0x7f800000u | (mant << 13));
  return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

std::uint16_t f32_to_bf16(float value) {
  const std::uint32_t x = float_bits(value);
  if ((x & 0x7fffffffu) > 0x7f800000u)
    return static_cast<std::uint16_t>((x >> 16) | 0x40u);
  return static_cast<std::uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

float bf16_to_f32(std::uint16_t bits) {
  return bits_float(static_cast<std::uint32_t>(bits) << 16);
}

void dequantize_row(DType dtype, const void* src, float* dst, std::int64_t n) {
  switch (dtype) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<std::size_t>(n) * 4);
      return;
    case DType::kI32: {
      const auto* s = static_cast<const std::int32_t*>(src);
      for (std::int64_t i = 0; i < n; ++i)
        dst[i] = static_cast<float>(s[i]);
      return;
    }
    case DType::kF16: {
      const auto* s = static_cast<const std::uint16_t*>(src);
      for (std::int64_t i = 0; i < n; ++i)
        dst[i] = f16_to_f32(s[i]);
      return;
    }
    case DType::kBF16: {
      const auto* s = static_cast<const std::uint16_t*>(src);
      for (std::int64_t i = 0; i < n; ++i)
        dst[i] = bf16_to_f32(s[i]);
      return;
    }
    case DType::kQ8_0: {
      const auto* b = static_cast<const BlockQ8_0*>(src);
      for (std::int64_t i = 0; i < n / kQuantBlock; ++i) {
        const float d = f16_to_f32(b[i].d);
        for (int j = 0; j < kQuantBlock; ++j)
          dst[i * kQuantBlock + j] = static_cast<float>(b[i].qs[j]) * d;
      }
      return;
    }
    case DType::kQ4_0: {
      const auto* b = static_cast<const BlockQ4_0*>(src);
      for (std::int64_t i = 0; i < n / kQuantBlock; ++i) {
        const float d = f16_to_f32(b[i].d);
        float* o = dst + i * kQuantBlock;
        for (int j = 0; j < kQuantBlock / 2; ++j) {
          o[j] = static_cast<float>((b[i].qs[j] & 0x0f) - 8) * d;
          o[j + kQuantBlock / 2] = static_cast<float>((b[i].qs[j] >> 4) - 8) * d;
        }
      }
      return;
    }
    case DType::kQ4_1: {
      const auto* b = static_cast<const BlockQ4_1*>(src);
      for (std::int64_t i = 0; i < n / kQuantBlock; ++i) {
        const float d = f16_to_f32(b[i].d);
        const float m = f16_to_f32(b[i].m);
        float* o = dst + i * kQuantBlock;
        for (int j = 0; j < kQuantBlock / 2; ++j) {
          o[j] = static_cast<float>(b[i].qs[j] & 0x0f) * d + m;
          o[j + kQuantBlock / 2] = static_cast<float>(b[i].qs[j] >> 4) * d + m;
        }
      }
      return;
    }
    case DType::kQ5_0:
      detail::dequantize_q5_0(static_cast<const BlockQ5_0*>(src), dst, n / kQuantBlock);
      return;
    case DType::kQ5_1:
      detail::dequantize_q5_1(static_cast<const BlockQ5_1*>(src), dst, n / kQuantBlock);
      return;
    case DType::kQ2_K:
      detail::dequantize_q2_k(static_cast<const BlockQ2_K*>(src), dst, n / kSuperBlock);
      return;
    case DType::kQ3_K:
      detail::dequantize_q3_k(static_cast<const BlockQ3_K*>(src), dst, n / kSuperBlock);
      return;
    case DType::kQ4_K:
      detail::dequantize_q4_k(static_cast<const BlockQ4_K*>(src), dst, n / kSuperBlock);
      return;
    case DType::kQ5_K:
      detail::dequantize_q5_k(static_cast<const BlockQ5_K*>(src), dst, n / kSuperBlock);
      return;
    case DType::kQ6_K:
      detail::dequantize_q6_k(static_cast<const BlockQ6_K*>(src), dst, n / kSuperBlock);
      return;
    case DType::kIQ4_NL:
      detail::dequantize_iq4_nl(static_cast<const BlockIQ4_NL*>(src), dst, n / kQuantBlock);
      return;
    case DType::kIQ4_XS:
      detail::dequantize_iq4_xs(static_cast<const BlockIQ4_XS*>(src), dst, n / kSuperBlock);
      return;
  }
}

void quantize_row(DType dtype, const float* src, void* dst, std::int64_t n) {
  switch (dtype) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<std::size_t>(n) * 4);
      return;
    case DType::kI32: {
      auto* d = static_cast<std::int32_t*>(dst);
      for (std::int64_t i = 0; i < n; ++i)
        d[i] = static_cast<std::int32_t>(src[i]);
      return;
    }
    case DType::kF16: {
      auto* d = static_cast<std::uint16_t*>(dst);
      for (std::int64_t i = 0; i < n; ++i)
        d[i] = f32_to_f16(src[i]);
      return;
    }
    case DType::kBF16: {
      auto* d = static_cast<std::uint16_t*>(dst);
      for (std::int64_t i = 0; i < n; ++i)
        d[i] = f32_to_bf16(src[i]);
      return;
    }
    case DType::kQ8_0:
      quantize_q8_0(src, static_cast<BlockQ8_0*>(dst), n / kQuantBlock);
      return;
    case DType::kQ4_0:
      quantize_q4_0(src, static_cast<BlockQ4_0*>(dst), n / kQuantBlock);
      return;
    case DType::kQ4_1:
      quantize_q4_1(src, static_cast<BlockQ4_1*>(dst), n / kQuantBlock);
      return;
    case DType::kQ5_0:
      detail::quantize_q5_0(src, static_cast<BlockQ5_0*>(dst), n / kQuantBlock);
      return;
    case DType::kQ5_1:
      detail::quantize_q5_1(src, static_cast<BlockQ5_1*>(dst), n / kQuantBlock);
      return;
    case DType::kQ2_K:
      detail::quantize_q2_k(src, static_cast<BlockQ2_K*>(dst), n / kSuperBlock);
      return;
    case DType::kQ3_K:
      detail::quantize_q3_k(src, static_cast<BlockQ3_K*>(dst), n / kSuperBlock);
      return;
    case DType::kQ4_K:
      detail::quantize_q4_k(src, static_cast<BlockQ4_K*>(dst), n / kSuperBlock);
      return;
    case DType::kQ5_K:
      detail::quantize_q5_k(src, static_cast<BlockQ5_K*>(dst), n / kSuperBlock);
      return;
    case DType::kQ6_K:
      detail::quantize_q6_k(src, static_cast<BlockQ6_K*>(dst), n / kSuperBlock);
      return;
    case DType::kIQ4_NL:
      detail::quantize_iq4_nl(src, static_cast<BlockIQ4_NL*>(dst), n / kQuantBlock);
      return;
    case DType::kIQ4_XS:
      detail::quantize_iq4_xs(src, static_cast<BlockIQ4_XS*>(dst), n / kSuperBlock);
      return;
  }
}

}  // namespace halyard
