#include "metrics.h"

#include <unistd.h>

#include <array>
#include <fstream>

namespace halyard::server {
namespace {

// Bucket bounds are vLLM's, from PrometheusStatLogger in vllm/v1/metrics/loggers.py
// (vllm-project/vllm): dashboards and SLO rules written for vLLM select these `le` values.
constexpr std::array<double, 22> kTimeToFirstTokenBuckets = {0.001, 0.005, 0.01, 0.02,  0.04,  0.06,  0.08, 0.1,
                                                             0.25,  0.5,   0.75, 1.0,   2.5,   5.0,   7.5,  10.0,
                                                             20.0,  40.0,  80.0, 160.0, 640.0, 2560.0};
constexpr std::array<double, 19> kInterTokenLatencyBuckets = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
                                                              0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
// vLLM's request_latency_buckets, shared by the e2e latency and queue time histograms.
constexpr std::array<double, 21> kRequestLatencyBuckets = {0.3,  0.5,   0.8,   1.0,   1.5,   2.0,    2.5,
                                                           5.0,  10.0,  15.0,  20.0,  30.0,  40.0,   50.0,
                                                           60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
static_assert(bounds_ascending(kTimeToFirstTokenBuckets));
static_assert(bounds_ascending(kInterTokenLatencyBuckets));
static_assert(bounds_ascending(kRequestLatencyBuckets));

// vLLM's FinishReason values, rendered from the start.
constexpr std::array<std::string_view, 3> kFinishedReasons = {"stop", "length", "abort"};

}  // namespace

// A copy taken under the lock, rendered outside it.
struct ServerMetrics::Counts {
  std::uint64_t prompt_tokens;
  std::uint64_t generation_tokens;
  std::uint64_t prefix_queries;
  std::uint64_t prefix_hits;
  std::map<std::string, std::uint64_t, std::less<>> finished;
  Histogram time_to_first_token;
  Histogram inter_token_latency;
  Histogram e2e_request_latency;
  Histogram request_queue_time;
};

ServerMetrics::ServerMetrics(std::string model_name, int block_size, int num_blocks)
    : model_name_(std::move(model_name)),
      block_size_(std::to_string(block_size)),
      num_blocks_(std::to_string(num_blocks)),
      time_to_first_token_(kTimeToFirstTokenBuckets),
      inter_token_latency_(kInterTokenLatencyBuckets),
      e2e_request_latency_(kRequestLatencyBuckets),
      request_queue_time_(kRequestLatencyBuckets) {
  for (std::string_view reason : kFinishedReasons)
    finished_.emplace(reason, 0);
}

void ServerMetrics::add_prompt_tokens(std::uint64_t n) {
  std::lock_guard lock(mutex_);
  prompt_tokens_ += n;
}

void ServerMetrics::add_generation_tokens(std::uint64_t n) {
  std::lock_guard lock(mutex_);
  generation_tokens_ += n;
}

void ServerMetrics::add_prefix_cache(std::uint64_t queried_tokens, std::uint64_t hit_tokens) {
  std::lock_guard lock(mutex_);
  prefix_queries_ += queried_tokens;
  prefix_hits_ += hit_tokens;
}

void ServerMetrics::request_finished(std::string_view finished_reason) {
  std::lock_guard lock(mutex_);
  auto it = finished_.find(finished_reason);
  if (it == finished_.end())
    it = finished_.emplace(std::string(finished_reason), 0).first;
  ++it->second;
}

void ServerMetrics::observe_time_to_first_token(double seconds) {
  std::lock_guard lock(mutex_);
  time_to_first_token_.observe(seconds);
}

void ServerMetrics::observe_inter_token_latency(double seconds) {
  std::lock_guard lock(mutex_);
  inter_token_latency_.observe(seconds);
}

void ServerMetrics::observe_e2e_request_latency(double seconds) {
  std::lock_guard lock(mutex_);
  e2e_request_latency_.observe(seconds);
}

void ServerMetrics::observe_request_queue_time(double seconds) {
  std::lock_guard lock(mutex_);
  request_queue_time_.observe(seconds);
}

void ServerMetrics::render_set(TextWriter& w, std::string_view prefix, const Counts& c,
                               const EngineGauges& gauges) const {
  const std::string p(prefix);
  const Label model[] = {{"model_name", model_name_}};
  auto gauge = [&](const char* name, const char* help, double value) {
    const std::string full = p + name;
    w.family(full, MetricType::kGauge, help);
    w.sample(full, model, value);
  };
  auto counter = [&](const char* name, const char* help, std::uint64_t value) {
    const std::string full = p + name;
    w.family(full, MetricType::kCounter, help);
    w.sample(full, model, value);
  };
  auto histogram = [&](const char* name, const char* help, const Histogram& h) {
    const std::string full = p + name;
    w.family(full, MetricType::kHistogram, help);
    w.histogram(full, model, h);
  };

  gauge("num_requests_running", "Requests in the running batch.", gauges.running);
  gauge("num_requests_waiting", "Requests queued, waiting to be scheduled.", gauges.waiting);
  gauge("kv_cache_usage_perc", "Share of KV-cache blocks in use: 1 means all of them.", gauges.kv_cache_usage);
  {
    const std::string full = p + "cache_config_info";
    w.family(full, MetricType::kGauge, "The KV cache's configuration, in labels; the value is always 1.");
    const Label labels[] = {{"model_name", model_name_}, {"block_size", block_size_}, {"num_gpu_blocks", num_blocks_}};
    w.sample(full, labels, 1.0);
  }
  counter("prompt_tokens_total", "Prompt (prefill) tokens processed.", c.prompt_tokens);
  counter("generation_tokens_total", "Tokens generated.", c.generation_tokens);
  {
    const std::string full = p + "request_success_total";
    w.family(full, MetricType::kCounter, "Requests finished, by finish reason.");
    for (const auto& [reason, n] : c.finished) {
      const Label labels[] = {{"model_name", model_name_}, {"finished_reason", reason}};
      w.sample(full, labels, n);
    }
  }
  counter("prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.", c.prefix_queries);
  counter("prefix_cache_hits_total", "Prompt tokens found in the prefix cache.", c.prefix_hits);
  histogram("time_to_first_token_seconds", "Time from arrival to the first generated token, in seconds.",
            c.time_to_first_token);
  histogram("inter_token_latency_seconds", "Time between consecutive generated tokens, in seconds.",
            c.inter_token_latency);
  histogram("e2e_request_latency_seconds", "Time from arrival to the last token, in seconds.", c.e2e_request_latency);
  histogram("request_queue_time_seconds", "Time requests spent queued before they ran, in seconds.",
            c.request_queue_time);
}

std::string ServerMetrics::render(const EngineGauges& gauges) const {
  const Counts c = [&] {
    std::lock_guard lock(mutex_);
    return Counts{prompt_tokens_,       generation_tokens_,   prefix_queries_,      prefix_hits_,       finished_,
                  time_to_first_token_, inter_token_latency_, e2e_request_latency_, request_queue_time_};
  }();
  TextWriter w;
  render_set(w, "vllm:", c, gauges);
  render_set(w, "halyard:", c, gauges);
  const Label model[] = {{"model_name", model_name_}};
  w.family("halyard:engine_last_step_age_seconds", MetricType::kGauge,
           "Seconds since the engine loop last finished a step.");
  w.sample("halyard:engine_last_step_age_seconds", model, gauges.last_step_age_seconds);
  // The standard process metric (as the Prometheus client libraries name it), without labels.
  w.family("process_resident_memory_bytes", MetricType::kGauge, "Resident memory size in bytes.");
  w.sample("process_resident_memory_bytes", {}, resident_memory_bytes());
  return w.take();
}

std::uint64_t resident_memory_bytes() {
  // statm: total program size, then resident set size, both in pages.
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size_pages = 0;
  std::uint64_t resident_pages = 0;
  if (!(statm >> size_pages >> resident_pages))
    return 0;
  const long page = sysconf(_SC_PAGESIZE);
  return page > 0 ? resident_pages * static_cast<std::uint64_t>(page) : 0;
}

}  // namespace halyard::server
