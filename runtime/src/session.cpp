#include "halyard/runtime/session.h"

#include <string>

namespace halyard::runtime {

Result<std::unique_ptr<Session>> Session::create(Model& model) {
  auto s = std::unique_ptr<Session>(new Session());
  ContextOptions o;
  o.max_sequences = 1;
  o.max_batch_tokens = model.context_length();
  HALYARD_ASSIGN_OR_RETURN(s->context_, Context::create(model, o));
  return s;
}

void Session::reset() {
  (void)context_->release(0);  // sequence 0 always exists: this cannot fail
  n_past_ = 0;
  cached_tokens_ = 0;
}

Result<std::span<const float>> Session::eval(std::span<const TokenId> tokens) {
  HALYARD_ASSIGN_OR_RETURN(int last, feed(tokens, StepOutput::kLogits));
  return context_->logits(last);
}

Result<TokenId> Session::eval_argmax(std::span<const TokenId> tokens) {
  HALYARD_ASSIGN_OR_RETURN(int last, feed(tokens, StepOutput::kArgmax));
  return context_->argmax(last);
}

Result<int> Session::feed(std::span<const TokenId> tokens, StepOutput output) {
  if (tokens.empty())
    return invalid_argument("eval: no tokens");
  const int n = static_cast<int>(tokens.size());
  const int ctx = context_->context_length();
  if (n > ctx) {
    return out_of_range(std::to_string(n) + " tokens can never fit the context of " + std::to_string(ctx) +
                        " tokens; shorten the prompt or raise --ctx");
  }
  if (n_past_ + n > ctx) {
    return cache_full(std::to_string(n) + " more tokens do not fit: the sequence holds " + std::to_string(n_past_) +
                      " of the context's " + std::to_string(ctx) + " positions; nothing was changed");
  }
  // A fresh sequence starts from the prefix cache: the blocks an earlier prompt with the same
  // start left behind are shared, and only the rest is computed.
  int cached = 0;
  if (n_past_ == 0) {
    HALYARD_ASSIGN_OR_RETURN(cached, context_->attach_prefix(0, tokens));
    cached_tokens_ = cached;
  }
  const int todo = n - cached;
  batch_.resize(static_cast<std::size_t>(todo));
  for (int i = 0; i < todo; ++i) {
    batch_[static_cast<std::size_t>(i)] =
        BatchToken{tokens[static_cast<std::size_t>(cached + i)], 0, n_past_ + cached + i, i == todo - 1};
  }
  if (Status st = context_->step(batch_, output); !st.is_ok()) {
    if (cached > 0)
      (void)context_->release(0);  // an error changes nothing: the shared prefix goes again
    return st;
  }
  n_past_ += n;
  return todo - 1;
}

}  // namespace halyard::runtime
