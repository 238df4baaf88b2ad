// The closed op catalogue. Every op has a reference implementation (cpu-reference/) and
// conformance cases; its semantics are defined here, once.
//
// Activations are 2-D F32 tensors [features, tokens]; multi-head tensors are [head_dim * heads,
// tokens] and ops that need heads take them from OpParams, so no view op is needed.
//
//   EMBED      in: table [d, rows] (any weight dtype), ids I32 [n]     out: F32 [d, n] (row gather)
//   RMS_NORM   in: x F32 [d, n], weight F32 [d]                        out: x / rms(x) * weight
//   MATMUL     in: W [k, m] (any weight dtype), x F32 [k, n]           out: F32 [m, n] = W^T-rows . x
//   ROPE       in: x F32 [hd * heads, n], positions I32 [n]            out: rotated, NORMAL or NEOX pairs
//   ATTENTION  in: q [hd*H, n], k [hd*Hkv, n], v [hd*Hkv, n], k_cache, v_cache F32 [hd*Hkv, ctx, slots],
//                  positions I32 [n], slots I32 [n]                    out: F32 [hd*H, n]
//              first stores k/v of every token at cache[slot][position], then each token attends
//              causally to cache[slot][0..position] (grouped-query: head h reads kv head h / (H/Hkv)).
//   SWIGLU     in: gate, up F32 [d, n]                                 out: silu(gate) * up
//   ADD, MUL   in: a F32 [d, n], b F32 [d, n] or [d] (broadcast)       out: a + b, a * b
//   SOFTMAX    in: x F32 [d, n]                                        out: softmax over d, per token
//   ARGMAX     in: x F32 [d, n]                                        out: I32 [n] (first max wins)
//   COPY       in: x (any dtype)                                       out: same elements, out dtype
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "halyard/hal/status.h"
#include "halyard/hal/tensor.h"

namespace halyard {

enum class OpKind : std::uint8_t {
  kEmbed,
  kRmsNorm,
  kMatmul,
  kRope,
  kAttention,
  kSwiglu,
  kAdd,
  kMul,
  kSoftmax,
  kArgmax,
  kCopy,
};
inline constexpr int kOpCount = 11;

enum class RopeLayout : std::uint8_t {
  kNormal,  // rotate adjacent pairs (2i, 2i+1): GGUF architecture "llama"
  kNeox,    // rotate pairs (i, i + n_dims/2): qwen2, gpt-neox
};

struct OpParams {
  float eps = 1e-5f;            // RMS_NORM
  int head_dim = 0;             // ROPE, ATTENTION
  int n_heads = 0;              // ATTENTION (query heads)
  int n_kv_heads = 0;           // ATTENTION
  float attention_scale = 0.f;  // ATTENTION; 0 means 1/sqrt(head_dim)
  int rope_dims = 0;            // ROPE: leading dims of each head that rotate; 0 means head_dim
  float rope_base = 10000.f;    // ROPE
  RopeLayout rope_layout = RopeLayout::kNormal;
  DType out_dtype = DType::kF32;  // COPY
};

std::string_view op_name(OpKind op);
std::optional<OpKind> op_from_name(std::string_view name);

// Checks the inputs of `op` and returns the descriptor of its output; the single definition of
// each op's shape rules, used by graph builders and backends alike.
Result<TensorDesc> infer_output(OpKind op, std::span<const TensorDesc> inputs, const OpParams& params);

}  // namespace halyard
