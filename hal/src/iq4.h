// IQ4_NL (blocks of 32) and IQ4_XS (super-blocks of 256): dequantization bit-exact to GGUF's
// definitions and a deterministic reference quantizer that searches each scale for the least
// weighted squared error. dtype.cpp dispatches to these; nothing outside hal/src includes this
// header. Thread safety: pure functions.
#pragma once

#include <cstdint>

#include "halyard/hal/blocks.h"

namespace halyard::detail {

void dequantize_iq4_nl(const BlockIQ4_NL* b, float* y, std::int64_t nblocks);
void dequantize_iq4_xs(const BlockIQ4_XS* b, float* y, std::int64_t nblocks);

void quantize_iq4_nl(const float* x, BlockIQ4_NL* b, std::int64_t nblocks);
void quantize_iq4_xs(const float* x, BlockIQ4_XS* b, std::int64_t nblocks);

// The 6-bit code (0..63) of IQ4_XS sub-block j; the sub-block's scale is d * (code - 32).
int iq4_xs_scale_code(const BlockIQ4_XS& b, int j);

}  // namespace halyard::detail
