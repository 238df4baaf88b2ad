#include "halyard/runtime/scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <string>
#include <utility>

namespace halyard::runtime {

// A request on the engine thread. `tokens` is the prompt and then the generated tokens; the
// first `fed` of them are in the request's sequence. While decoding, exactly the last one
// (sampled, reported, not yet fed) is left; after a preemption fed is 0 and the whole list is
// prefilled again.
struct Scheduler::Live {
  Live(RequestId id_, Request r) : id(id_), request(std::move(r)), sampler(request.sampler) {}
  RequestId id;
  Request request;
  Sampler sampler;
  std::vector<TokenId> tokens;
  int prompt_len = 0;
  int generated = 0;
  int fed = 0;
  int high_water = 0;  // the most tokens ever fed: feeding below it is recomputation
  int seq = -1;        // -1 while waiting
  bool done = false;
  bool admitted = false;  // has held a sequence (a later admission follows a preemption)

  int remaining() const { return static_cast<int>(tokens.size()) - fed; }
  // Decoding: admitted and past its (re)prefill, one sampled token left to feed.
  bool decoding() const { return seq >= 0 && generated > 0 && remaining() == 1; }
};

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kMaxTokens:
      return "max_tokens";
    case FinishReason::kEndOfGeneration:
      return "end_of_generation";
    case FinishReason::kStopToken:
      return "stop_token";
    case FinishReason::kContextFull:
      return "context_full";
    case FinishReason::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

Scheduler::Scheduler(Context& context, const SchedulerOptions& options) : context_(context), options_(options) {}

Result<std::unique_ptr<Scheduler>> Scheduler::create(Context& context, const SchedulerOptions& options) {
  const ContextOptions& co = context.options();
  if (options.max_batch_tokens < 0 || options.prefill_chunk < 0 || options.max_running < 0 || options.max_waiting < 0) {
    return invalid_argument("scheduler options must be >= 0 (0 picks the default): max_batch_tokens " +
                            std::to_string(options.max_batch_tokens) + ", prefill_chunk " +
                            std::to_string(options.prefill_chunk) + ", max_running " +
                            std::to_string(options.max_running) + ", max_waiting " +
                            std::to_string(options.max_waiting));
  }
  SchedulerOptions o = options;
  if (o.max_batch_tokens == 0)
    o.max_batch_tokens = co.max_batch_tokens;
  if (o.prefill_chunk == 0)
    o.prefill_chunk = o.max_batch_tokens;
  if (o.max_running == 0)
    o.max_running = std::min(co.max_sequences, o.max_batch_tokens);
  if (o.max_batch_tokens > co.max_batch_tokens) {
    return invalid_argument("the scheduler's max_batch_tokens " + std::to_string(o.max_batch_tokens) +
                            " exceeds the context's max_batch_tokens of " + std::to_string(co.max_batch_tokens));
  }
  if (o.max_running > co.max_sequences) {
    return invalid_argument("max_running " + std::to_string(o.max_running) + " exceeds the context's " +
                            std::to_string(co.max_sequences) + " sequences");
  }
  if (o.max_running > o.max_batch_tokens) {
    return invalid_argument("max_running " + std::to_string(o.max_running) + " exceeds max_batch_tokens " +
                            std::to_string(o.max_batch_tokens) +
                            ": every running request must be able to decode in every step");
  }
  // The oldest running request must always fit alone, or preemption could not guarantee progress.
  const int bs = context.kv().block_size();
  const int per_seq = (context.context_length() + bs - 1) / bs;
  if (context.blocks_total() < per_seq) {
    return invalid_argument("the context's KV cache has " + std::to_string(context.blocks_total()) +
                            " blocks but one sequence of " + std::to_string(context.context_length()) +
                            " positions needs " + std::to_string(per_seq) +
                            "; give the context n_blocks >= " + std::to_string(per_seq) + " (or 0)");
  }
  for (int s = 0; s < co.max_sequences; ++s) {
    if (!context.tokens(s).empty()) {
      return failed_precondition("sequence " + std::to_string(s) +
                                 " of the context is not empty: a scheduler needs a context of its own");
    }
  }
  auto sched = std::unique_ptr<Scheduler>(new Scheduler(context, o));
  sched->vocab_size_ = context.model().config().vocab_size;
  sched->context_length_ = context.context_length();
  for (int s = co.max_sequences - 1; s >= 0; --s)
    sched->free_seqs_.push_back(s);  // sequence 0 is handed out first
  sched->counters_.kv_blocks_total = context.blocks_total();
  sched->published_ = sched->counters_;
  return sched;
}

Scheduler::~Scheduler() {
  for (const auto& r : running_)
    (void)context_.release(r->seq);  // a valid sequence id: cannot fail
}

Result<RequestId> Scheduler::submit(Request request) {
  if (request.prompt.empty())
    return invalid_argument("the prompt is empty: give at least one token");
  if (static_cast<int>(request.prompt.size()) > context_length_) {
    return out_of_range("the prompt has " + std::to_string(request.prompt.size()) + " tokens but the context holds " +
                        std::to_string(context_length_) + "; shorten it or raise the context length");
  }
  for (std::size_t i = 0; i < request.prompt.size(); ++i) {
    const TokenId t = request.prompt[i];
    if (t < 0 || t >= vocab_size_) {
      return invalid_argument("prompt token " + std::to_string(i) + " is " + std::to_string(t) +
                              ", outside the vocabulary of " + std::to_string(vocab_size_) + " tokens");
    }
  }
  if (request.max_tokens < 1)
    return invalid_argument("max_tokens must be >= 1, not " + std::to_string(request.max_tokens));
  for (TokenId t : request.stop_tokens) {
    if (t < 0 || t >= vocab_size_) {
      return invalid_argument("stop token " + std::to_string(t) + " is outside the vocabulary of " +
                              std::to_string(vocab_size_) + " tokens");
    }
  }
  if (request.logprobs < -1 || request.logprobs > kMaxTopLogprobs) {
    return invalid_argument("logprobs must be -1 (off) or 0.." + std::to_string(kMaxTopLogprobs) + ", not " +
                            std::to_string(request.logprobs));
  }
  HALYARD_RETURN_IF_ERROR(validate(request.sampler, static_cast<std::size_t>(vocab_size_)));

  std::unique_lock lock(mutex_);
  const int waiting = published_.waiting + static_cast<int>(inbox_.size());
  if (options_.max_waiting > 0 && waiting >= options_.max_waiting) {
    return resource_exhausted(std::to_string(waiting) + " requests are waiting already (max_waiting " +
                              std::to_string(options_.max_waiting) + "); try again later");
  }
  const RequestId id = next_id_++;
  lock.unlock();
  // The sampler is built off the lock; the engine thread sees it once the inbox hands it over.
  auto live = std::make_unique<Live>(id, std::move(request));
  live->tokens = live->request.prompt;
  live->prompt_len = static_cast<int>(live->tokens.size());
  // As generate() does (and llama.cpp): the prompt is part of the penalties' history.
  for (TokenId t : live->tokens)
    live->sampler.accept(t);
  lock.lock();
  live_ids_.insert(id);
  inbox_.push_back(std::move(live));
  lock.unlock();
  work_.notify_all();
  return id;
}

Status Scheduler::cancel(RequestId id) {
  {
    std::lock_guard lock(mutex_);
    if (live_ids_.count(id) == 0) {
      return not_found("request " + std::to_string(id) +
                       (id == 0 || id >= next_id_ ? " was never submitted" : " has finished already"));
    }
    cancels_.push_back(id);
  }
  work_.notify_all();
  return Status::ok();
}

bool Scheduler::has_work() const {
  std::lock_guard lock(mutex_);
  return !inbox_.empty() || !cancels_.empty() || published_.running > 0 || published_.waiting > 0 || events_due_;
}

bool Scheduler::wait_for_work(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return work_.wait_for(lock, timeout, [&] {
    return !inbox_.empty() || !cancels_.empty() || published_.running > 0 || published_.waiting > 0 || events_due_;
  });
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(mutex_);
  SchedulerStats s = published_;
  s.waiting += static_cast<int>(inbox_.size());
  return s;
}

void Scheduler::take_inbox() {
  std::vector<RequestId> cancels;
  {
    std::lock_guard lock(mutex_);
    for (auto& r : inbox_)
      waiting_.push_back(std::move(r));
    published_.waiting += static_cast<int>(inbox_.size());  // still counted for max_waiting
    inbox_.clear();
    cancels.swap(cancels_);
  }
  for (RequestId id : cancels) {
    auto match = [&](const std::unique_ptr<Live>& r) { return r->id == id && !r->done; };
    if (auto it = std::find_if(running_.begin(), running_.end(), match); it != running_.end()) {
      finish(**it, FinishReason::kCancelled, -1);
      running_.erase(it);
    } else if (auto w = std::find_if(waiting_.begin(), waiting_.end(), match); w != waiting_.end()) {
      finish(**w, FinishReason::kCancelled, -1);
      waiting_.erase(w);
    }
    // Otherwise it finished in an earlier step, after cancel() was called: its event is out.
  }
}

void Scheduler::finish(Live& r, FinishReason reason, TokenId stop_token) {
  if (r.seq >= 0) {
    (void)context_.release(r.seq);  // a valid sequence id: cannot fail
    free_seqs_.push_back(r.seq);
    r.seq = -1;
  }
  r.done = true;
  RequestEvent* e = nullptr;
  if (!due_.empty() && due_.back().id == r.id && !due_.back().finish) {
    e = &due_.back();  // this step's token event
  } else {
    e = &due_.emplace_back();
    e->id = r.id;
  }
  e->finish = reason;
  e->stop_token = stop_token;
  e->prompt_tokens = r.prompt_len;
  e->generated_tokens = r.generated;
  ++counters_.finished;
  if (reason == FinishReason::kCancelled)
    ++counters_.cancelled;
}

void Scheduler::preempt_latest() {
  std::unique_ptr<Live> r = std::move(running_.back());
  running_.pop_back();
  (void)context_.release(r->seq);  // a valid sequence id: cannot fail
  free_seqs_.push_back(r->seq);
  spdlog::debug("scheduler: preempted request {} ({} tokens fed); it will be recomputed", r->id, r->fed);
  r->seq = -1;
  r->fed = 0;
  waiting_.push_front(std::move(r));
  ++counters_.preemptions;
}

int Scheduler::fitting_tokens(int seq, int want, int free_blocks) const {
  if (want <= 0)
    return 0;
  const KvCache& kv = context_.kv();
  const int len = kv.length(seq).value();
  const int bs = kv.block_size();
  const int held = static_cast<int>(kv.blocks(seq).value().size());
  int n = std::min(want, held * bs - len + free_blocks * bs);
  // The closed form is exact for blocks of the sequence's own; a shared block (which this
  // scheduler never makes) would need a copy, so check and back off.
  while (n > 0 && kv.blocks_needed(seq, len, len + n) > free_blocks)
    --n;
  return n;
}

void Scheduler::plan(int prefill_limit, StepEvents& out) {
  const KvCache& kv = context_.kv();
  bool preempted = false;
  for (;;) {
    plan_.clear();
    int budget = options_.max_batch_tokens;
    int free_blocks = context_.blocks_free();
    bool decodes_fit = true;
    for (const auto& r : running_) {
      if (!r->decoding())
        continue;
      const int need = kv.blocks_needed(r->seq, r->fed, r->fed + 1);
      if (need > free_blocks) {
        decodes_fit = false;
        break;
      }
      free_blocks -= need;
      --budget;  // max_running <= max_batch_tokens: every decode fits the budget
      plan_.push_back({r.get(), 1, true});
    }
    if (!decodes_fit) {
      preempt_latest();
      ++out.preempted;
      preempted = true;
      continue;
    }
    int prefill = 0;
    auto take = [&](Live& r, int seq) {
      const int want = std::min({options_.prefill_chunk, r.remaining(), budget, prefill_limit - prefill});
      const int n = fitting_tokens(seq, want, free_blocks);
      if (n > 0) {
        free_blocks -= kv.blocks_needed(seq, r.fed, r.fed + n);
        budget -= n;
        prefill += n;
      }
      return n;
    };
    for (const auto& r : running_) {
      if (r->decoding())
        continue;
      if (const int n = take(*r, r->seq); n > 0)
        plan_.push_back({r.get(), n, false});
    }
    // Admission in FIFO order, never past a request that cannot start (no overtaking), and not
    // right after a preemption (the preempted request would only be readmitted and thrash).
    while (!preempted && !waiting_.empty() && static_cast<int>(running_.size()) < options_.max_running &&
           !free_seqs_.empty()) {
      Live& r = *waiting_.front();
      const int seq = free_seqs_.back();
      const int want = std::min({options_.prefill_chunk, r.remaining(), budget, prefill_limit - prefill});
      // The whole next chunk must fit: a request is not started on a sliver of the cache.
      if (want <= 0 || fitting_tokens(seq, want, free_blocks) < want)
        break;
      free_seqs_.pop_back();
      r.seq = seq;
      Admission& admission = out.admitted.emplace_back();
      admission.id = r.id;
      admission.first = !r.admitted;
      r.admitted = true;
      // The prefix cache: a prompt that starts like an earlier one (or a preempted request's
      // own tokens) shares those blocks and feeds only the rest. The fit above counted every
      // token, so the request fits with fewer; the cached blocks it now holds leave the free count.
      if (r.fed == 0) {
        admission.queried_tokens = static_cast<int>(r.tokens.size());
        const int before = context_.blocks_free();
        if (auto got = context_.attach_prefix(seq, r.tokens); got.is_ok() && got.value() > 0) {
          r.fed = got.value();
          r.high_water = std::max(r.high_water, r.fed);
          counters_.cached_tokens += static_cast<std::uint64_t>(r.fed);
          admission.cached_tokens = r.fed;
          free_blocks -= before - context_.blocks_free();
        }
      }
      if (const int n = take(r, seq); n > 0)
        plan_.push_back({&r, n, false});
      running_.push_back(std::move(waiting_.front()));
      waiting_.pop_front();
    }
    // Requests hold blocks but none can grow (partial prefills in a full cache): free the latest.
    if (plan_.empty() && !running_.empty() && prefill_limit > 0) {
      preempt_latest();
      ++out.preempted;
      preempted = true;
      continue;
    }
    return;
  }
}

Result<StepEvents> Scheduler::step() {
  if (stepping_.exchange(true))
    return failed_precondition("Scheduler::step is running on another thread: step from one engine thread only");
  struct Done {
    std::atomic<bool>& flag;
    ~Done() { flag.store(false); }
  } done{stepping_};

  StepEvents out;
  take_inbox();
  int prefill_limit = options_.max_batch_tokens;
  for (;;) {
    plan(prefill_limit, out);
    if (plan_.empty())
      break;
    batch_.clear();
    int planned_prefill = 0;
    for (const Planned& p : plan_) {
      const Live& r = *p.request;
      for (int j = 0; j < p.n_tokens; ++j) {
        const int pos = r.fed + j;
        const bool last = j + 1 == p.n_tokens && pos + 1 == static_cast<int>(r.tokens.size());
        batch_.push_back({r.tokens[static_cast<std::size_t>(pos)], r.seq, pos, last});
      }
      planned_prefill += p.decode ? 0 : p.n_tokens;
    }
    const Status st = context_.step(batch_);
    if (st.is_ok()) {
      sample_outputs(out);
      break;
    }
    if (st.code() != StatusCode::kCacheFull) {
      publish_stats();
      return st;  // no request changed; the events due stay for the next step
    }
    // The plan counts blocks with the cache's own blocks_needed, so this is not expected; it is
    // handled all the same, so cache_full never reaches the caller: fewer prefill tokens, and
    // when only decodes were left, a preemption.
    spdlog::warn("scheduler: the context refused a planned step ({}); retrying smaller", st.to_string());
    if (planned_prefill > 0) {
      prefill_limit = planned_prefill / 2;
    } else if (!running_.empty()) {
      preempt_latest();
      ++out.preempted;
    } else {
      break;
    }
  }
  std::erase_if(running_, [](const std::unique_ptr<Live>& r) { return r->done; });
  out.events = std::move(due_);
  due_.clear();
  finished_ids_.clear();
  for (const RequestEvent& e : out.events) {
    if (e.finish)
      finished_ids_.push_back(e.id);
  }
  publish_stats();
  return out;
}

TokenLogprobs token_logprobs(std::span<const float> logits, TokenId token, int top_n) {
  // log p_i = l_i - (max + log sum exp(l - max)); -inf logits give -inf, never NaN.
  float max = -std::numeric_limits<float>::infinity();
  for (float l : logits)
    max = std::max(max, l);
  double sum = 0;
  for (float l : logits)
    sum += std::exp(static_cast<double>(l) - max);
  const float log_z = max + static_cast<float>(std::log(sum));
  TokenLogprobs out;
  out.logprob = logits[static_cast<std::size_t>(token)] - log_z;
  if (top_n > 0) {
    // The top_n (at most kMaxTopLogprobs) in one pass, kept sorted in `out.top`: no
    // vocabulary-sized scratch per token. Scanning ids in order and inserting only strictly
    // larger logits keeps ties with the lower id first, so the list is deterministic.
    const auto n = std::min<std::size_t>(static_cast<std::size_t>(top_n), logits.size());
    out.top.reserve(n);
    for (std::size_t id = 0; id < logits.size(); ++id) {
      const float l = logits[id];
      if (out.top.size() == n && !(l > out.top.back().logprob))
        continue;
      const auto at =
          std::find_if(out.top.begin(), out.top.end(), [&](const TokenLogprob& t) { return l > t.logprob; }) -
          out.top.begin();
      if (out.top.size() == n)
        out.top.pop_back();
      out.top.insert(out.top.begin() + at, {static_cast<TokenId>(id), l});
    }
    for (TokenLogprob& t : out.top)
      t.logprob -= log_z;  // the raw logits until here
  }
  return out;
}

void Scheduler::sample_outputs(StepEvents& out) {
  ++counters_.steps;
  const Tokenizer& tok = context_.model().tokenizer();
  int index = 0;  // the batch index of the planned request's first token
  for (const Planned& p : plan_) {
    Live& r = *p.request;
    // Counters: tokens below the high-water mark are recomputation.
    const int end = r.fed + p.n_tokens;
    const int fresh_from = std::max(r.fed, r.high_water);
    counters_.recomputed_tokens += static_cast<std::uint64_t>(std::max(0, std::min(end, r.high_water) - r.fed));
    counters_.prompt_tokens += static_cast<std::uint64_t>(std::max(0, std::min(end, r.prompt_len) - fresh_from));
    (p.decode ? out.decode_tokens : out.prefill_tokens) += p.n_tokens;
    r.fed = end;
    r.high_water = std::max(r.high_water, end);
    index += p.n_tokens;
    if (r.fed != static_cast<int>(r.tokens.size()))
      continue;  // a prefill chunk short of the end: no logits
    const std::span<const float> logits = context_.logits(index - 1);
    const TokenId next = r.sampler.sample(logits);
    if (r.request.stop_at_end_of_generation && tok.is_end_of_generation(next)) {
      finish(r, FinishReason::kEndOfGeneration, next);
      continue;
    }
    if (std::find(r.request.stop_tokens.begin(), r.request.stop_tokens.end(), next) != r.request.stop_tokens.end()) {
      finish(r, FinishReason::kStopToken, next);
      continue;
    }
    r.sampler.accept(next);
    r.tokens.push_back(next);
    ++r.generated;
    ++counters_.generated_tokens;
    RequestEvent& e = due_.emplace_back();
    e.id = r.id;
    e.tokens.push_back(next);
    if (r.request.logprobs >= 0)
      e.logprobs.push_back(token_logprobs(logits, next, r.request.logprobs));
    e.prompt_tokens = r.prompt_len;
    e.generated_tokens = r.generated;
    if (r.generated == r.request.max_tokens) {
      finish(r, FinishReason::kMaxTokens, -1);
    } else if (static_cast<int>(r.tokens.size()) - 1 >= context_length_) {
      // As generate(): the token just sampled cannot be fed, the sequence is full.
      finish(r, FinishReason::kContextFull, -1);
    }
  }
}

void Scheduler::publish_stats() {
  std::lock_guard lock(mutex_);
  for (RequestId id : finished_ids_)
    live_ids_.erase(id);
  finished_ids_.clear();
  published_ = counters_;
  published_.running = static_cast<int>(running_.size());
  published_.waiting = static_cast<int>(waiting_.size());
  published_.kv_blocks_used = context_.blocks_used();
  events_due_ = !due_.empty();
}

}  // namespace halyard::runtime
