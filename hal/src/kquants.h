// The K-quant formats (Q2_K .. Q6_K, super-blocks of 256) and the 5-bit formats (Q5_0, Q5_1):
// dequantization bit-exact to GGUF's definitions and a deterministic reference quantizer.
// dtype.cpp dispatches to these; nothing outside hal/src includes this header.
// Thread safety: pure functions.
#pragma once

#include <cstdint>

#include "halyard/hal/blocks.h"

namespace halyard::detail {

void dequantize_q5_0(const BlockQ5_0* b, float* y, std::int64_t nblocks);
void dequantize_q5_1(const BlockQ5_1* b, float* y, std::int64_t nblocks);
void dequantize_q2_k(const BlockQ2_K* b, float* y, std::int64_t nblocks);
void dequantize_q3_k(const BlockQ3_K* b, float* y, std::int64_t nblocks);
void dequantize_q4_k(const BlockQ4_K* b, float* y, std::int64_t nblocks);
void dequantize_q5_k(const BlockQ5_K* b, float* y, std::int64_t nblocks);
void dequantize_q6_k(const BlockQ6_K* b, float* y, std::int64_t nblocks);

void quantize_q5_0(const float* x, BlockQ5_0* b, std::int64_t nblocks);
void quantize_q5_1(const float* x, BlockQ5_1* b, std::int64_t nblocks);
void quantize_q2_k(const float* x, BlockQ2_K* b, std::int64_t nblocks);
void quantize_q3_k(const float* x, BlockQ3_K* b, std::int64_t nblocks);
void quantize_q4_k(const float* x, BlockQ4_K* b, std::int64_t nblocks);
void quantize_q5_k(const float* x, BlockQ5_K* b, std::int64_t nblocks);
void quantize_q6_k(const float* x, BlockQ6_K* b, std::int64_t nblocks);

// Q4_K / Q5_K: sub-block j's 6-bit scale and minimum from the 12 packed bytes.
void k_scale_min(int j, const std::uint8_t* packed, int* scale, int* min);

// The signed value of largest magnitude among x[0..n) (the first one on a tie): Q4_0 and Q5_0
// map it to their most negative level so the whole range is used.
float signed_absmax(const float* x, int n);

}  // namespace halyard::detail
