#include "halyard/runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

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
  return Status::ok();
}

TokenId Sampler::argmax(std::span<const float> logits) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best])
      best = i;
  }
  return static_cast<TokenId>(best);
}

TokenId Sampler::sample(std::span<const float> logits) {
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
  std::vector<double> p(keep);
  const double max_logit = logits[static_cast<std::size_t>(ids[0])];
  double sum = 0.0;
  for (std::size_t i = 0; i < keep; ++i) {
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
  std::discrete_distribution<std::size_t> pick(p.begin(), p.end());
  return ids[pick(rng_)];
}

}  // namespace halyard::runtime
