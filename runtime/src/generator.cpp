#include "halyard/runtime/generator.h"

#include <chrono>

#include "utf8.h"

namespace halyard::runtime {
namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}
}  // namespace

Result<GenerateResult> generate(Session& session, std::span<const TokenId> prompt, const GenerateOptions& options,
                                const TokenCallback& on_token) {
  if (prompt.empty())
    return invalid_argument("the prompt is empty: give at least one token");
  if (options.max_tokens < 0)
    return invalid_argument("max_tokens must be >= 0");
  const int ctx = session.model().context_length();
  if (static_cast<int>(prompt.size()) > ctx) {
    return out_of_range("the prompt has " + std::to_string(prompt.size()) + " tokens but the context holds " +
                        std::to_string(ctx) + "; shorten it or raise --ctx");
  }
  if (session.n_past() + static_cast<int>(prompt.size()) > ctx) {
    return cache_full("the prompt has " + std::to_string(prompt.size()) + " tokens but the context holds " +
                      std::to_string(ctx - session.n_past()) + " more");
  }
  // The logits have one entry per token of the output vocabulary: bias ids are checked against
  // it before any work is done.
  HALYARD_RETURN_IF_ERROR(validate(options.sampler, static_cast<std::size_t>(session.model().config().vocab_size)));
  const Tokenizer& tok = session.model().tokenizer();
  GenerateResult result;
  result.timings.prompt_tokens = static_cast<int>(prompt.size());
  Sampler sampler(options.sampler);
  // As in llama.cpp, the prompt is part of the history the penalties look at.
  for (TokenId id : prompt)
    sampler.accept(id);
  std::string pending;
  auto emit = [&](TokenId id) {
    pending += tok.token_to_piece(id, /*render_special=*/false);
    const std::size_t n = utf8_complete_prefix(pending);
    const std::string text = pending.substr(0, n);
    pending.erase(0, n);
    return on_token ? on_token(id, text) : true;
  };

  // Each eval leaves either the logits to sample or, while the sampler is pure greedy, the
  // argmax the context picked (see GenerateOptions::argmax_step).
  std::span<const float> logits;
  TokenId picked = -1;
  auto eval = [&](std::span<const TokenId> tokens) -> Status {
    if (options.argmax_step && !sampler.needs_logits()) {
      HALYARD_ASSIGN_OR_RETURN(picked, session.eval_argmax(tokens));
      logits = {};
      return Status::ok();
    }
    HALYARD_ASSIGN_OR_RETURN(logits, session.eval(tokens));
    picked = -1;
    return Status::ok();
  };
  const auto start = Clock::now();
  const bool fresh = session.n_past() == 0;
  HALYARD_RETURN_IF_ERROR(eval(prompt));
  if (fresh)
    result.timings.cached_prompt_tokens = session.cached_tokens();
  result.timings.prefill_ms = ms_since(start);
  if (options.max_tokens == 0)
    return result;

  const auto decode_start = Clock::now();
  for (int i = 0; i < options.max_tokens; ++i) {
    const TokenId next = picked >= 0 ? picked : sampler.sample(logits);
    if (i == 0)
      result.timings.time_to_first_token_ms = ms_since(start);
    if (options.stop_at_end_of_generation && tok.is_end_of_generation(next)) {
      result.stop = StopReason::kEndOfGeneration;
      break;
    }
    sampler.accept(next);
    result.tokens.push_back(next);
    result.timings.generated_tokens = static_cast<int>(result.tokens.size());
    if (!emit(next)) {
      result.stop = StopReason::kCancelled;
      break;
    }
    if (i + 1 == options.max_tokens)
      break;
    if (session.n_past() >= ctx) {
      result.stop = StopReason::kContextFull;
      break;
    }
    const TokenId one[1] = {next};
    HALYARD_RETURN_IF_ERROR(eval(one));
  }
  result.timings.decode_ms = result.tokens.size() > 1 ? ms_since(decode_start) : 0;
  if (!pending.empty() && on_token)
    on_token(-1, pending);  // an incomplete character at the very end
  return result;
}

}  // namespace halyard::runtime
