// A continuous-batching scheduler over one Context (vLLM's design, sized for this engine):
// requests queue FIFO, get a sequence id when a seat and the KV blocks for their next chunk are
// free, and every step() is one Context step that carries each running request's next decode
// token first and then prefill chunks of admitted requests in FIFO order up to a token budget
// (chunked prefill: a long prompt takes several steps while the others keep decoding). Each
// output is sampled with its request's own sampler chain (sampler.h). When the cache cannot hold
// the decode tokens, the most recently admitted request is preempted: its sequence is freed and
// it goes back to the front of the waiting queue, to be recomputed from its prompt and the
// tokens it had generated (recompute preemption), so a caller never sees cache_full.
//
// A request's tokens equal what generate() (generator.h) gives it alone on a Session with the
// same sampler options: the sampler accepts the prompt, end-of-generation is not reported, and
// a request stops at max_tokens or when its sequence fills the context, as generate() does.
// (Up to the device's batch invariance: exact on ref; on cpu a batch rounds differently from a
// single token, so a greedy pick may differ where the top two logits nearly tie.)
//
// Ownership: borrows the Context (and through it the Model), which must outlive it; while the
// scheduler lives it owns every sequence of the Context, and nobody else may step or change the
// Context. The destructor releases the sequences it holds.
// Thread safety: step() runs on one thread at a time (the engine thread; a concurrent second
// step() is refused with failed_precondition). submit(), cancel(), stats(), has_work() and
// wait_for_work() may be called from any thread at any time, also while step() runs: they touch
// only a small mutex-guarded inbox, which step() drains when it starts.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_set>
#include <vector>

#include "halyard/runtime/context.h"
#include "halyard/runtime/sampler.h"

namespace halyard::runtime {

using RequestId = std::uint64_t;  // 1, 2, ... in submission order; never reused

struct SchedulerOptions {
  // The most tokens (decode + prefill) one step feeds; 0: the context's max_batch_tokens. Must
  // not exceed it, and must be >= the running requests' limit so every one decodes each step.
  int max_batch_tokens = 0;
  // The most prompt tokens one request feeds in one step; 0: max_batch_tokens.
  int prefill_chunk = 0;
  // The most requests holding a sequence at once; 0: the context's max_sequences.
  int max_running = 0;
  // The most requests waiting for a seat; submit() beyond it is resource_exhausted (a server
  // answers 429). 0: unbounded.
  int max_waiting = 0;
};

struct Request {
  std::vector<TokenId> prompt;  // 1 to context_length tokens
  SamplerOptions sampler;       // the seed is sampler.seed
  int max_tokens = 128;         // >= 1
  // A sampled token in this list ends the request (finish kStopToken); it is not reported.
  std::vector<TokenId> stop_tokens;
  // The model's end-of-generation tokens (EOS, end of turn) end the request (kEndOfGeneration)
  // unreported, as generate() does.
  bool stop_at_end_of_generation = true;
  // -1: no log-probabilities; 0..kMaxTopLogprobs: each reported token comes with its
  // log-probability and that many most likely alternatives (OpenAI's logprobs/top_logprobs),
  // from the model's raw distribution (log-softmax of the logits before bias, penalties and
  // temperature, as vLLM reports by default).
  int logprobs = -1;
};
inline constexpr int kMaxTopLogprobs = 20;

struct TokenLogprob {
  TokenId token = 0;
  float logprob = 0;
};
// The log-probability of a reported token and, most likely first, the top alternatives.
struct TokenLogprobs {
  float logprob = 0;
  std::vector<TokenLogprob> top;
};
// log-softmax of `logits` at `token`, and the top_n most likely tokens (ties: lower id first).
TokenLogprobs token_logprobs(std::span<const float> logits, TokenId token, int top_n);

enum class FinishReason {
  kMaxTokens,        // max_tokens generated
  kEndOfGeneration,  // the model's end-of-generation token was sampled
  kStopToken,        // one of Request::stop_tokens was sampled
  kContextFull,      // the sequence holds context_length positions: no token can be fed
  kCancelled,        // cancel()
};
const char* finish_reason_name(FinishReason reason);

// What one step did for one request: the tokens it generated (in order; one per step today),
// and, once, its finish. A server streams `tokens` and closes the stream on `finish`.
struct RequestEvent {
  RequestId id = 0;
  std::vector<TokenId> tokens;
  std::vector<TokenLogprobs> logprobs;  // one per token when the request asked for them, else empty
  std::optional<FinishReason> finish;
  TokenId stop_token = -1;  // the end-of-generation or stop token that finished it, else -1
  // Totals so far, for usage reports.
  int prompt_tokens = 0;
  int generated_tokens = 0;
};

// A request that got a sequence in this step: the end of its queue time. A preempted request
// is admitted again (first false); the prefix cache served cached_tokens of the
// queried_tokens it looked up.
struct Admission {
  RequestId id = 0;
  bool first = true;
  int queried_tokens = 0;
  int cached_tokens = 0;
};

struct StepEvents {
  std::vector<RequestEvent> events;  // cancellations first, then in batch order
  std::vector<Admission> admitted;
  int decode_tokens = 0;   // tokens the Context step ran: decode ...
  int prefill_tokens = 0;  // ... and prompt (or recompute) tokens
  int preempted = 0;       // requests preempted while planning this step
};

// Counters for metrics: gauges (running, waiting, blocks) as of the last step's end (requests
// submitted since count in `waiting`); the rest are totals since creation.
struct SchedulerStats {
  int running = 0;
  int waiting = 0;
  int kv_blocks_used = 0;
  int kv_blocks_total = 0;
  std::uint64_t steps = 0;              // Context steps run
  std::uint64_t prompt_tokens = 0;      // prompt tokens fed the first time
  std::uint64_t recomputed_tokens = 0;  // tokens fed again after a preemption
  std::uint64_t cached_tokens = 0;      // prompt (or recomputation) tokens the prefix cache served
  std::uint64_t generated_tokens = 0;   // tokens reported
  std::uint64_t preemptions = 0;
  std::uint64_t finished = 0;  // requests finished, for any reason (cancelled included)
  std::uint64_t cancelled = 0;
};

// What Scheduler::warm_up did.
struct WarmupReport {
  std::uint64_t kv_bytes_prefaulted = 0;  // 0 on a device whose KV cache is device memory
  int decode_batches = 0;                 // decode steps of 1..decode_batches sequences ran
  int prefill_tokens = 0;                 // the prefill step's length (a full chunk)
  int graphs_compiled = 0;                // graphs the warm-up compiled (new batch shapes)
  double seconds = 0;
};

class Scheduler {
 public:
  // invalid_argument for options out of range (see SchedulerOptions) or a KV cache that cannot
  // hold one sequence of context_length positions (then a request alone could not run);
  // failed_precondition when a sequence of the context is not empty.
  static Result<std::unique_ptr<Scheduler>> create(Context& context, const SchedulerOptions& options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request; it is admitted at a later step(). invalid_argument for an empty prompt, a
  // token or stop token outside the vocabulary, max_tokens < 1 or bad sampler options;
  // out_of_range for a prompt longer than the context; resource_exhausted when max_waiting
  // requests are waiting already. Any thread.
  Result<RequestId> submit(Request request);
  // Cancels a request: at the start of the next step() (or of the one running now) its sequence
  // is freed and it gets its finished event with kCancelled, unless that step finishes it
  // otherwise first. Every submitted request gets exactly one finished event. not_found when
  // the id was never submitted or its finished event has been returned already. Any thread.
  Status cancel(RequestId id);

  // Prepares the engine before the first request, as vLLM does before it reports ready, so no
  // request pays for a first touch: prefaults the KV cache on host devices (Context::prefault_kv)
  // and compiles and runs once the graphs of the steps this scheduler runs most: a decode step
  // of each batch size 1..max_running (one token per sequence, each with logits; on GPU devices
  // these fall into the Context's buckets) and one full prefill chunk (min(prefill_chunk,
  // context length) tokens, one output). Steps that mix a partial chunk with decodes have
  // other lengths and still compile on first use (on host devices in well under a millisecond
  // of graph building). The warm-up's tokens leave nothing behind: its sequences are released
  // and the prefix cache is cleared (anything it held before is dropped too), and no counter of
  // stats() moves. failed_precondition once a request has been submitted or while step() runs;
  // a device error is returned as it is, with the sequences released. Engine thread only.
  Result<WarmupReport> warm_up();

  // Runs one Context step (none when nothing is running or admissible) and returns its events.
  // Never cache_full: the scheduler defers admission and preempts instead. A device error from
  // the Context step is returned and changes no request (the events already due are returned
  // by the next successful step). Engine thread only.
  Result<StepEvents> step();

  // Whether a step() would do anything: requests running, waiting or just submitted, or
  // cancellations to report. Any thread.
  bool has_work() const;
  // Blocks until has_work() or the timeout; returns has_work(). For an engine loop that sleeps
  // while idle. Any thread.
  bool wait_for_work(std::chrono::milliseconds timeout) const;
  SchedulerStats stats() const;
  const SchedulerOptions& options() const { return options_; }

 private:
  struct Live;  // a request the engine thread holds: waiting or running
  struct Planned {
    Live* request;
    int n_tokens;  // fed from request->fed
    bool decode;
  };
  Scheduler(Context& context, const SchedulerOptions& options);
  // Moves the inbox into the waiting queue and applies the cancellations.
  void take_inbox();
  void finish(Live& r, FinishReason reason, TokenId stop_token);
  // Frees the most recently admitted request's sequence and puts it at the front of the queue.
  void preempt_latest();
  // Fills plan_ for this step: decodes, then prefill chunks of running requests, then new
  // admissions, all within the token budget and the free KV blocks; prefill tokens beyond
  // prefill_limit are left out. Preempts while the decodes alone do not fit, or while nothing
  // could run but requests are running.
  void plan(int prefill_limit, StepEvents& out);
  // The most of `want` tokens `seq` can write past its end with `free_blocks` new blocks.
  int fitting_tokens(int seq, int want, int free_blocks) const;
  void sample_outputs(StepEvents& out);
  void publish_stats();

  Context& context_;
  SchedulerOptions options_;
  int vocab_size_ = 0;
  int context_length_ = 0;

  // Engine-thread state.
  std::deque<std::unique_ptr<Live>> waiting_;
  std::vector<std::unique_ptr<Live>> running_;  // in admission order (oldest first)
  std::vector<int> free_seqs_;
  std::vector<Planned> plan_;
  std::vector<BatchToken> batch_;
  std::vector<RequestEvent> due_;        // events not yet returned (kept over a failed step)
  std::vector<RequestId> finished_ids_;  // finished this step, to drop from live_ids_
  std::atomic<bool> stepping_{false};
  SchedulerStats counters_;  // the totals, engine thread

  // Shared with other threads, under mutex_.
  mutable std::mutex mutex_;
  mutable std::condition_variable work_;
  std::vector<std::unique_ptr<Live>> inbox_;
  std::vector<RequestId> cancels_;
  std::unordered_set<RequestId> live_ids_;  // submitted, finished event not yet returned
  RequestId next_id_ = 1;
  SchedulerStats published_;  // counters_ and the gauges, as of the last step
  bool events_due_ = false;   // a failed step left events for the next one
};

}  // namespace halyard::runtime
