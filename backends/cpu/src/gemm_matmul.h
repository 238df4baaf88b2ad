// Prefill matrix products on the cpu backend's own f32 GEMM (AVX-512): each task dequantizes a
// band of weight rows, then multiplies it with the transposed activations in 6 x 64 blocks.
#pragma once

#include "cpu_ops.h"

namespace halyard::cpu {

Status gemm_matmul(CpuContext& ctx, const HostTensor& w, const HostTensor& x, const HostTensor& out);
// The same with bf16 weights and activations (vdpbf16ps, f32 sums): twice the multiply-adds per
// instruction, 8-bit mantissas. Needs AVX512_BF16 (cpu_has_avx512_bf16()).
Status gemm_bf16_matmul(CpuContext& ctx, const HostTensor& w, const HostTensor& x, const HostTensor& out);

}  // namespace halyard::cpu
