// Prefill matrix products on the cpu backend's own f32 GEMM (AVX-512): each task dequantizes a
// band of weight rows, then multiplies it with the transposed activations in 6 x 64 blocks.
#pragma once

#include "cpu_ops.h"

namespace halyard::cpu {

Status gemm_matmul(CpuContext& ctx, const HostTensor& w, const HostTensor& x, const HostTensor& out);

}  // namespace halyard::cpu
