// The server's engine loop: one thread that steps the Scheduler (continuous batching over one
// Context) whenever it has work, and hands each request's events to that request's
// RequestStream, where an HTTP thread waits for them. Requests join between steps (the
// scheduler's inbox); cancelling a stream frees its sequence at the next step. The loop also
// keeps the figures /health and /metrics need: when it last made progress, the latency
// histograms (time to first token, inter-token latency, queue time, end to end) and the token
// counters.
// Ownership: borrows the ServerMetrics (and, through the Scheduler, the Context), which must
// outlive it; owns the Scheduler and the thread (joined by stop() or the destructor).
// Thread safety: every public method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "halyard/runtime/scheduler.h"
#include "metrics.h"

namespace halyard::server {

using Clock = std::chrono::steady_clock;

// OpenAI's finish_reason and vLLM's finished_reason label: "length" (max_tokens, context full),
// "stop" (end of generation, stop token), "abort" (cancelled).
const char* finish_reason_text(runtime::FinishReason reason);

// Wakes an HTTP thread when any of its requests (n choices) has new events.
class Notifier {
 public:
  void notify();
  // Returns at once when notify() ran since the last wait, else after up to `timeout`.
  void wait(std::chrono::milliseconds timeout);

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::uint64_t count_ = 0, seen_ = 0;
};

// One request's events, from the engine thread to the HTTP thread serving it.
class RequestStream {
 public:
  RequestStream(runtime::RequestId id, std::shared_ptr<Notifier> notifier)
      : id_(id), submitted_(Clock::now()), notifier_(std::move(notifier)) {}
  runtime::RequestId id() const { return id_; }
  // Moves the events that arrived into `out` (appending); returns whether the finish event has
  // arrived (now or before).
  bool take(std::vector<runtime::RequestEvent>& out);
  void push(runtime::RequestEvent event);

  // Engine-thread timing.
  Clock::time_point submitted() const { return submitted_; }
  std::optional<Clock::time_point> last_token;
  std::atomic<int> prompt_cached_tokens{0};
  // Set by the HTTP thread before it cancels a request whose stop string matched, so the
  // metrics count the finish as "stop", not "abort".
  std::atomic<bool> stop_matched{false};

 private:
  runtime::RequestId id_;
  Clock::time_point submitted_;
  std::shared_ptr<Notifier> notifier_;
  std::mutex mutex_;
  std::vector<runtime::RequestEvent> events_;
  bool finished_ = false;
};

struct EngineOptions {
  // /health turns 503 when the loop has work and has made no step for this long.
  std::chrono::milliseconds stall_timeout{30000};
  bool fault_injection = false;  // allows inject_stall() (test builds)
  // When the loop goes idle after work, give the heap's free pages back to the system
  // (malloc_trim): a burst of requests frees its buffers in many threads' arenas, and glibc keeps
  // those pages resident until asked, so resident memory would stay at the burst's high-water mark.
  bool trim_heap_when_idle = true;
};

class Engine {
 public:
  Engine(std::unique_ptr<runtime::Scheduler> scheduler, ServerMetrics& metrics, const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // resource_exhausted when the queue is full (429), else the scheduler's checks.
  Result<std::shared_ptr<RequestStream>> submit(runtime::Request request, std::shared_ptr<Notifier> notifier);
  // Frees the request's sequence at the next step; its stream gets the kCancelled finish.
  void cancel(const RequestStream& stream);
  void cancel_all();
  // Stops the loop and joins it; requests still open get no more events.
  void stop();

  // Liveness: the loop thread runs, and it is not stuck (work and no step for stall_timeout).
  bool healthy() const;
  double last_step_age_seconds() const;
  runtime::SchedulerStats stats() const { return scheduler_->stats(); }
  EngineGauges gauges() const;
  int open_requests() const;
  // How often the idle loop trimmed the heap (EngineOptions::trim_heap_when_idle).
  std::uint64_t heap_trims() const { return heap_trims_.load(); }
  // Test builds: the loop makes no step for `d` (a wedged engine for /health).
  bool inject_stall(std::chrono::milliseconds d);

 private:
  void loop();
  void route(runtime::StepEvents& events, Clock::time_point step_start);

  std::unique_ptr<runtime::Scheduler> scheduler_;
  ServerMetrics& metrics_;
  EngineOptions options_;

  mutable std::mutex streams_mutex_;
  std::map<runtime::RequestId, std::shared_ptr<RequestStream>> streams_;

  std::atomic<bool> stopping_{false};
  std::atomic<bool> loop_running_{false};
  std::atomic<std::int64_t> last_progress_ns_{0};  // a step ended, or the loop found no work
  std::atomic<std::int64_t> last_step_ns_{0};      // a step ended (0: none yet)
  std::atomic<std::int64_t> stall_until_ns_{0};
  std::int64_t started_ns_ = 0;
  std::atomic<std::uint64_t> heap_trims_{0};
  std::thread thread_;
};

}  // namespace halyard::server
