#include "halyard/runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

namespace halyard::runtime {

Status validate(const SamplerOptions& o) {
  if (!std::isfinite(o.temperature) || o.temperature < 0.f) {
    return invalid_argument("temperature must be a finite number >= 0 (0 is greedy), not " +
                            std::to_string(o.temperature));
  }
  if (o.top_k < 0)
    return invalid_argument("top-k must be >= 0 (0 disables it), not " + std::to_string(o.top_k));
  if (!(o.top_p > 0.f && o.top_p <= 1.f))
    return invalid_argument("top-p must be in (0, 1] (1 disables it), not " + std::to_string(o.top_p));
  if (!(o.min_p >= 0.f && o.min_p <= 1.f))
    return invalid_argument("min-p must be in [0, 1] (0 disables it), not " + std::to_string(o.min_p));
  if (!(std::isfinite(o.repeat_penalty) && o.repeat_penalty > 0.f)) {
    return invalid_argument("the repeat penalty must be a finite number > 0 (1 disables it), not " +
                            std::to_string(o.repeat_penalty));
  }
  if (o.repeat_last_n < -1) {
    return invalid_argument("repeat-last-n must be >= 0, or -1 for the whole history (0 disables the penalties), not " +
                            std::to_string(o.repeat_last_n));
  }
  if (!std::isfinite(o.presence_penalty)) {
    return invalid_argument("the presence penalty must be a finite number (0 disables it), not " +
                            std::to_string(o.presence_penalty));
  }
  if (!std::isfinite(o.frequency_penalty)) {
    return invalid_argument("the frequency penalty must be a finite number (0 disables it), not " +
                            std::to_string(o.frequency_penalty));
  }
  for (const auto& [token, bias] : o.logit_bias) {
    if (token < 0)
      return invalid_argument("a logit bias names token " + std::to_string(token) + ": token ids are >= 0");
    if (std::isnan(bias) || bias == std::numeric_limits<float>::infinity()) {
      return invalid_argument("the logit bias of token " + std::to_string(token) + " is " + std::to_string(bias) +
                              ": it must be a finite number, or -inf to ban the token");
    }
  }
  return Status::ok();
}

Status validate(const SamplerOptions& o, std::size_t vocab_size) {
  HALYARD_RETURN_IF_ERROR(validate(o));
  std::unordered_map<TokenId, float> total;
  for (const auto& [token, bias] : o.logit_bias) {
    if (static_cast<std::size_t>(token) >= vocab_size) {
      return invalid_argument("a logit bias names token " + std::to_string(token) + " but the vocabulary has " +
                              std::to_string(vocab_size) + " tokens (ids 0 to " + std::to_string(vocab_size - 1) + ")");
    }
    total[token] += bias;
  }
  const auto banned = std::count_if(total.begin(), total.end(), [](const auto& e) { return std::isinf(e.second); });
  if (vocab_size > 0 && static_cast<std::size_t>(banned) == vocab_size)
    return invalid_argument("the logit bias bans every token of the vocabulary: nothing is left to sample");
  return Status::ok();
}

void apply_bias_and_penalties(std::span<float> logits, const SamplerOptions& o, std::span<const TokenId> window) {
  for (const auto& [token, bias] : o.logit_bias) {
    if (token >= 0 && static_cast<std::size_t>(token) < logits.size())
      logits[static_cast<std::size_t>(token)] += bias;
  }
  if (window.empty() || (o.repeat_penalty == 1.f && o.presence_penalty == 0.f && o.frequency_penalty == 0.f))
    return;
  std::unordered_map<TokenId, int> counts;
  for (TokenId t : window) {
    if (t >= 0 && static_cast<std::size_t>(t) < logits.size())
      ++counts[t];
  }
  for (const auto& [token, count] : counts) {
    float& l = logits[static_cast<std::size_t>(token)];
    l = l <= 0.f ? l * o.repeat_penalty : l / o.repeat_penalty;
    l -= o.presence_penalty + o.frequency_penalty * static_cast<float>(count);
  }
}

void Sampler::accept(TokenId token) {
  const int n = options_.repeat_last_n;
  if (n == 0)
    return;
  history_.push_back(token);
  // Only the last n matter: drop the older ones now and then, not at every token.
  if (n > 0 && history_.size() > 2 * static_cast<std::size_t>(n))
    history_.erase(history_.begin(), history_.end() - n);
}

std::span<const TokenId> Sampler::window() const {
  const std::span<const TokenId> all(history_);
  if (options_.repeat_last_n < 0 || all.size() <= static_cast<std::size_t>(options_.repeat_last_n))
    return all;
  return all.last(static_cast<std::size_t>(options_.repeat_last_n));
}

bool Sampler::transforms_logits() const {
  const bool penalties =
      options_.repeat_penalty != 1.f || options_.presence_penalty != 0.f || options_.frequency_penalty != 0.f;
  return !options_.logit_bias.empty() || (penalties && !window().empty());
}

bool Sampler::needs_logits() const {
  return options_.temperature > 0.f || transforms_logits();
}

TokenId Sampler::argmax(std::span<const float> logits) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best])
      best = i;
  }
  return static_cast<TokenId>(best);
}

TokenId Sampler::sample(std::span<const float> raw) {
  std::span<const float> logits = raw;
  if (transforms_logits()) {
    scratch_.assign(raw.begin(), raw.end());
    apply_bias_and_penalties(scratch_, options_, window());
    logits = scratch_;
  }
  if (options_.temperature <= 0.f || logits.size() < 2)
    return argmax(logits);
  std::vector<TokenId> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  auto by_logit = [&](TokenId a, TokenId b) {
    return logits[static_cast<std::size_t>(a)] > logits[static_cast<std::size_t>(b)];
  };
  std::size_t keep = ids.size();
  if (options_.top_k > 0 && static_cast<std::size_t>(options_.top_k) < keep)
    keep = static_cast<std::size_t>(options_.top_k);
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(keep), ids.end(), by_logit);
  ids.resize(keep);
  const double max_logit = logits[static_cast<std::size_t>(ids[0])];
  if (!std::isfinite(max_logit))
    return ids[0];  // validate() refuses a bias that bans everything; nothing finite to weigh
  std::vector<double> p(keep);
  double sum = 0.0;
  for (std::size_t i = 0; i < keep; ++i) {
    // A banned token (-inf) gets probability 0 here and is never drawn.
    p[i] = std::exp((logits[static_cast<std::size_t>(ids[i])] - max_logit) / options_.temperature);
    sum += p[i];
  }
  for (auto& v : p)
    v /= sum;
  if (options_.top_p < 1.f) {
    double cumulative = 0.0;
    std::size_t cut = keep;
    for (std::size_t i = 0; i < keep; ++i) {
      cumulative += p[i];
      if (cumulative >= options_.top_p) {
        cut = i + 1;
        break;
      }
    }
    p.resize(cut);
  }
  if (options_.min_p > 0.f) {
    // p is sorted in decreasing order and p[0] is the largest probability: keep the prefix at
    // or above the threshold (p[0] itself always, since min_p <= 1).
    const double threshold = static_cast<double>(options_.min_p) * p[0];
    std::size_t cut = 1;
    while (cut < p.size() && p[cut] >= threshold)
      ++cut;
    p.resize(cut);
  }
  std::discrete_distribution<std::size_t> pick(p.begin(), p.end());
  return ids[pick(rng_)];
}

}  // namespace halyard::runtime
