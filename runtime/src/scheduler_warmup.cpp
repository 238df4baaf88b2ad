// Scheduler::warm_up (scheduler.h): the first touch of the KV cache and the first compile and
// run of the common batch shapes, done before a server reports ready instead of inside the
// first requests' latency and resident-memory growth.
#include <algorithm>
#include <chrono>
#include <string>

#include "halyard/runtime/scheduler.h"

namespace halyard::runtime {

Result<WarmupReport> Scheduler::warm_up() {
  if (stepping_.exchange(true))
    return failed_precondition("Scheduler::warm_up: step() is running on another thread");
  struct Done {
    std::atomic<bool>& flag;
    ~Done() { flag.store(false); }
  } done{stepping_};
  {
    std::lock_guard lock(mutex_);
    if (next_id_ != 1 || !inbox_.empty() || !running_.empty() || !waiting_.empty())
      return failed_precondition("Scheduler::warm_up runs before the first request is submitted");
  }
  const auto start = std::chrono::steady_clock::now();
  WarmupReport report;
  const std::size_t graphs_before = context_.compiled_graphs();
  context_.clear_prefix_cache();
  HALYARD_ASSIGN_OR_RETURN(report.kv_bytes_prefaulted, context_.prefault_kv());

  // Token 0 exists in every vocabulary; what the steps compute is thrown away.
  std::vector<BatchToken> batch;
  auto run = [&](int n_seqs) -> Status {
    const Status st = context_.step(batch);
    for (int s = 0; s < n_seqs; ++s)
      (void)context_.release(s);  // empty sequences: cannot fail
    if (!st.is_ok())
      return Status(st.code(), "warm-up step of " + std::to_string(batch.size()) + " tokens: " + st.message());
    return Status::ok();
  };
  for (int b = 1; b <= options_.max_running; ++b) {
    batch.clear();
    for (int s = 0; s < b; ++s)
      batch.push_back(BatchToken{0, s, 0, true});
    HALYARD_RETURN_IF_ERROR(run(b));
    report.decode_batches = b;
  }
  const int chunk = std::min({options_.prefill_chunk, options_.max_batch_tokens, context_length_});
  batch.clear();
  for (int p = 0; p < chunk; ++p)
    batch.push_back(BatchToken{0, 0, p, p + 1 == chunk});
  HALYARD_RETURN_IF_ERROR(run(1));
  report.prefill_tokens = chunk;
  // The chunk's full blocks were registered for reuse; they are no prompt's.
  context_.clear_prefix_cache();
  report.graphs_compiled = static_cast<int>(context_.compiled_graphs() - graphs_before);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace halyard::runtime
