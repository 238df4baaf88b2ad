// Per-sequence cancellation: Context::cancel sets an atomic flag from any thread; step() reads
// the flags once, before anything else, and runs the batch without the cancelled sequences'
// tokens. Reading them once is what makes "within one step" exact: a cancel that returns before
// a step begins is seen by that step, and a step that is already running finishes as it began.
#include <string>

#include "halyard/runtime/context.h"

namespace halyard::runtime {

Status Context::cancel(int seq) {
  // Only options_ (immutable after create) and the flag array (never resized) are touched, so
  // this is safe on any thread while step() or another call runs.
  if (seq < 0 || seq >= options_.max_sequences) {
    return out_of_range("cancel: sequence id " + std::to_string(seq) + " is outside [0, " +
                        std::to_string(options_.max_sequences) + ")");
  }
  cancelled_[static_cast<std::size_t>(seq)].store(true);
  return Status::ok();
}

bool Context::cancelled(int seq) const {
  return seq >= 0 && seq < options_.max_sequences && cancelled_[static_cast<std::size_t>(seq)].load();
}

bool Context::ran(int i) const {
  return i >= 0 && i < static_cast<int>(ran_.size()) && ran_[static_cast<std::size_t>(i)] != 0;
}

Status Context::step(std::span<const BatchToken> batch, StepOutput output) {
  const auto n = batch.size();
  ran_.assign(n, 0);
  const int n_seq = options_.max_sequences;
  // One read of each flag, so the step and its report agree even if a cancel lands meanwhile.
  live_index_.resize(n);
  std::size_t n_live = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const int s = batch[i].seq;
    const bool dropped = s >= 0 && s < n_seq && cancelled_[static_cast<std::size_t>(s)].load();
    live_index_[i] = dropped ? -1 : static_cast<int>(n_live++);
  }
  if (n_live == n) {
    // The common case: nothing cancelled, nothing copied.
    Status st = run_batch(batch, output);
    if (st.is_ok())
      ran_.assign(n, 1);
    return st;
  }
  const std::size_t n_dropped = n - n_live;
  std::string which;
  for (std::size_t i = 0; i < n; ++i) {
    if (live_index_[i] < 0 && which.find(" " + std::to_string(batch[i].seq) + ",") == std::string::npos)
      which += " " + std::to_string(batch[i].seq) + ",";
  }
  which.pop_back();
  const std::string report =
      "step: sequence(s)" + which + " are cancelled: their " + std::to_string(n_dropped) + " token(s) were left out";
  if (n_live == 0) {
    output_of_.assign(n, -1);  // no graph ran: no token has logits
    return Status(StatusCode::kCancelled,
                  report + " and no token was left to run (empty a cancelled sequence to reuse it)");
  }
  live_batch_.clear();
  for (std::size_t i = 0; i < n; ++i) {
    if (live_index_[i] >= 0)
      live_batch_.push_back(batch[i]);
  }
  HALYARD_RETURN_IF_ERROR(run_batch(live_batch_, output));
  // logits(i) and every other per-token output index the caller's batch: map output_of_ back.
  live_output_of_.swap(output_of_);
  output_of_.assign(n, -1);
  for (std::size_t i = 0; i < n; ++i) {
    if (live_index_[i] >= 0) {
      output_of_[i] = live_output_of_[static_cast<std::size_t>(live_index_[i])];
      ran_[i] = 1;
    }
  }
  return Status(StatusCode::kCancelled, report + "; the other " + std::to_string(n_live) +
                                            " ran (Context::ran / halyard_context_step_ran say which)");
}

}  // namespace halyard::runtime
