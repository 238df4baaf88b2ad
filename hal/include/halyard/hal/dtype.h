// Element types of tensors, including the GGUF block-quantized formats, bit-exact to their
// GGUF layouts. Numeric values equal the GGUF/ggml type ids so files map without a table.
// Thread safety: all functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace halyard {

enum class DType : std::uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kIQ4_NL = 20,
  kIQ4_XS = 23,
  kI32 = 26,
  kBF16 = 30,
};

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  std::int64_t block_elements;  // elements per block: 1 for plain types, 32 or 256 (K-quants)
  std::size_t block_bytes;      // bytes per block
  bool quantized;
};

// Information on a known dtype; nullopt for an id Halyard does not know.
std::optional<DTypeInfo> dtype_info(std::uint32_t id);
const DTypeInfo& dtype_info(DType dtype);
std::string_view dtype_name(DType dtype);
std::optional<DType> dtype_from_name(std::string_view name);

// Bytes taken by n consecutive elements; n must be a multiple of the block size.
std::size_t row_bytes(DType dtype, std::int64_t n);
// Every dtype but I32: what EMBED and MATMUL accept in the op catalogue. A backend may implement
// fewer; it says so through Device::supports.
bool is_weight_dtype(DType dtype);

// Scalar conversions, round-to-nearest-even, bit-exact with IEEE 754 binary16 / bfloat16.
std::uint16_t f32_to_f16(float value);
float f16_to_f32(std::uint16_t bits);
std::uint16_t f32_to_bf16(float value);
float bf16_to_f32(std::uint16_t bits);

// Convert n elements of `dtype` at `src` to f32. n must be a multiple of the block size.
void dequantize_row(DType dtype, const void* src, float* dst, std::int64_t n);
// Convert n f32 values to `dtype`, deterministically (the same bytes for the same input: plain
// IEEE float operations, no fused multiply-add), each block on its own, so a row may be split at
// any block boundary. Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 follow ggml's reference quantizers byte
// for byte. The K-quants search each super-block's scales, minimums and levels for the least
// squared error under dequantize_row (hal/src/kquant_fit.cpp): their RMSE is below llama.cpp's
// quantizers' without an importance matrix, their bytes differ. They cost more: about 20-40 M
// weights/s on one core against hundreds for the 32-weight formats. IQ4_NL and IQ4_XS search
// each block's scale (and IQ4_XS its super-block scale and sub-block codes) for the least
// weighted squared error under dequantize_row (hal/src/iq4.cpp).
void quantize_row(DType dtype, const float* src, void* dst, std::int64_t n);

}  // namespace halyard
