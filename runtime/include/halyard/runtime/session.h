// A Session runs one sequence through a Model: it owns the KV cache, a queue, and the compiled
// prefill and decode executables (compiled once, replayed every step with new inputs).
// Ownership: borrows the Model, which must outlive it. Thread safety: one thread at a time.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <vector>

#include "halyard/runtime/llama_graph.h"
#include "halyard/runtime/model.h"

namespace halyard::runtime {

class Session {
 public:
  static Result<std::unique_ptr<Session>> create(Model& model);

  // Appends `tokens` at positions n_past()... and returns the logits after the last of them,
  // in a session-owned buffer valid until the next eval (no allocation per step).
  // One token runs the decode graph, more run a prefill graph for that length.
  // A batch that would pass the context length is an out_of_range error and changes nothing.
  Result<std::span<const float>> eval(std::span<const TokenId> tokens);
  int n_past() const { return n_past_; }
  // Forgets the sequence (the cache is overwritten from position 0 on).
  void reset() { n_past_ = 0; }
  Model& model() { return model_; }

 private:
  struct Compiled {
    LlamaGraph plan;
    std::unique_ptr<Executable> exe;
    std::unique_ptr<Buffer> inputs;     // token ids, positions, slots, out_rows back to back
    std::vector<std::int32_t> staging;  // host copy of `inputs`, filled each step
    std::unique_ptr<Buffer> logits;
    std::vector<Binding> bindings;
  };
  explicit Session(Model& model) : model_(model) {}
  Result<Compiled*> compiled_for(int n_tokens);
  // The graph size that evaluates n tokens. On GPU devices prompts are padded to length
  // buckets (powers of two up to 64, then multiples of 64), so a few recorded command buffers
  // serve every prompt; the padding is computed and thrown away.
  int graph_tokens(int n) const;

  Model& model_;
  std::unique_ptr<Queue> queue_;
  std::vector<std::unique_ptr<Buffer>> k_cache_, v_cache_;  // block pools, blocks_per_seq per slot
  std::unique_ptr<Buffer> block_table_;                     // the identity table (one sequence per slot)
  std::map<int, std::unique_ptr<Compiled>> compiled_;
  std::vector<float> logits_;  // the last eval's logits
  int n_past_ = 0;
};

}  // namespace halyard::runtime
