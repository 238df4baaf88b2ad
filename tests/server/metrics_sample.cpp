// Writes a /metrics body with known contents for tests/server/check_metrics_format.py, which
// parses it with a real Prometheus parser (prometheus_client). Usage: halyard-metrics-sample OUT
#include <cstdio>
#include <fstream>

#include "metrics.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_FILE\n", argv[0]);
    return 2;
  }
  // A model name with every character the label escapes (quote, backslash, line feed).
  halyard::server::ServerMetrics m("smol\"lm\\2\nq4", 16, 512);
  m.add_prompt_tokens(120);
  m.add_generation_tokens(40);
  m.add_prefix_cache(96, 64);
  m.request_finished("stop");
  m.request_finished("stop");
  m.request_finished("length");
  for (double t : {0.001, 0.03, 0.1, 3000.0})
    m.observe_time_to_first_token(t);
  for (double t : {0.01, 0.02, 0.02, 0.5})
    m.observe_inter_token_latency(t);
  for (double t : {0.3, 1.7, 8000.0})
    m.observe_e2e_request_latency(t);
  for (double t : {0.0, 0.2, 0.9})
    m.observe_request_queue_time(t);
  const std::string body =
      m.render({.running = 3, .waiting = 1, .kv_cache_usage = 0.375, .last_step_age_seconds = 0.125});
  std::ofstream out(argv[1], std::ios::binary);
  out << body;
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", argv[1]);
    return 1;
  }
  return 0;
}
