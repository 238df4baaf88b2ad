// The closed op catalogue. Every op has a reference implementation (cpu-reference/) and
// conformance cases; its semantics are defined here, once.
//
// Activations are 2-D F32 tensors [features, tokens]; multi-head tensors are [head_dim * heads,
// tokens] and ops that need heads take them from OpParams, so no view op is needed.
//
//   EMBED      in: table [d, rows] (any weight dtype), ids I32 [n]     out: F32 [d, n] (row gather)
//              times params.scale (1 by default; Gemma scales its embeddings by sqrt(d))
//   RMS_NORM   in: x F32 [d, n], weight F32 [d] or F32 [g]             out: x / rms(x) * weight
//              params.norm_group g (0: the whole row) normalizes each run of g consecutive
//              elements on its own with the same weight [g]: the per-head Q/K norm of Qwen3 and
//              Gemma 3 with g = head_dim. g must divide d.
//   MATMUL     in: W [k, m] (any weight dtype), x F32 [k, n]           out: F32 [m, n] = W^T-rows . x
//   ROPE       in: x F32 [hd * heads, n], positions I32 [n]            out: rotated, NORMAL or NEOX pairs
//              [, freq_factors F32 [rope_dims / 2]]: pair i turns by pos * base^(-2i/rope_dims)
//              / freq_factors[i] (Llama 3.1's rope_freqs tensor); without it the factors are 1
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
//              params.sliding_window w > 0 (Gemma 3's local layers): a token at position p
//              attends only to positions j with p - w < j <= p; 0 means no window. Cache rows
//              outside every token's window are not read (they may hold anything, NaN included).
//   SWIGLU     in: gate, up F32 [d, n]                                 out: silu(gate) * up
//   GEGLU      in: gate, up F32 [d, n]                                 out: gelu(gate) * up, gelu by
//              its tanh form 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (Gemma's FFN)
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
  kGeglu,
};
inline constexpr int kOpCount = 12;

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
  int norm_group = 0;             // RMS_NORM: normalize runs of this many elements; 0 means the row
  int sliding_window = 0;         // ATTENTION: attend to the last this many positions; 0 means all
  float scale = 1.f;              // EMBED: multiplies the gathered rows
};

// Whether `p` asks `op` for anything beyond its original form (a norm group, a sliding window,
// an embedding scale; ROPE's frequency factors show in its input count instead). Backends that
// lack one of these refuse the graph with this op's name rather than compute the plain form.
bool uses_extended_params(OpKind op, const OpParams& p);

std::string_view op_name(OpKind op);
std::optional<OpKind> op_from_name(std::string_view name);

// Checks the inputs of `op` and returns the descriptor of its output; the single definition of
// each op's shape rules, used by graph builders and backends alike.
Result<TensorDesc> infer_output(OpKind op, std::span<const TensorDesc> inputs, const OpParams& params);

}  // namespace halyard
