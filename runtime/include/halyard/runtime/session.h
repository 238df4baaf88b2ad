// A Session runs one sequence through a Model: a thin wrapper over a one-sequence Context
// (context.h), which owns the paged KV cache, the queue and the compiled executables.
// Ownership: borrows the Model, which must outlive it. Thread safety: one thread at a time.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "halyard/runtime/context.h"
#include "halyard/runtime/model.h"

namespace halyard::runtime {

class Session {
 public:
  static Result<std::unique_ptr<Session>> create(Model& model);

  // Appends `tokens` at positions n_past()... and returns the logits after the last of them,
  // in a session-owned buffer valid until the next eval.
  // A batch that would pass the context length is an out_of_range error and changes nothing.
  Result<std::span<const float>> eval(std::span<const TokenId> tokens);
  // As eval, but gives only the argmax of those logits (the first maximum): the context's
  // argmax step, which on a device with ARGMAX downloads one id instead of the logits.
  Result<TokenId> eval_argmax(std::span<const TokenId> tokens);
  int n_past() const { return n_past_; }
  // How many of the first eval's tokens came from the prefix cache (not computed).
  int cached_tokens() const { return cached_tokens_; }
  // Forgets the sequence (its blocks go back to the cache).
  void reset();
  Model& model() { return context_->model(); }
  Context& context() { return *context_; }

 private:
  Session() = default;
  // Feeds tokens (after the prefix cache's share on a fresh sequence) in one step; returns the
  // index in that step of the last token, whose output the caller reads.
  Result<int> feed(std::span<const TokenId> tokens, StepOutput output);
  std::unique_ptr<Context> context_;
  std::vector<BatchToken> batch_;
  int n_past_ = 0;
  int cached_tokens_ = 0;
};

}  // namespace halyard::runtime
