// Picks the next token from logits. The chain, in this order:
//   1. logit bias (added to the raw logits; -inf bans a token),
//   2. repetition penalty, then presence and frequency penalties, over the last repeat_last_n
//      tokens the sampler accepted,
//   3. greedy (temperature <= 0): the argmax of the logits after 1-2, else
//   4. top-k, 5. temperature, 6. top-p (nucleus), 7. min-p, 8. a draw from a seeded generator.
// Bias before penalties and top-k before top-p before min-p are llama.cpp's order. llama.cpp
// applies temperature last, so its top-p and min-p see the untempered distribution; here they
// see the tempered one (top-p always did in this sampler, and min-p's "p >= min_p * p_max" is
// defined after temperature), so at a temperature other than 1 a min-p or top-p set can differ
// from llama.cpp's.
// History: like llama.cpp (llama-cli and llama-server accept the prompt into their sampler),
// the generator accepts every prompt token and every generated token, so the penalties also
// count prompt tokens inside the window. With every penalty and bias off, greedy is the plain
// argmax of the logits (no copy is made).
// Thread safety: one thread at a time (it owns its random state and history).
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "halyard/runtime/tokenizer.h"

namespace halyard::runtime {

struct SamplerOptions {
  float temperature = 0.f;  // 0: greedy; must be finite and >= 0
  int top_k = 40;           // 0: off; must be >= 0
  float top_p = 0.95f;      // 1: off; must be in (0, 1]
  std::uint64_t seed = 0;
  // Keeps the tokens whose probability (after temperature) is >= min_p * the largest one.
  float min_p = 0.f;  // 0: off; must be in [0, 1]
  // CTRL / llama.cpp: a positive logit of a token in the window is divided by it, a negative one
  // multiplied (so > 1 discourages repeats, < 1 encourages them).
  float repeat_penalty = 1.f;  // 1: off; must be finite and > 0
  // The window of the penalties: the last repeat_last_n accepted tokens.
  int repeat_last_n = 64;  // 0: no window (penalties off); -1: the whole history; else >= 0
  // OpenAI: logit -= presence_penalty * [count > 0] + frequency_penalty * count, count being how
  // often the token occurs in the window. Negative values encourage repeats.
  float presence_penalty = 0.f;   // 0: off; must be finite
  float frequency_penalty = 0.f;  // 0: off; must be finite
  // Token id -> bias added to its logit (entries for the same token add up). -inf bans the
  // token. Ids must be in [0, vocab size); a bias must not be NaN or +inf.
  std::vector<std::pair<TokenId, float>> logit_bias{};
};

// invalid_argument naming the first bad field (NaN, a negative temperature or top-k, top-p
// outside (0, 1], min-p outside [0, 1], a repeat penalty <= 0, repeat_last_n < -1, a
// non-finite presence or frequency penalty, a negative bias token id, a NaN or +inf bias);
// ok otherwise.
Status validate(const SamplerOptions& options);
// The above, plus what needs the vocabulary: bias token ids must be < vocab_size, and the bias
// must not ban every token. Called when sampling starts.
Status validate(const SamplerOptions& options, std::size_t vocab_size);

// Steps 1 and 2 of the chain on logits in place: the bias, then the penalties for the tokens
// of `window` (the caller has already cut it to repeat_last_n). Bias ids outside logits are
// skipped (validate with the vocabulary size rejects them first). A pure function, for tests.
void apply_bias_and_penalties(std::span<float> logits, const SamplerOptions& options, std::span<const TokenId> window);

class Sampler {
 public:
  explicit Sampler(const SamplerOptions& options) : options_(options), rng_(options.seed) {}
  // Records a token of the sequence (prompt or generated) for the penalties.
  void accept(TokenId token);
  TokenId sample(std::span<const float> logits);
  static TokenId argmax(std::span<const float> logits);
  // Whether sample() would be anything but argmax(logits) now: a temperature above 0, a logit
  // bias, or a penalty with tokens in its window. When false the caller may pick the argmax
  // without the logits (the context's argmax step); sample() keeps no state in greedy mode, so
  // skipping it changes nothing.
  bool needs_logits() const;
  // The accepted tokens the penalties look at now (the last repeat_last_n).
  std::span<const TokenId> window() const;

 private:
  bool transforms_logits() const;

  SamplerOptions options_;
  std::mt19937_64 rng_;
  std::vector<TokenId> history_;  // trimmed to a bounded multiple of repeat_last_n
  std::vector<float> scratch_;    // the transformed logits
};

}  // namespace halyard::runtime
