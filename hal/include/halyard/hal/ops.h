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
//   ATTENTION  in: q [hd*H, n], k [hd*Hkv, n], v [hd*Hkv, n],
//                  k_cache, v_cache F32 or F16 [hd*Hkv, block_size, n_blocks] (a pool of blocks,
//                  both one dtype; F16 stores round to nearest even, reads widen to f32 exactly),
//                  positions I32 [n], slots I32 [n], block_table I32 [max_blocks, n_slots]
//                                                                      out: F32 [hd*H, n]
//              paged KV cache: logical position p of sequence s lives in physical row
//              block_table[s][p / block_size] * block_size + p % block_size of the pool (the
//              block size is the caches' ne[1]). First stores k/v of every token (slot s,
//              position p) at that row, then each token attends causally to logical positions
//              0..p of its sequence through the same table (grouped-query: head h reads kv head
//              h / (H/Hkv)). Sequences may share blocks (a common prefix) for reading; a batch
//              that writes into a block another sequence reads, or two tokens writing one row,
//              is the caller's to avoid (copy-on-write lives in the runtime, not here). A position
//              past max_blocks * block_size, a slot outside [0, n_slots) or a block id outside
//              [0, n_blocks) is out_of_range on host backends; device kernels write nothing for
//              that token and give it NaN output.
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
