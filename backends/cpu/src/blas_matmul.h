// Prefill matrix products through OpenBLAS's sgemm: weight rows are dequantized to f32 a band at
// a time (in parallel on the device's pool) and multiplied with the f32 activations. Used where
// it measures faster than the integer tiles (see cpu_ops.cpp); absent when OpenBLAS is not found.
#pragma once

#include "cpu_ops.h"

namespace halyard::cpu {

bool blas_available();
void blas_set_threads(int threads);
Status blas_matmul(CpuContext& ctx, const HostTensor& w, const HostTensor& x, const HostTensor& out);

}  // namespace halyard::cpu
