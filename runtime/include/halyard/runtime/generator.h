// The generation loop: prefill the prompt, then sample and decode one token at a time, streaming
// text as whole UTF-8 characters, with the timing figures users feel (time to first token,
// prefill and decode tokens/s).
#pragma once

#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "halyard/runtime/sampler.h"
#include "halyard/runtime/session.h"

namespace halyard::runtime {

struct GenerateOptions {
  int max_tokens = 128;
  SamplerOptions sampler;
  bool stop_at_end_of_generation = true;
  // While the sampler is pure greedy (Sampler::needs_logits() is false) the next token is the
  // context's argmax step's: on a device with ARGMAX only its id is downloaded, not the
  // vocab-sized logits. false: every step downloads the logits and samples them. The tokens
  // are the same either way.
  bool argmax_step = true;
};

enum class StopReason { kMaxTokens, kEndOfGeneration, kContextFull, kCancelled };

struct Timings {
  int prompt_tokens = 0;
  int generated_tokens = 0;
  int cached_prompt_tokens = 0;  // taken from the prefix cache, not computed
  double time_to_first_token_ms = 0;
  double prefill_ms = 0;
  double decode_ms = 0;  // all decode steps after the first token
  double prefill_tokens_per_s() const { return prefill_ms > 0 ? prompt_tokens * 1e3 / prefill_ms : 0; }
  double decode_tokens_per_s() const {
    return decode_ms > 0 && generated_tokens > 1 ? (generated_tokens - 1) * 1e3 / decode_ms : 0;
  }
};

struct GenerateResult {
  std::vector<TokenId> tokens;
  StopReason stop = StopReason::kMaxTokens;
  Timings timings;
};

// on_token(token, text) is called for every sampled token with the text it completes (possibly
// empty while a multi-byte character is pending); returning false cancels.
using TokenCallback = std::function<bool(TokenId, std::string_view)>;

Result<GenerateResult> generate(Session& session, std::span<const TokenId> prompt, const GenerateOptions& options,
                                const TokenCallback& on_token);

}  // namespace halyard::runtime
