// Builds the Llama-family forward pass as HAL graphs: a prefill graph (n tokens, logits for the
// rows named by out_rows) and a decode graph (one token for each of n sequences). Per-step
// values are input tensors, so a compiled graph is replayed step after step.
#pragma once

#include <string>
#include <vector>

#include "halyard/hal/graph.h"
#include "halyard/runtime/model.h"

namespace halyard::runtime {

struct LlamaGraph {
  Graph graph;
  int n_tokens = 0;
  int n_outputs = 0;
  TensorId token_ids = -1;                                // i32 [n_tokens]
  TensorId positions = -1;                                // i32 [n_tokens]
  TensorId slots = -1;                                    // i32 [n_tokens]: KV-cache slot (sequence) of each token
  TensorId out_rows = -1;                                 // i32 [n_outputs]: which tokens produce logits
  TensorId logits = -1;                                   // f32 [vocab, n_outputs]
  std::vector<std::pair<TensorId, std::string>> weights;  // graph tensor -> model weight name
  std::vector<TensorId> k_cache, v_cache;                 // per layer, f32 [kv_dim, ctx, slots]
};

// n_outputs tokens' logits; prefill uses 1 (the last token), decode one per sequence.
Result<LlamaGraph> build_llama_graph(const Model& model, int n_tokens, int n_outputs);
inline Result<LlamaGraph> build_prefill_graph(const Model& model, int n_tokens) {
  return build_llama_graph(model, n_tokens, 1);
}
inline Result<LlamaGraph> build_decode_graph(const Model& model, int n_sequences) {
  return build_llama_graph(model, n_sequences, n_sequences);
}

}  // namespace halyard::runtime
