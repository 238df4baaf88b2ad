#include "engine.h"

#include <malloc.h>
#include <spdlog/spdlog.h>

#include <utility>

namespace halyard::server {
namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

const char* finish_reason_text(runtime::FinishReason r) {
  switch (r) {
    case runtime::FinishReason::kMaxTokens:
    case runtime::FinishReason::kContextFull:
      return "length";
    case runtime::FinishReason::kEndOfGeneration:
    case runtime::FinishReason::kStopToken:
      return "stop";
    case runtime::FinishReason::kCancelled:
      break;
  }
  return "abort";
}

void Notifier::notify() {
  {
    std::lock_guard lock(mutex_);
    ++count_;
  }
  cv_.notify_all();
}

void Notifier::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  cv_.wait_for(lock, timeout, [&] { return count_ != seen_; });
  seen_ = count_;
}

bool RequestStream::take(std::vector<runtime::RequestEvent>& out) {
  std::lock_guard lock(mutex_);
  for (auto& e : events_)
    out.push_back(std::move(e));
  events_.clear();
  return finished_;
}

void RequestStream::push(runtime::RequestEvent event) {
  {
    std::lock_guard lock(mutex_);
    finished_ = finished_ || event.finish.has_value();
    events_.push_back(std::move(event));
  }
  if (notifier_)
    notifier_->notify();
}

Engine::Engine(std::unique_ptr<runtime::Scheduler> scheduler, ServerMetrics& metrics, const EngineOptions& options)
    : scheduler_(std::move(scheduler)), metrics_(metrics), options_(options) {
  started_ns_ = now_ns();
  last_progress_ns_ = started_ns_;
  loop_running_ = true;
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() {
  stop();
}

void Engine::stop() {
  stopping_ = true;
  if (thread_.joinable())
    thread_.join();
}

Result<std::shared_ptr<RequestStream>> Engine::submit(runtime::Request request, std::shared_ptr<Notifier> notifier) {
  // Under streams_mutex_, so the loop cannot route an event of the id before its stream is known.
  std::lock_guard lock(streams_mutex_);
  auto id = scheduler_->submit(std::move(request));
  if (!id.is_ok())
    return id.status();
  auto stream = std::make_shared<RequestStream>(*id, std::move(notifier));
  streams_[*id] = stream;
  return stream;
}

void Engine::cancel(const RequestStream& stream) {
  // not_found: it finished already; nothing to free.
  (void)scheduler_->cancel(stream.id());
}

void Engine::cancel_all() {
  std::lock_guard lock(streams_mutex_);
  for (const auto& [id, stream] : streams_)
    (void)scheduler_->cancel(id);
}

int Engine::open_requests() const {
  std::lock_guard lock(streams_mutex_);
  return static_cast<int>(streams_.size());
}

bool Engine::inject_stall(std::chrono::milliseconds d) {
  if (!options_.fault_injection)
    return false;
  stall_until_ns_ = now_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  return true;
}

bool Engine::healthy() const {
  if (!loop_running_)
    return false;
  const double idle_s = static_cast<double>(now_ns() - last_progress_ns_.load()) * 1e-9;
  return !(scheduler_->has_work() && idle_s * 1e3 > static_cast<double>(options_.stall_timeout.count()));
}

double Engine::last_step_age_seconds() const {
  const std::int64_t last = last_step_ns_.load();
  return static_cast<double>(now_ns() - (last ? last : started_ns_)) * 1e-9;
}

EngineGauges Engine::gauges() const {
  const runtime::SchedulerStats s = scheduler_->stats();
  EngineGauges g;
  g.running = s.running;
  g.waiting = s.waiting;
  g.kv_cache_usage = s.kv_blocks_total > 0 ? static_cast<double>(s.kv_blocks_used) / s.kv_blocks_total : 0;
  g.last_step_age_seconds = last_step_age_seconds();
  return g;
}

void Engine::loop() {
  int failures = 0;
  bool worked = false;  // a step ran since the loop was last idle
  while (!stopping_) {
    if (now_ns() < stall_until_ns_.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    if (!scheduler_->wait_for_work(std::chrono::milliseconds(50))) {
      last_progress_ns_ = now_ns();
      if (worked && options_.trim_heap_when_idle) {
        // Idle for 50 ms after work: the HTTP threads have written their answers and freed
        // their buffers. Trimming walks every arena once (milliseconds), off any request's path.
        malloc_trim(0);
        ++heap_trims_;
      }
      worked = false;
      continue;
    }
    worked = true;
    const Clock::time_point step_start = Clock::now();
    auto events = scheduler_->step();
    if (!events.is_ok()) {
      // A device error changes no request; after a few in a row, every request is cancelled so
      // its client gets an answer instead of waiting for ever.
      spdlog::error("engine: step failed: {}", events.status().to_string());
      if (++failures >= 3) {
        spdlog::error("engine: {} failed steps in a row; cancelling every request", failures);
        cancel_all();
        failures = 0;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    failures = 0;
    route(*events, step_start);
    const std::int64_t t = now_ns();
    last_step_ns_ = t;
    last_progress_ns_ = t;
  }
  loop_running_ = false;
}

void Engine::route(runtime::StepEvents& step, Clock::time_point step_start) {
  const Clock::time_point now = Clock::now();
  std::lock_guard lock(streams_mutex_);
  for (const runtime::Admission& a : step.admitted) {
    const auto it = streams_.find(a.id);
    if (it == streams_.end() || !a.first)
      continue;
    // Queued until the step that admitted it began.
    metrics_.observe_request_queue_time(seconds_between(it->second->submitted(), step_start));
    metrics_.add_prompt_tokens(static_cast<std::uint64_t>(a.queried_tokens));
    metrics_.add_prefix_cache(static_cast<std::uint64_t>(a.queried_tokens),
                              static_cast<std::uint64_t>(a.cached_tokens));
    it->second->prompt_cached_tokens = a.cached_tokens;
  }
  for (runtime::RequestEvent& e : step.events) {
    const auto it = streams_.find(e.id);
    if (it == streams_.end())
      continue;
    RequestStream& s = *it->second;
    for (std::size_t i = 0; i < e.tokens.size(); ++i) {
      if (!s.last_token)
        metrics_.observe_time_to_first_token(seconds_between(s.submitted(), now));
      else
        metrics_.observe_inter_token_latency(seconds_between(*s.last_token, now));
      s.last_token = now;
    }
    metrics_.add_generation_tokens(e.tokens.size());
    const bool finished = e.finish.has_value();
    if (finished) {
      metrics_.observe_e2e_request_latency(seconds_between(s.submitted(), now));
      metrics_.request_finished(s.stop_matched.load() ? "stop" : finish_reason_text(*e.finish));
    }
    s.push(std::move(e));
    if (finished)
      streams_.erase(it);
  }
}

}  // namespace halyard::server
