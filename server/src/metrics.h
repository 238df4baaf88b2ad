// The server's Prometheus metrics (GET /metrics). The Gateway API Inference Extension's
// model-server protocol (kubernetes-sigs/gateway-api-inference-extension,
// docs/proposals/003-model-server-protocol) reads vLLM's metric names, so they are served with
// vLLM's names, types, meanings and histogram buckets, each with a `model_name` label; the same
// set again under `halyard:` names, plus halyard:engine_last_step_age_seconds and the standard
// process_resident_memory_bytes.
// Thread safety: every ServerMetrics method may be called from any thread (one mutex; the
// updates are a few additions each).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "prometheus_text.h"

namespace halyard::server {

// What the engine loop reports at render time (gauges are read, not accumulated).
struct EngineGauges {
  int running = 0;
  int waiting = 0;
  double kv_cache_usage = 0;  // 0..1: the share of KV blocks in use
  double last_step_age_seconds = 0;
};

class ServerMetrics {
 public:
  // block_size and num_blocks are the KV cache's shape, shown by cache_config_info.
  ServerMetrics(std::string model_name, int block_size, int num_blocks);

  void add_prompt_tokens(std::uint64_t n);
  void add_generation_tokens(std::uint64_t n);
  // Tokens looked up in the prefix cache and how many of them were found.
  void add_prefix_cache(std::uint64_t queried_tokens, std::uint64_t hit_tokens);
  // vLLM's values: "stop", "length", "abort". Those three series exist from the start (at 0) so
  // a gateway sees them before the first request; any other reason gets a series when first seen.
  void request_finished(std::string_view finished_reason);
  void observe_time_to_first_token(double seconds);
  void observe_inter_token_latency(double seconds);
  void observe_e2e_request_latency(double seconds);
  void observe_request_queue_time(double seconds);

  // The whole /metrics body (Content-Type: text/plain; version=0.0.4; charset=utf-8).
  std::string render(const EngineGauges& gauges) const;

 private:
  struct Counts;
  void render_set(TextWriter& w, std::string_view prefix, const Counts& c, const EngineGauges& gauges) const;

  const std::string model_name_;
  const std::string block_size_;
  const std::string num_blocks_;

  mutable std::mutex mutex_;
  std::uint64_t prompt_tokens_ = 0;
  std::uint64_t generation_tokens_ = 0;
  std::uint64_t prefix_queries_ = 0;
  std::uint64_t prefix_hits_ = 0;
  std::map<std::string, std::uint64_t, std::less<>> finished_;
  Histogram time_to_first_token_;
  Histogram inter_token_latency_;
  Histogram e2e_request_latency_;
  Histogram request_queue_time_;
};

// The process's resident set size in bytes (/proc/self/statm); 0 if it cannot be read.
std::uint64_t resident_memory_bytes();

}  // namespace halyard::server
