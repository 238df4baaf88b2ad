// A Context runs many sequences of one Model: it owns a paged KvCache, a queue and the
// compiled executables (one per batch shape, compiled once and replayed), and runs a Step: one
// graph run over a batch of tokens from any sequences, prefill chunks and decode tokens mixed,
// each token with its sequence, position and logits flag.
// Ownership: borrows the Model, which must outlive it. Thread safety: one thread at a time,
// except cancel(), which may run on any thread at any time (see there).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <tuple>
#include <utility>
#include <vector>

#include "halyard/runtime/kv_cache.h"
#include "halyard/runtime/llama_graph.h"
#include "halyard/runtime/model.h"

namespace halyard::runtime {

struct ContextOptions {
  int max_sequences = 1;       // sequence ids 0..max_sequences-1
  int n_blocks = 0;            // KV capacity in blocks of kKvBlockSize; 0: every sequence can fill the context
  int max_batch_tokens = 512;  // the most tokens one step takes
  // The KV cache's element type; empty: the model's (ModelOptions::kv_dtype, f16 by default).
  std::optional<DType> kv_dtype;
  // Keep full blocks of finished sequences for attach_prefix (kv_cache.h); off: attach_prefix
  // reuses nothing and released blocks are free at once.
  bool prefix_cache = true;
  // false: an argmax step downloads the logits and takes the argmax on the host, as it does on a
  // device without ARGMAX. The ids are the same either way (the tests compare the two).
  bool argmax_on_device = true;
  // The most compiled graphs (batch shapes) kept; past it the least recently used one is freed
  // before another is compiled. 0: no limit. Host devices run exact batch sizes, so steps that mix
  // prompt chunks with decodes come in many lengths, each a graph with its own intermediate
  // buffers (megabytes at a few hundred tokens): without a limit a server's memory grows with
  // every new length it meets. A freed shape that comes back is compiled again (on host devices,
  // graph building and buffer allocation only).
  int max_compiled_graphs = 0;
};

struct BatchToken {
  TokenId token = 0;
  int seq = 0;
  int pos = 0;  // must continue its sequence: its length, then +1 for each later token of it
  bool logits = false;
};

class Context {
 public:
  static Result<std::unique_ptr<Context>> create(Model& model, const ContextOptions& options);
  // Bytes one cache block of kKvBlockSize positions takes across all layers, K and V, for a
  // cache of `dtype` on this model: what a byte budget is divided by to get blocks.
  static std::uint64_t kv_bytes_per_block(const Model& model, DType dtype);
  std::uint64_t kv_bytes_per_block() const { return kv_bytes_per_block(model_, kv_->options().dtype); }

  // Runs one graph over the batch. Errors change nothing: cache_full when the cache lacks the
  // blocks the batch needs, invalid_argument for a bad token, sequence or position, out_of_range
  // past the context length. The tokens of cancelled sequences (cancel()) are left out first,
  // unchecked: the others run and the status is cancelled, ran() saying which tokens ran; when
  // every token is left out no graph runs (seq_cancel.cpp). With StepOutput::kArgmax the tokens
  // that ask for logits get only their argmax (argmax(i)): the graph ends in ARGMAX and the step
  // downloads one int32 per output instead of vocab floats; where the device lacks ARGMAX (or
  // argmax_on_device is false) the step downloads the logits and takes the same argmax on the host.
  Status step(std::span<const BatchToken> batch, StepOutput output = StepOutput::kLogits);
  // The logits of token i of the last step, valid until the next step; empty when token i did
  // not ask for logits (or is not in the last batch, or was left out) or the step was an argmax
  // step.
  std::span<const float> logits(int i) const;
  // Token i's argmax over the vocabulary (the first maximum) after the last step, of either
  // kind; -1 when token i did not ask for logits (or is not in the last batch, or was left out).
  TokenId argmax(int i) const;
  // Whether argmax steps run ARGMAX on the device (it supports it and argmax_on_device is set).
  bool argmax_on_device() const { return device_argmax_; }
  // Whether token i of the last step ran (its K/V written, its logits computed if asked): false
  // for a cancelled sequence's token, for every token of a step that failed, and past the batch.
  bool ran(int i) const;

  // Cancels a sequence: from the next step that begins after this returns, its tokens are left
  // out of every step (nothing is written for them) until the sequence is emptied (release(),
  // remove(seq, 0, -1), keep() of another, copy() onto it), which clears the flag. A step already
  // running when it is called may still run them. The one call that may run on any thread,
  // concurrently with any other call on the context (it only sets an atomic flag); the context
  // must outlive it. out_of_range for a sequence id outside [0, max_sequences).
  Status cancel(int seq);
  bool cancelled(int seq) const;

  // Sequence operations, limited to the caller's sequence ids (a GPU context's padding
  // sequence is not one of them).
  // Removes positions [p0, p1) (p1 < 0: to the end). A suffix only frees blocks. A middle range
  // is exact: the positions after it are recomputed at their new places (steps of up to
  // max_batch_tokens over the tokens the context recorded), as if the sequence had been fed
  // without the range, so its cost is a prefill of the kept tail. It invalidates the last
  // step's logits. cache_full, changing nothing, when the recomputation could not get its blocks.
  Status remove(int seq, int p0, int p1);
  Status copy(int src, int dst);
  Status keep(int seq);
  // Empties a sequence.
  Status release(int seq) { return remove(seq, 0, -1); }
  // Prefix cache: for an empty `seq` about to be fed `prompt`, shares the cached blocks its
  // prompt starts with (whole blocks, and never the last token, so the step that follows has a
  // token to compute logits for) and returns how many positions it now holds: feed
  // prompt[returned..] next. 0 when nothing matched or the prefix cache is off.
  Result<int> attach_prefix(int seq, std::span<const TokenId> prompt);
  // Blocks reused by attach_prefix, and full prompt blocks it looked up without a match.
  std::int64_t prefix_hits() const { return kv_->prefix_hits(); }
  std::int64_t prefix_misses() const { return kv_->prefix_misses(); }
  // The tokens a sequence holds, in position order (what the steps fed it).
  std::span<const TokenId> tokens(int seq) const;

  // Sequence state (seq_state.cpp): a sequence's tokens and K/V rows as host bytes in a
  // device-neutral, versioned layout (docs/architecture.md, "Sequence state"), to move it to an
  // empty sequence of any context of a model with the same fingerprint, on any device, with
  // either KV dtype (converted on load). state_size: the bytes save_state writes.
  Result<std::size_t> state_size(int seq) const;
  // Writes the state into out (at least state_size bytes; invalid_argument otherwise) and
  // returns its size.
  Result<std::size_t> save_state(int seq, std::span<std::byte> out) const;
  // Loads a state into `seq`, which must be empty (invalid_argument otherwise). Every error
  // changes nothing and names what is wrong: another model (fingerprint), layers or kv_dim
  // (invalid_argument); truncated, trailing or corrupt bytes, a CRC or version mismatch
  // (data_loss); too few free blocks (cache_full); more positions than the context (out_of_range).
  Status load_state(int seq, std::span<const std::byte> in);
  // The cache itself, for lengths and block tables (read-only: sequences change through the
  // context, which keeps their tokens). Its capacity figures count the padding blocks; those
  // below leave them out.
  const KvCache& kv() const { return *kv_; }
  int blocks_total() const { return kv_->blocks_total() - pad_blocks_; }
  int blocks_used() const { return kv_->blocks_used() - pad_blocks_; }
  int blocks_free() const { return kv_->blocks_free(); }
  // Forgets the prefix cache's blocks (kv_cache.h): later prompts reuse nothing cached before.
  void clear_prefix_cache() { kv_->clear_prefix_cache(); }
  // On a host device (cpu, ref), writes zeros over the whole KV cache so its pages are resident
  // before the first request (KvCache::prefault) and returns the bytes written; on other devices
  // the cache is device memory, allocated whole already, and this returns 0. failed_precondition
  // while any sequence or the prefix cache holds a block.
  Result<std::uint64_t> prefault_kv();
  // How many graphs (batch shapes) the context has compiled so far: each is compiled once, on
  // the first step of its shape, and kept.
  std::size_t compiled_graphs() const { return compiled_.size(); }
  Model& model() { return model_; }
  const ContextOptions& options() const { return options_; }
  int context_length() const { return model_.context_length(); }

 private:
  struct Compiled {
    LlamaGraph plan;
    std::unique_ptr<Executable> exe;
    std::unique_ptr<Buffer> inputs;     // token ids, positions, slots, out_rows back to back
    std::vector<std::int32_t> staging;  // host copy of `inputs`
    std::unique_ptr<Buffer> output;     // the logits, or for kArgmax the ids
    std::vector<Binding> bindings;
    std::uint64_t last_use = 0;  // use_clock_ when a step last ran it
  };
  Context(Model& model, const ContextOptions& options) : model_(model), options_(options) {}
  Result<Compiled*> compiled_for(int n_tokens, int n_outputs, StepOutput output);
  // step() on a batch with no cancelled sequence's tokens (or, for replay, regardless of them).
  Status run_batch(std::span<const BatchToken> batch, StepOutput output = StepOutput::kLogits);
  // A cancel applies to what a sequence held: emptying it clears the flag.
  void clear_cancel(int seq) { cancelled_[static_cast<std::size_t>(seq)].store(false); }
  Status check_seq(int seq) const;
  // Feeds `tokens` to `seq` from its current end, in steps of max_batch_tokens, keeping no logits.
  Status replay(int seq, std::span<const TokenId> tokens);
  // The graph size that runs n tokens: n on host devices (they compile in microseconds); on GPU
  // devices a bucket (powers of two up to 64, then multiples of 64), so a few recorded command
  // buffers serve every batch. Padding tokens belong to a hidden sequence (slot max_sequences)
  // whose own blocks they write, one row each, so they touch no real sequence.
  int bucket(int n) const;

  Model& model_;
  ContextOptions options_;
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<Queue> queue_;
  std::unique_ptr<Buffer> block_table_;
  bool pad_ = false;
  int pad_blocks_ = 0;
  int pad_positions_ = 0;
  // Keyed by (tokens, outputs) after bucketing, and by what the graph outputs.
  std::map<std::tuple<int, int, StepOutput>, std::unique_ptr<Compiled>> compiled_;
  std::uint64_t use_clock_ = 0;
  bool device_argmax_ = false;
  StepOutput last_output_ = StepOutput::kLogits;
  std::vector<float> logits_;   // [vocab, outputs of the last step]
  std::vector<TokenId> ids_;    // an argmax step's: [outputs of the last step]
  std::vector<int> output_of_;  // per token of the last step: its logits row, or -1
  // Per-step scratch, kept so a decode step allocates nothing: each sequence's length before
  // the step and after it.
  std::vector<int> old_len_, next_;
  std::uint64_t uploaded_table_version_ = 0;  // the KvCache table version block_table_ holds
  // Per sequence: the tokens at its positions 0..length-1, so a middle-range remove can
  // recompute what follows the range.
  std::vector<std::vector<TokenId>> tokens_;
  std::vector<BatchToken> replay_batch_;
  // Cancellation (seq_cancel.cpp): one flag per sequence, set from any thread; allocated at
  // create and never resized, so cancel() touches nothing else. Per token of the last step:
  // whether it ran, and (when some were left out) its index in the batch that ran, or -1.
  std::unique_ptr<std::atomic<bool>[]> cancelled_;
  std::vector<char> ran_;
  std::vector<int> live_index_;
  std::vector<BatchToken> live_batch_;
  std::vector<int> live_output_of_;
};

}  // namespace halyard::runtime
