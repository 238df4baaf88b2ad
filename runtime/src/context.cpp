#include "halyard/runtime/context.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>

namespace halyard::runtime {
namespace {
constexpr int kMaxPadding = 64;

// The first maximum, as ARGMAX (ops.h) and the greedy sampler pick it.
TokenId first_max(std::span<const float> row) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < row.size(); ++i)
    best = row[i] > row[best] ? i : best;
  return static_cast<TokenId>(best);
}
}  // namespace

Result<std::unique_ptr<Context>> Context::create(Model& model, const ContextOptions& options) {
  if (options.max_sequences < 1)
    return invalid_argument("a context needs max_sequences >= 1");
  if (options.max_batch_tokens < 1)
    return invalid_argument("a context needs max_batch_tokens >= 1");
  if (options.n_blocks < 0)
    return invalid_argument("n_blocks must be >= 0 (0: one full context per sequence)");
  if (options.max_compiled_graphs < 0)
    return invalid_argument("max_compiled_graphs must be >= 0 (0: no limit)");
  auto ctx = std::unique_ptr<Context>(new Context(model, options));
  const LlamaConfig& c = model.config();
  const DeviceType type = model.device().info().type;
  ctx->pad_ = type != DeviceType::kCpu && type != DeviceType::kReference;
  KvCacheOptions ko;
  ko.n_layers = c.n_layers;
  ko.kv_dim = std::int64_t{c.head_dim} * c.n_kv_heads;
  ko.max_sequences = options.max_sequences + (ctx->pad_ ? 1 : 0);
  ko.max_positions = model.context_length();
  const int per_seq = (model.context_length() + kKvBlockSize - 1) / kKvBlockSize;
  ko.n_blocks = options.n_blocks > 0 ? options.n_blocks : per_seq * options.max_sequences;
  // Padding never exceeds 63 tokens (see bucket()).
  const int pad_positions = std::min(kMaxPadding, model.context_length());
  ctx->pad_positions_ = ctx->pad_ ? pad_positions : 0;
  ctx->pad_blocks_ = ctx->pad_ ? (pad_positions + kKvBlockSize - 1) / kKvBlockSize : 0;
  ko.n_blocks += ctx->pad_blocks_;
  ko.block_size = kKvBlockSize;
  ko.dtype = options.kv_dtype.value_or(model.kv_dtype());
  HALYARD_ASSIGN_OR_RETURN(ctx->kv_, KvCache::create(model.device(), ko));
  if (ctx->pad_)
    HALYARD_RETURN_IF_ERROR(ctx->kv_->prepare_write(options.max_sequences, 0, pad_positions));
  ctx->tokens_.resize(static_cast<std::size_t>(options.max_sequences));
  const DType argmax_input[] = {DType::kF32};
  ctx->device_argmax_ = options.argmax_on_device && model.device().supports(OpKind::kArgmax, argmax_input);
  ctx->cancelled_ = std::make_unique<std::atomic<bool>[]>(static_cast<std::size_t>(options.max_sequences));
  HALYARD_ASSIGN_OR_RETURN(ctx->queue_, model.device().create_queue());
  HALYARD_ASSIGN_OR_RETURN(ctx->block_table_, model.device().allocate(ctx->kv_->table().size() * sizeof(std::int32_t)));
  return ctx;
}

Result<std::uint64_t> Context::prefault_kv() {
  const DeviceType type = model_.device().info().type;
  if (type != DeviceType::kCpu && type != DeviceType::kReference)
    return std::uint64_t{0};
  return kv_->prefault();
}

std::uint64_t Context::kv_bytes_per_block(const Model& model, DType dtype) {
  const LlamaConfig& c = model.config();
  const std::uint64_t row = row_bytes(dtype, std::int64_t{c.head_dim} * c.n_kv_heads);
  return 2 * static_cast<std::uint64_t>(c.n_layers) * row * kKvBlockSize;
}

Status Context::check_seq(int seq) const {
  if (seq < 0 || seq >= options_.max_sequences) {
    return out_of_range("sequence id " + std::to_string(seq) + " is outside [0, " +
                        std::to_string(options_.max_sequences) + ")");
  }
  return Status::ok();
}

Status Context::remove(int seq, int p0, int p1) {
  HALYARD_RETURN_IF_ERROR(check_seq(seq));
  auto& toks = tokens_[static_cast<std::size_t>(seq)];
  const int len = static_cast<int>(toks.size());
  if (p0 < 0)
    return invalid_argument("remove: the first position must be >= 0");
  if (p1 < 0 || p1 > len)
    p1 = len;
  if (p0 == 0 && p1 == len)
    clear_cancel(seq);  // emptied (a suffix removal from 0 cannot fail)
  if (p0 >= p1)
    return Status::ok();  // nothing in range
  if (p1 == len) {
    HALYARD_RETURN_IF_ERROR(kv_->remove(seq, p0, -1));
    toks.resize(static_cast<std::size_t>(p0));
    return Status::ok();
  }
  // A middle range. The later positions' K/V depend on the removed tokens (attention) and on
  // their old positions (RoPE), so they are recomputed rather than moved. First check that the
  // recomputation gets its blocks once the suffix from p0 is dropped, so a refusal changes nothing.
  const int bs = kv_->block_size();
  HALYARD_ASSIGN_OR_RETURN(auto blocks, kv_->blocks(seq));
  const auto kept_blocks = static_cast<std::size_t>((p0 + bs - 1) / bs);
  int freed = 0;
  for (std::size_t b = kept_blocks; b < blocks.size(); ++b)
    freed += kv_->refs(blocks[b]) == 1 ? 1 : 0;
  const int new_len = p0 + (len - p1);
  int needed = (new_len + bs - 1) / bs - static_cast<int>(kept_blocks);
  if (p0 % bs != 0 && kv_->refs(blocks[kept_blocks - 1]) > 1)
    ++needed;  // the shared, partly kept block is copied before the first rewrite
  if (needed > kv_->blocks_free() + freed) {
    return cache_full("remove: recomputing the " + std::to_string(len - p1) + " positions after [" +
                      std::to_string(p0) + ", " + std::to_string(p1) + ") needs " + std::to_string(needed) +
                      " blocks and " + std::to_string(kv_->blocks_free() + freed) +
                      " would be free; nothing was changed");
  }
  std::vector<TokenId> tail(toks.begin() + p1, toks.end());
  HALYARD_RETURN_IF_ERROR(kv_->remove(seq, p0, -1));
  toks.resize(static_cast<std::size_t>(p0));
  if (Status st = replay(seq, tail); !st.is_ok()) {
    return Status(st.code(),
                  "remove: recomputing the positions after the removed range failed; the sequence now "
                  "ends at position " +
                      std::to_string(static_cast<int>(toks.size()) - 1) + ": " + st.message());
  }
  return Status::ok();
}

Status Context::replay(int seq, std::span<const TokenId> tokens) {
  ran_.clear();  // like the logits, the last step's ran() flags are invalidated
  const auto chunk = static_cast<std::size_t>(options_.max_batch_tokens);
  for (std::size_t i = 0; i < tokens.size(); i += chunk) {
    const std::size_t n = std::min(chunk, tokens.size() - i);
    const int start = static_cast<int>(tokens_[static_cast<std::size_t>(seq)].size());
    replay_batch_.resize(n);
    for (std::size_t j = 0; j < n; ++j)
      replay_batch_[j] = BatchToken{tokens[i + j], seq, start + static_cast<int>(j), false};
    HALYARD_RETURN_IF_ERROR(run_batch(replay_batch_));
  }
  return Status::ok();
}

Status Context::copy(int src, int dst) {
  HALYARD_RETURN_IF_ERROR(check_seq(src));
  HALYARD_RETURN_IF_ERROR(check_seq(dst));
  HALYARD_RETURN_IF_ERROR(kv_->copy(src, dst));
  tokens_[static_cast<std::size_t>(dst)] = tokens_[static_cast<std::size_t>(src)];
  if (src != dst)
    clear_cancel(dst);  // its old contents were released
  return Status::ok();
}

Status Context::keep(int seq) {
  HALYARD_RETURN_IF_ERROR(check_seq(seq));
  for (int s = 0; s < options_.max_sequences; ++s) {
    if (s != seq) {
      HALYARD_RETURN_IF_ERROR(release(s));
    }
  }
  return Status::ok();
}

Result<int> Context::attach_prefix(int seq, std::span<const TokenId> prompt) {
  HALYARD_RETURN_IF_ERROR(check_seq(seq));
  if (!options_.prefix_cache || prompt.empty())
    return 0;
  HALYARD_ASSIGN_OR_RETURN(int got, kv_->attach_prefix(seq, prompt, static_cast<int>(prompt.size()) - 1));
  tokens_[static_cast<std::size_t>(seq)].assign(prompt.begin(), prompt.begin() + got);
  return got;
}

std::span<const TokenId> Context::tokens(int seq) const {
  if (seq < 0 || seq >= options_.max_sequences)
    return {};
  return tokens_[static_cast<std::size_t>(seq)];
}

int Context::bucket(int n) const {
  if (!pad_ || n == 1)
    return n;
  int b = 2;
  while (b < n && b < kMaxPadding)
    b *= 2;
  if (b < n)
    b = (n + kMaxPadding - 1) / kMaxPadding * kMaxPadding;
  return std::min(b, n + pad_positions_);  // a short context has fewer padding rows
}

Result<Context::Compiled*> Context::compiled_for(int n_tokens, int n_outputs, StepOutput output) {
  const auto key = std::make_tuple(n_tokens, n_outputs, output);
  if (auto it = compiled_.find(key); it != compiled_.end()) {
    it->second->last_use = ++use_clock_;
    return it->second.get();
  }
  if (options_.max_compiled_graphs > 0 && compiled_.size() >= static_cast<std::size_t>(options_.max_compiled_graphs)) {
    auto oldest = std::min_element(compiled_.begin(), compiled_.end(), [](const auto& a, const auto& b) {
      return a.second->last_use < b.second->last_use;
    });
    compiled_.erase(oldest);  // nothing refers to it past the step that last ran it
  }
  auto c = std::make_unique<Compiled>();
  c->last_use = ++use_clock_;
  const KvCacheOptions& ko = kv_->options();
  const KvLayout layout{ko.dtype, ko.block_size, ko.n_blocks, kv_->max_blocks_per_sequence(), ko.max_sequences};
  HALYARD_ASSIGN_OR_RETURN(c->plan, build_llama_graph(model_, n_tokens, n_outputs, layout, output));
  HALYARD_ASSIGN_OR_RETURN(c->exe, model_.device().compile(c->plan.graph));
  const auto n = static_cast<std::size_t>(n_tokens);
  c->staging.resize(3 * n + static_cast<std::size_t>(n_outputs));
  HALYARD_ASSIGN_OR_RETURN(c->inputs, model_.device().allocate(c->staging.size() * sizeof(std::int32_t)));
  const TensorId out = output == StepOutput::kArgmax ? c->plan.argmax : c->plan.logits;
  HALYARD_ASSIGN_OR_RETURN(c->output, model_.device().allocate(c->plan.graph.tensor(out).desc.bytes()));
  auto& b = c->bindings;
  b.push_back({c->plan.token_ids, c->inputs.get(), 0});
  b.push_back({c->plan.positions, c->inputs.get(), n * 4});
  b.push_back({c->plan.slots, c->inputs.get(), 2 * n * 4});
  b.push_back({c->plan.out_rows, c->inputs.get(), 3 * n * 4});
  b.push_back({c->plan.block_table, block_table_.get(), 0});
  b.push_back({out, c->output.get(), 0});
  for (const auto& [id, name] : c->plan.weights)
    b.push_back({id, model_.weight(name)->buffer.get(), 0});
  for (int l = 0; l < ko.n_layers; ++l) {
    b.push_back({c->plan.k_cache[static_cast<std::size_t>(l)], &kv_->k(l), 0});
    b.push_back({c->plan.v_cache[static_cast<std::size_t>(l)], &kv_->v(l), 0});
  }
  spdlog::debug("context: compiled a graph of {} tokens, {} outputs{}", n_tokens, n_outputs,
                output == StepOutput::kArgmax ? " (argmax)" : "");
  Compiled* raw = c.get();
  compiled_.emplace(key, std::move(c));
  return raw;
}

Status Context::run_batch(std::span<const BatchToken> batch, StepOutput output) {
  if (batch.empty())
    return invalid_argument("step: the batch has no tokens");
  const int n = static_cast<int>(batch.size());
  if (n > options_.max_batch_tokens) {
    return invalid_argument("step: " + std::to_string(n) + " tokens exceed the context's max_batch_tokens of " +
                            std::to_string(options_.max_batch_tokens));
  }
  const int vocab = model_.config().vocab_size;
  const int n_seq = options_.max_sequences;
  // Each sequence's tokens must continue it in order: [old length, next) is what they write.
  std::vector<int>& old_len = old_len_;
  std::vector<int>& next = next_;
  old_len.resize(static_cast<std::size_t>(n_seq));
  next.resize(static_cast<std::size_t>(n_seq));
  for (int s = 0; s < n_seq; ++s) {
    HALYARD_ASSIGN_OR_RETURN(old_len[static_cast<std::size_t>(s)], kv_->length(s));
    next[static_cast<std::size_t>(s)] = old_len[static_cast<std::size_t>(s)];
  }
  int n_out = 0;
  for (int i = 0; i < n; ++i) {
    const BatchToken& t = batch[static_cast<std::size_t>(i)];
    if (t.token < 0 || t.token >= vocab)
      return invalid_argument("step: token id " + std::to_string(t.token) + " is outside the vocabulary");
    if (t.seq < 0 || t.seq >= n_seq) {
      return invalid_argument("step: sequence id " + std::to_string(t.seq) + " is outside [0, " +
                              std::to_string(n_seq) + ")");
    }
    int& want = next[static_cast<std::size_t>(t.seq)];
    if (t.pos != want) {
      return invalid_argument("step: token " + std::to_string(i) + " of sequence " + std::to_string(t.seq) +
                              " has position " + std::to_string(t.pos) + " but the sequence continues at " +
                              std::to_string(want) + " (remove positions first to rewrite them)");
    }
    if (t.pos >= model_.context_length()) {
      return out_of_range("step: position " + std::to_string(t.pos) + " of sequence " + std::to_string(t.seq) +
                          " is past the context of " + std::to_string(model_.context_length()) + " positions");
    }
    ++want;
    n_out += t.logits ? 1 : 0;
  }
  int needed = 0;
  for (int s = 0; s < n_seq; ++s)
    needed += kv_->blocks_needed(s, old_len[static_cast<std::size_t>(s)], next[static_cast<std::size_t>(s)]);
  if (needed > kv_->blocks_free()) {
    return cache_full("step: the batch needs " + std::to_string(needed) + " new KV blocks and " +
                      std::to_string(kv_->blocks_free()) + " are free; nothing was changed");
  }
  auto rollback = [&] {
    for (int s = 0; s < n_seq; ++s) {
      if (next[static_cast<std::size_t>(s)] > old_len[static_cast<std::size_t>(s)])
        (void)kv_->remove(s, old_len[static_cast<std::size_t>(s)], -1);
    }
  };
  for (int s = 0; s < n_seq; ++s) {
    if (next[static_cast<std::size_t>(s)] == old_len[static_cast<std::size_t>(s)])
      continue;
    if (Status st = kv_->prepare_write(s, old_len[static_cast<std::size_t>(s)], next[static_cast<std::size_t>(s)]);
        !st.is_ok()) {
      rollback();
      return st;
    }
  }
  // A graph needs one output at least: a batch that asks for none computes token 0's and drops it.
  const int m = bucket(n);
  const int graph_out = std::min(m, bucket(std::max(n_out, 1)));
  const bool ids_on_device = output == StepOutput::kArgmax && device_argmax_;
  auto run = [&]() -> Status {
    HALYARD_ASSIGN_OR_RETURN(Compiled * c,
                             compiled_for(m, graph_out, ids_on_device ? StepOutput::kArgmax : StepOutput::kLogits));
    last_output_ = output;
    std::vector<std::int32_t>& in = c->staging;
    output_of_.assign(static_cast<std::size_t>(n), -1);
    int o = 0;
    for (int i = 0; i < m; ++i) {
      const auto u = static_cast<std::size_t>(i);
      const auto mm = static_cast<std::size_t>(m);
      if (i >= n) {
        // Padding: the hidden sequence's rows 0, 1, ...; computed and thrown away.
        in[u] = batch[0].token;
        in[mm + u] = i - n;
        in[2 * mm + u] = options_.max_sequences;
        continue;
      }
      const BatchToken& t = batch[u];
      in[u] = t.token;
      in[mm + u] = t.pos;
      in[2 * mm + u] = t.seq;
      if (t.logits) {
        in[3 * mm + static_cast<std::size_t>(o)] = i;
        output_of_[u] = o++;
      }
    }
    for (int j = o; j < graph_out; ++j)
      in[3 * static_cast<std::size_t>(m) + static_cast<std::size_t>(j)] = 0;  // unused outputs
    // The table changes only when a sequence gains, shares or drops a block (every 16 tokens of
    // decode), so most steps upload only the token inputs.
    if (uploaded_table_version_ != kv_->table_version()) {
      const auto& table = kv_->table();
      HALYARD_RETURN_IF_ERROR(block_table_->upload(0, table.data(), table.size() * sizeof(std::int32_t)));
      uploaded_table_version_ = kv_->table_version();
    }
    HALYARD_RETURN_IF_ERROR(c->inputs->upload(0, in.data(), in.size() * sizeof(std::int32_t)));
    HALYARD_ASSIGN_OR_RETURN(auto event, c->exe->run(*queue_, c->bindings));
    HALYARD_RETURN_IF_ERROR(event->wait());
    if (ids_on_device) {
      ids_.resize(static_cast<std::size_t>(n_out));
      if (n_out > 0)
        HALYARD_RETURN_IF_ERROR(c->output->download(0, ids_.data(), ids_.size() * sizeof(TokenId)));
      return Status::ok();
    }
    logits_.resize(static_cast<std::size_t>(vocab) * static_cast<std::size_t>(n_out));
    if (n_out > 0)
      HALYARD_RETURN_IF_ERROR(c->output->download(0, logits_.data(), logits_.size() * sizeof(float)));
    if (output == StepOutput::kArgmax) {  // the device has no ARGMAX: the same pick on the host
      ids_.resize(static_cast<std::size_t>(n_out));
      for (std::size_t o = 0; o < ids_.size(); ++o)
        ids_[o] = first_max(std::span<const float>(logits_).subspan(o * static_cast<std::size_t>(vocab),
                                                                    static_cast<std::size_t>(vocab)));
    }
    return Status::ok();
  };
  if (Status st = run(); !st.is_ok()) {
    rollback();
    output_of_.clear();
    return st;
  }
  for (const BatchToken& t : batch)
    tokens_[static_cast<std::size_t>(t.seq)].push_back(t.token);
  if (options_.prefix_cache) {
    for (int s = 0; s < n_seq; ++s) {
      if (next[static_cast<std::size_t>(s)] > old_len[static_cast<std::size_t>(s)])
        kv_->commit(s, tokens_[static_cast<std::size_t>(s)]);
    }
  }
  return Status::ok();
}

std::span<const float> Context::logits(int i) const {
  if (last_output_ != StepOutput::kLogits || i < 0 || i >= static_cast<int>(output_of_.size()) ||
      output_of_[static_cast<std::size_t>(i)] < 0)
    return {};
  const auto vocab = static_cast<std::size_t>(model_.config().vocab_size);
  return std::span<const float>(logits_).subspan(
      static_cast<std::size_t>(output_of_[static_cast<std::size_t>(i)]) * vocab, vocab);
}

TokenId Context::argmax(int i) const {
  if (i < 0 || i >= static_cast<int>(output_of_.size()) || output_of_[static_cast<std::size_t>(i)] < 0)
    return -1;
  if (last_output_ == StepOutput::kArgmax)
    return ids_[static_cast<std::size_t>(output_of_[static_cast<std::size_t>(i)])];
  return first_max(logits(i));
}

}  // namespace halyard::runtime
