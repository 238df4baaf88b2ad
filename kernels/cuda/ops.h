// Launchers for the GPU kernels of kernels/cuda/ops.cu: each enqueues one op of the catalogue
// (hal/ops.h has the semantics) on a stream. Pointers are device pointers; weights are in their
// GGUF encoding. A launch returns the launch error, if any; kernels write NaN where an input is
// out of range (an id, a position, a slot), as the Vulkan kernels do.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gpu.h"
#include "halyard/hal/dtype.h"
#include "halyard/hal/ops.h"

namespace halyard::HALYARD_GPU_NS {

// out[:, t] = table[ids[t]] * scale (params.scale; 1 but for Gemma's sqrt(d)).
gpuError_t launch_embed(DType dt, const void* table, std::size_t row_bytes, std::int64_t rows, const std::int32_t* ids,
                        float* out, std::int64_t d, std::int64_t n, float scale, gpuStream_t s);
// out[t * m + r] = dot(W[r], x[t]); mat-vec for few tokens, tiled for many.
gpuError_t launch_matmul(DType dt, const void* w, std::size_t row_bytes, const float* x, float* out, std::int64_t k,
                         std::int64_t m, std::int64_t n, gpuStream_t s);
// d is the run normalized together: the row, or a norm group (then rows counts every group of
// every token, op_math::norm_runs, and w is [norm_group]).
gpuError_t launch_rms_norm(const float* x, const float* w, float* out, std::int64_t d, std::int64_t rows, float eps,
                           gpuStream_t s);
// The residual ADD followed by the RMS_NORM of its result, in one pass: sum = a + b (written, the
// residual stream needs it later) and out = rms_norm(sum) * w. Same arithmetic as the two ops.
gpuError_t launch_add_rms_norm(const float* a, const float* b, float* sum, const float* w, float* out, std::int64_t d,
                               std::int64_t rows, float eps, gpuStream_t s);
gpuError_t launch_softmax(const float* x, float* out, std::int64_t d, std::int64_t rows, gpuStream_t s);
gpuError_t launch_argmax(const float* x, std::int32_t* out, std::int64_t d, std::int64_t rows, gpuStream_t s);
// op: 0 add, 1 mul, 2 swiglu, 3 geglu; b broadcast over tokens when b_rows == 1.
gpuError_t launch_binary(int op, const float* a, const float* b, float* out, std::int64_t d, std::int64_t rows,
                         bool broadcast, gpuStream_t s);
// factors: ROPE's optional frequency factors f32[rope_dims / 2], or nullptr.
gpuError_t launch_rope(const float* x, const std::int32_t* pos, const float* factors, float* out, std::int64_t row,
                       std::int64_t n, const OpParams& p, gpuStream_t s);
// The paged KV cache's geometry (ops.h, ATTENTION): the pool's block size and block count, the
// block table's blocks per sequence and sequence slots.
struct PagedKv {
  int block_size, n_blocks, max_blocks, slots;
};
// k_cache, v_cache: f32, or f16 bits when f16_cache (stored rounded to nearest even).
// p.sliding_window > 0: each token's walk over keys starts at op_math::window_first.
gpuError_t launch_attention(const float* q, const float* k, const float* v, void* k_cache, void* v_cache,
                            bool f16_cache, const std::int32_t* pos, const std::int32_t* slot,
                            const std::int32_t* block_table, float* out, std::int64_t n, PagedKv kv, const OpParams& p,
                            gpuStream_t s);
// COPY between dtypes, bit-exact with the reference: any weight dtype -> f32; f32 -> f16, bf16,
// q8_0, q4_0, q4_1 (gpuErrorInvalidValue for the other formats: no GPU quantizer for them).
gpuError_t launch_convert(DType from, DType to, const void* in, void* out, std::int64_t d, std::int64_t rows,
                          gpuStream_t s);

}  // namespace halyard::HALYARD_GPU_NS
