// Builds the Llama-family forward pass as HAL graphs: a prefill graph (n tokens, logits for the
// rows named by out_rows) and a decode graph (one token for each of n sequences). Per-step
// values are input tensors, so a compiled graph is replayed step after step.
#pragma once

#include <string>
#include <vector>

#include "halyard/hal/graph.h"
#include "halyard/runtime/model.h"

namespace halyard::runtime {

// The paged KV cache (ops.h, ATTENTION): positions per block, and the blocks one sequence's
// context needs (the context rounded up to whole blocks). The pool holds that many blocks for
// each of the model's sequences, so a sequence can always grow to the full context.
inline constexpr int kKvBlockSize = 16;
inline int kv_blocks_per_sequence(const Model& model) {
  return (model.context_length() + kKvBlockSize - 1) / kKvBlockSize;
}

// The KV cache a graph reads and writes: the pools' dtype and block count and the block table's
// shape. The default, kv_layout(model), is one full context for each of the model's slots.
struct KvLayout {
  DType dtype = DType::kF32;
  int block_size = kKvBlockSize;
  int n_blocks = 0;
  int max_blocks_per_sequence = 0;
  int n_sequences = 0;
};
inline KvLayout kv_layout(const Model& model) {
  const int per_seq = kv_blocks_per_sequence(model);
  return KvLayout{DType::kF32, kKvBlockSize, per_seq * model.max_sequences(), per_seq, model.max_sequences()};
}

// What a step's graph gives back for its output rows: the logits, or only each row's argmax
// (the ARGMAX op, first maximum wins), so greedy decoding downloads n_outputs ids instead of
// n_outputs x vocab floats.
enum class StepOutput { kLogits, kArgmax };

struct LlamaGraph {
  Graph graph;
  int n_tokens = 0;
  int n_outputs = 0;
  StepOutput output = StepOutput::kLogits;
  TensorId token_ids = -1;                                // i32 [n_tokens]
  TensorId positions = -1;                                // i32 [n_tokens]
  TensorId slots = -1;                                    // i32 [n_tokens]: KV-cache slot (sequence) of each token
  TensorId out_rows = -1;                                 // i32 [n_outputs]: which tokens produce logits
  TensorId block_table = -1;                              // i32 [blocks per sequence, sequences]
  TensorId logits = -1;                                   // f32 [vocab, n_outputs]; an output in kLogits
  TensorId argmax = -1;                                   // i32 [n_outputs]; kArgmax only (its output)
  std::vector<std::pair<TensorId, std::string>> weights;  // graph tensor -> model weight name
  std::vector<TensorId> k_cache, v_cache;                 // per layer, f32 [kv_dim, block size, blocks]
};

// n_outputs tokens' logits; prefill uses 1 (the last token), decode one per sequence.
// Tokens may come from any sequences at any positions (each token's slot and position are
// inputs), so one graph serves prefill chunks and decode tokens of many sequences mixed.
// With StepOutput::kArgmax the logits stay inside the graph and ARGMAX over them is the output;
// the caller checks that the device supports ARGMAX.
Result<LlamaGraph> build_llama_graph(const Model& model, int n_tokens, int n_outputs, const KvLayout& kv,
                                     StepOutput output = StepOutput::kLogits);
inline Result<LlamaGraph> build_llama_graph(const Model& model, int n_tokens, int n_outputs) {
  return build_llama_graph(model, n_tokens, n_outputs, kv_layout(model));
}
inline Result<LlamaGraph> build_prefill_graph(const Model& model, int n_tokens) {
  return build_llama_graph(model, n_tokens, 1);
}
inline Result<LlamaGraph> build_decode_graph(const Model& model, int n_sequences) {
  return build_llama_graph(model, n_sequences, n_sequences);
}

}  // namespace halyard::runtime
