#include "halyard/runtime/session.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace halyard::runtime {

Result<std::unique_ptr<Session>> Session::create(Model& model) {
  auto s = std::unique_ptr<Session>(new Session(model));
  const LlamaConfig& c = model.config();
  HALYARD_ASSIGN_OR_RETURN(s->queue_, model.device().create_queue());
  const int blocks_per_seq = kv_blocks_per_sequence(model);
  // One pool per layer for K and one for V, in the model's KV dtype (2 bytes an element for f16).
  const std::size_t cache_bytes = TensorDesc::make(model.kv_dtype(), std::int64_t{c.head_dim} * c.n_kv_heads,
                                                   kKvBlockSize, std::int64_t{blocks_per_seq} * model.max_sequences())
                                      .bytes();
  for (int l = 0; l < c.n_layers; ++l) {
    auto k = model.device().allocate(cache_bytes);
    auto v = model.device().allocate(cache_bytes);
    if (!k.is_ok() || !v.is_ok()) {
      return resource_exhausted("cannot allocate the KV cache (" + std::to_string(2 * cache_bytes * c.n_layers >> 20) +
                                " MiB for a context of " + std::to_string(model.context_length()) +
                                "); use a shorter --ctx: " + (k.is_ok() ? v.status() : k.status()).message());
    }
    s->k_cache_.push_back(std::move(k).value());
    s->v_cache_.push_back(std::move(v).value());
  }
  // An identity block table: sequence slot q owns blocks q * blocks_per_seq... in order, the
  // layout of an unpaged [kv_dim, ctx, slots] cache.
  std::vector<std::int32_t> table(static_cast<std::size_t>(blocks_per_seq) * model.max_sequences());
  for (std::size_t i = 0; i < table.size(); ++i)
    table[i] = static_cast<std::int32_t>(i);
  HALYARD_ASSIGN_OR_RETURN(s->block_table_, model.device().allocate(table.size() * sizeof(std::int32_t)));
  HALYARD_RETURN_IF_ERROR(s->block_table_->upload(0, table.data(), table.size() * sizeof(std::int32_t)));
  return s;
}

int Session::graph_tokens(int n) const {
  if (n == 1)
    return 1;
  // Host devices compile a graph in microseconds and would only waste work on padding.
  const DeviceType type = model_.device().info().type;
  if (type == DeviceType::kCpu || type == DeviceType::kReference)
    return n;
  int bucket = 2;
  while (bucket < n && bucket < 64)
    bucket *= 2;
  if (bucket < n)
    bucket = (n + 63) / 64 * 64;
  return n_past_ + bucket <= model_.context_length() ? bucket : n;  // padding needs cache positions
}

Result<Session::Compiled*> Session::compiled_for(int n_tokens) {
  if (auto it = compiled_.find(n_tokens); it != compiled_.end())
    return it->second.get();
  auto c = std::make_unique<Compiled>();
  if (n_tokens == 1) {
    HALYARD_ASSIGN_OR_RETURN(c->plan, build_decode_graph(model_, 1));
  } else {
    HALYARD_ASSIGN_OR_RETURN(c->plan, build_prefill_graph(model_, n_tokens));
  }
  HALYARD_ASSIGN_OR_RETURN(c->exe, model_.device().compile(c->plan.graph));
  const std::size_t n = static_cast<std::size_t>(n_tokens);
  c->staging.resize(3 * n + 1);
  HALYARD_ASSIGN_OR_RETURN(c->inputs, model_.device().allocate(c->staging.size() * sizeof(std::int32_t)));
  HALYARD_ASSIGN_OR_RETURN(c->logits, model_.device().allocate(c->plan.graph.tensor(c->plan.logits).desc.bytes()));
  auto& b = c->bindings;
  b.push_back({c->plan.token_ids, c->inputs.get(), 0});
  b.push_back({c->plan.positions, c->inputs.get(), n * 4});
  b.push_back({c->plan.slots, c->inputs.get(), 2 * n * 4});
  b.push_back({c->plan.out_rows, c->inputs.get(), 3 * n * 4});
  b.push_back({c->plan.block_table, block_table_.get(), 0});
  b.push_back({c->plan.logits, c->logits.get(), 0});
  for (const auto& [id, name] : c->plan.weights)
    b.push_back({id, model_.weight(name)->buffer.get(), 0});
  for (std::size_t l = 0; l < k_cache_.size(); ++l) {
    b.push_back({c->plan.k_cache[l], k_cache_[l].get(), 0});
    b.push_back({c->plan.v_cache[l], v_cache_[l].get(), 0});
  }
  spdlog::debug("compiled a {}-token graph ({} nodes)", n_tokens, c->plan.graph.nodes().size());
  Compiled* raw = c.get();
  compiled_.emplace(n_tokens, std::move(c));
  return raw;
}

Result<std::span<const float>> Session::eval(std::span<const TokenId> tokens) {
  if (tokens.empty())
    return invalid_argument("eval: no tokens");
  const int n = static_cast<int>(tokens.size());
  const int ctx = model_.context_length();
  if (n > ctx) {
    return out_of_range(std::to_string(n) + " tokens can never fit the context of " + std::to_string(ctx) +
                        " tokens; shorten the prompt or raise --ctx");
  }
  if (n_past_ + n > ctx) {
    return cache_full(std::to_string(n) + " more tokens do not fit: the sequence holds " + std::to_string(n_past_) +
                      " of the context's " + std::to_string(ctx) + " positions; nothing was changed");
  }
  const int vocab = model_.config().vocab_size;
  for (TokenId t : tokens) {
    if (t < 0 || t >= vocab)
      return invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary");
  }
  const int m = graph_tokens(n);
  HALYARD_ASSIGN_OR_RETURN(Compiled * c, compiled_for(m));
  std::vector<std::int32_t>& inputs = c->staging;
  for (int i = 0; i < m; ++i) {
    // Padding tokens (i >= n) repeat the last token at the positions after the prompt: they
    // write cache rows no real token reads before overwriting them, and no logits are kept.
    inputs[static_cast<std::size_t>(i)] = tokens[static_cast<std::size_t>(std::min(i, n - 1))];
    inputs[static_cast<std::size_t>(m + i)] = n_past_ + i;
    inputs[static_cast<std::size_t>(2 * m + i)] = 0;  // one sequence: slot 0
  }
  inputs[3 * static_cast<std::size_t>(m)] = n - 1;  // logits of the last real token
  HALYARD_RETURN_IF_ERROR(c->inputs->upload(0, inputs.data(), inputs.size() * sizeof(std::int32_t)));
  HALYARD_ASSIGN_OR_RETURN(auto event, c->exe->run(*queue_, c->bindings));
  HALYARD_RETURN_IF_ERROR(event->wait());
  logits_.resize(static_cast<std::size_t>(vocab));
  HALYARD_RETURN_IF_ERROR(c->logits->download(0, logits_.data(), logits_.size() * sizeof(float)));
  n_past_ += n;
  return std::span<const float>(logits_);
}

}  // namespace halyard::runtime
