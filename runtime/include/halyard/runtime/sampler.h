// Picks the next token from logits: greedy when temperature <= 0, otherwise top-k, then
// temperature, then top-p (nucleus), then a draw from a seeded generator (reproducible).
// Thread safety: one thread at a time (it owns its random state).
#pragma once

#include <cstdint>
#include <random>
#include <span>

#include "halyard/runtime/tokenizer.h"

namespace halyard::runtime {

struct SamplerOptions {
  float temperature = 0.f;  // 0: greedy; must be finite and >= 0
  int top_k = 40;           // 0: off; must be >= 0
  float top_p = 0.95f;      // 1: off; must be in (0, 1]
  std::uint64_t seed = 0;
};

// invalid_argument naming the first bad field (NaN, a negative temperature or top-k, top-p
// outside (0, 1]); ok otherwise.
Status validate(const SamplerOptions& options);

class Sampler {
 public:
  explicit Sampler(const SamplerOptions& options) : options_(options), rng_(options.seed) {}
  TokenId sample(std::span<const float> logits);
  static TokenId argmax(std::span<const float> logits);

 private:
  SamplerOptions options_;
  std::mt19937_64 rng_;
};

}  // namespace halyard::runtime
