// Quantization types as `halyard quantize` names them, and the rules that pick each tensor's
// format. Mix names follow llama.cpp's (Q4_K_M, ...); the rules are Halyard's own, written from
// the public descriptions of what each mix keeps at more bits:
//  - 1-D tensors (norms, biases) stay F32.
//  - The output projection (output.weight, or token_embd.weight when the embedding is tied)
//    is the most sensitive matrix: Q6_K in every mix below 6 bits, Q8_0 in Q8_0, the mix's own
//    format in F32/F16/BF16 and Q6_K.
//  - Q2_K: attn_v and ffn_down Q4_K, the rest Q2_K. Q3_K_S: Q3_K. Q3_K_M: attn_v, attn_output
//    and ffn_down Q4_K, the rest Q3_K. Q3_K_L: the same three Q5_K. Q4_K_S: Q4_K. Q5_K_S: Q5_K.
//    Q4_K_M / Q5_K_M: attn_v and ffn_down Q6_K in the "sensitive" layers, the rest Q4_K / Q5_K.
//    Sensitive layers: the first and last eighth of the layers (next to the embedding and the
//    output) and every second layer between them: a bit over half of all layers.
//  - IQ4_NL, IQ4_XS: every matrix in that format but the output projection (Q6_K, as above).
//  - Q3_K, Q4_K, Q5_K (no llama.cpp mix has these names here) and any type with `pure` set:
//    every matrix in that one format, the output projection included.
//  - A matrix whose rows (ne[0]) are not a multiple of the chosen format's block takes a
//    compatible format of at least as many bits: Q2_K, Q3_K -> Q4_0; Q4_K -> Q5_0;
//    Q5_K -> Q5_1; Q6_K -> Q8_0; IQ4_XS -> IQ4_NL; and any 32-block format whose block does not fit -> F16.
// Thread safety: all functions are pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "halyard/hal/status.h"
#include "halyard/hal/tensor.h"

namespace halyard::runtime {

struct QuantMix {
  std::string name;             // canonical upper-case name, e.g. "Q4_K_M"
  DType base = DType::kF32;     // the format most matrices get
  std::uint32_t file_type = 0;  // llama_ftype number for general.file_type
  bool pure = false;            // every matrix in `base`
};

// Parses TYPE (case-insensitive). Unknown names are an InvalidArgument listing the known ones.
Result<QuantMix> parse_quant_mix(std::string_view type, bool pure);
// Every accepted TYPE, for help texts: "F32, F16, ..., Q6_K".
std::string quant_mix_names();

// What a tensor is, from its GGUF name.
enum class TensorRole {
  kOther,
  kTokenEmbedding,
  kOutput,
  kAttnQ,
  kAttnK,
  kAttnV,
  kAttnOutput,
  kFfnGate,
  kFfnUp,
  kFfnDown
};
TensorRole tensor_role(std::string_view name);
// The layer index of "blk.N.*", or nullopt.
std::optional<int> tensor_layer(std::string_view name);
// True for the layers whose attn_v / ffn_down Q4_K_M and Q5_K_M keep at Q6_K.
bool is_sensitive_layer(int layer, int n_layers);

// The format the rules want for a tensor before fallbacks, for a model of `n_layers` whose
// embedding is tied to the output (no output.weight) when `tied_embedding`.
DType wanted_dtype(const QuantMix& mix, std::string_view name, const TensorDesc& desc, int n_layers,
                   bool tied_embedding);
// `wanted` itself when ne0 is a multiple of its block, else the fallback (see above).
DType fallback_dtype(DType wanted, std::int64_t ne0);

struct TensorQuantPlan {
  std::string name;
  TensorDesc source;  // the input tensor (dtype as stored)
  DType wanted = DType::kF32;
  DType chosen = DType::kF32;  // wanted, or its fallback
};
// The plan for every tensor, in order. `names` and `descs` are parallel.
std::vector<TensorQuantPlan> plan_quantization(const QuantMix& mix, const std::vector<std::string>& names,
                                               const std::vector<TensorDesc>& descs, int n_layers);

}  // namespace halyard::runtime
