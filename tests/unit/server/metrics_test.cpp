#include "metrics.h"

#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include "prometheus_text.h"

namespace halyard::server {
namespace {

// The sample lines of a body, by series (name and labels as written) to value text.
std::map<std::string, std::string> samples(const std::string& body) {
  std::map<std::string, std::string> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#')
      continue;
    const auto space = line.rfind(' ');
    EXPECT_NE(space, std::string::npos) << line;
    EXPECT_TRUE(out.emplace(line.substr(0, space), line.substr(space + 1)).second) << "duplicate series: " << line;
  }
  return out;
}

std::string value_of(const std::map<std::string, std::string>& s, const std::string& series) {
  auto it = s.find(series);
  return it == s.end() ? std::string("<missing " + series + ">") : it->second;
}

constexpr const char* kTtftBucket = "vllm:time_to_first_token_seconds_bucket{model_name=\"m\",le=\"";

TEST(PrometheusText, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(escape_label_value("plain/name:1"), "plain/name:1");
  EXPECT_EQ(escape_help("x\\y\nz\"q"), "x\\\\y\\nz\"q");  // HELP leaves quotes alone
}

TEST(PrometheusText, FormatsNumbersAsParsersRead) {
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(0.1), "0.1");
  EXPECT_EQ(format_value(3), "3");
  EXPECT_EQ(format_value(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  // vLLM's spelling of bucket bounds (Python float repr).
  EXPECT_EQ(format_bucket_bound(1.0), "1.0");
  EXPECT_EQ(format_bucket_bound(2560.0), "2560.0");
  EXPECT_EQ(format_bucket_bound(0.001), "0.001");
  EXPECT_EQ(format_bucket_bound(0.075), "0.075");
  EXPECT_EQ(format_bucket_bound(std::numeric_limits<double>::infinity()), "+Inf");
}

TEST(PrometheusText, HistogramBoundsAreInclusive) {
  const double bounds[] = {1.0, 2.0};
  Histogram h(bounds);
  h.observe(1.0);  // exactly on the bound: in le="1.0"
  h.observe(1.5);
  h.observe(2.0);
  h.observe(2.0000001);  // just above the last bound: only +Inf
  EXPECT_EQ(h.cumulative_count(0), 1u);
  EXPECT_EQ(h.cumulative_count(1), 3u);
  EXPECT_EQ(h.count(), 4u);
  EXPECT_DOUBLE_EQ(h.sum(), 1.0 + 1.5 + 2.0 + 2.0000001);
}

TEST(PrometheusText, HistogramDropsNonFiniteAndClampsNegative) {
  const double bounds[] = {1.0};
  Histogram h(bounds);
  h.observe(std::numeric_limits<double>::quiet_NaN());
  h.observe(std::numeric_limits<double>::infinity());
  h.observe(-0.5);
  EXPECT_EQ(h.count(), 1u);
  EXPECT_EQ(h.cumulative_count(0), 1u);
  EXPECT_EQ(h.sum(), 0.0);
}

TEST(ServerMetrics, FreshRenderHasEveryFamilyAtZero) {
  ServerMetrics m("m", 16, 512);
  const std::string body = m.render({});
  const auto s = samples(body);
  for (const char* prefix : {"vllm:", "halyard:"}) {
    const std::string p = prefix;
    const std::string lbl = "{model_name=\"m\"}";
    EXPECT_EQ(value_of(s, p + "num_requests_running" + lbl), "0");
    EXPECT_EQ(value_of(s, p + "num_requests_waiting" + lbl), "0");
    EXPECT_EQ(value_of(s, p + "kv_cache_usage_perc" + lbl), "0");
    EXPECT_EQ(value_of(s, p + "cache_config_info{model_name=\"m\",block_size=\"16\",num_gpu_blocks=\"512\"}"), "1");
    EXPECT_EQ(value_of(s, p + "prompt_tokens_total" + lbl), "0");
    EXPECT_EQ(value_of(s, p + "generation_tokens_total" + lbl), "0");
    EXPECT_EQ(value_of(s, p + "prefix_cache_queries_total" + lbl), "0");
    EXPECT_EQ(value_of(s, p + "prefix_cache_hits_total" + lbl), "0");
    // All three finish reasons exist before any request finishes, so a gateway sees them.
    for (const char* reason : {"stop", "length", "abort"})
      EXPECT_EQ(value_of(s, p + "request_success_total{model_name=\"m\",finished_reason=\"" + reason + "\"}"), "0");
    for (const char* h : {"time_to_first_token_seconds", "inter_token_latency_seconds", "e2e_request_latency_seconds",
                          "request_queue_time_seconds"}) {
      EXPECT_EQ(value_of(s, p + h + "_bucket{model_name=\"m\",le=\"+Inf\"}"), "0");
      EXPECT_EQ(value_of(s, p + h + "_count" + lbl), "0");
      EXPECT_EQ(value_of(s, p + h + "_sum" + lbl), "0");
    }
  }
  EXPECT_EQ(value_of(s, "halyard:engine_last_step_age_seconds{model_name=\"m\"}"), "0");
  ASSERT_TRUE(s.count("process_resident_memory_bytes"));
  EXPECT_GT(std::stoull(s.at("process_resident_memory_bytes")), 0u);
}

// Every family has one HELP and one TYPE line, before its samples; counters are declared by
// their _total name, as prometheus_client and vLLM write them.
TEST(ServerMetrics, TypeLinesPrecedeSamples) {
  ServerMetrics m("m", 16, 512);
  const std::string body = m.render({});
  EXPECT_NE(body.find("# TYPE vllm:prompt_tokens_total counter\n"), std::string::npos);
  EXPECT_NE(body.find("# TYPE vllm:request_success_total counter\n"), std::string::npos);
  EXPECT_NE(body.find("# TYPE vllm:time_to_first_token_seconds histogram\n"), std::string::npos);
  EXPECT_NE(body.find("# TYPE vllm:kv_cache_usage_perc gauge\n"), std::string::npos);
  EXPECT_NE(body.find("# TYPE halyard:engine_last_step_age_seconds gauge\n"), std::string::npos);
  EXPECT_NE(body.find("# TYPE process_resident_memory_bytes gauge\n"), std::string::npos);
  std::istringstream in(body);
  std::string line;
  std::string current;  // family of the last TYPE line
  std::map<std::string, int> type_lines;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      current = line.substr(7, line.find(' ', 7) - 7);
      ++type_lines[current];
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_EQ(type_lines.count(name), 0u) << "HELP after TYPE for " << name;
      continue;
    }
    ASSERT_FALSE(current.empty()) << "sample before any TYPE: " << line;
    EXPECT_EQ(line.rfind(current, 0), 0u) << line << " is not in family " << current;
  }
  for (const auto& [name, n] : type_lines)
    EXPECT_EQ(n, 1) << name;
  EXPECT_EQ(body.back(), '\n');
}

TEST(ServerMetrics, BucketBoundariesAreInclusiveAndCumulative) {
  ServerMetrics m("m", 16, 512);
  m.observe_time_to_first_token(0.001);   // on the first bound
  m.observe_time_to_first_token(0.0011);  // just past it: le="0.005"
  m.observe_time_to_first_token(0.1);     // on a bound in the middle
  m.observe_time_to_first_token(2560.0);  // on the last bound
  m.observe_time_to_first_token(3000.0);  // only +Inf
  const auto s = samples(m.render({}));
  auto bucket = [&](const std::string& le) { return value_of(s, kTtftBucket + le + "\"}"); };
  EXPECT_EQ(bucket("0.001"), "1");
  EXPECT_EQ(bucket("0.005"), "2");
  EXPECT_EQ(bucket("0.08"), "2");
  EXPECT_EQ(bucket("0.1"), "3");
  EXPECT_EQ(bucket("0.25"), "3");
  EXPECT_EQ(bucket("640.0"), "3");
  EXPECT_EQ(bucket("2560.0"), "4");
  EXPECT_EQ(bucket("+Inf"), "5");
  EXPECT_EQ(value_of(s, "vllm:time_to_first_token_seconds_count{model_name=\"m\"}"), "5");
  EXPECT_DOUBLE_EQ(std::stod(value_of(s, "vllm:time_to_first_token_seconds_sum{model_name=\"m\"}")),
                   0.001 + 0.0011 + 0.1 + 2560.0 + 3000.0);
}

// vLLM's bucket lists, in order: a gateway's queries and dashboards select these `le` values.
TEST(ServerMetrics, HistogramsUseVllmBuckets) {
  ServerMetrics m("m", 16, 512);
  const std::string body = m.render({});
  auto les = [&](const std::string& family) {
    std::vector<std::string> out;
    const std::string head = family + "_bucket{model_name=\"m\",le=\"";
    for (std::size_t pos = body.find(head); pos != std::string::npos; pos = body.find(head, pos + 1)) {
      const std::size_t start = pos + head.size();
      out.push_back(body.substr(start, body.find('"', start) - start));
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(les("vllm:time_to_first_token_seconds"),
            (V{"0.001", "0.005", "0.01", "0.02", "0.04", "0.06", "0.08", "0.1",   "0.25",  "0.5",    "0.75", "1.0",
               "2.5",   "5.0",   "7.5",  "10.0", "20.0", "40.0", "80.0", "160.0", "640.0", "2560.0", "+Inf"}));
  EXPECT_EQ(les("vllm:inter_token_latency_seconds"),
            (V{"0.01", "0.025", "0.05", "0.075", "0.1", "0.15", "0.2",  "0.3",  "0.4",  "0.5",
               "0.75", "1.0",   "2.5",  "5.0",   "7.5", "10.0", "20.0", "40.0", "80.0", "+Inf"}));
  const V request{"0.3",  "0.5",  "0.8",  "1.0",  "1.5",   "2.0",   "2.5",   "5.0",   "10.0",   "15.0",   "20.0",
                  "30.0", "40.0", "50.0", "60.0", "120.0", "240.0", "480.0", "960.0", "1920.0", "7680.0", "+Inf"};
  EXPECT_EQ(les("vllm:e2e_request_latency_seconds"), request);
  EXPECT_EQ(les("vllm:request_queue_time_seconds"), request);
  EXPECT_EQ(les("halyard:request_queue_time_seconds"), request);
}

TEST(ServerMetrics, CountersGaugesAndTheHalyardCopy) {
  ServerMetrics m("m", 32, 100);
  m.add_prompt_tokens(7);
  m.add_prompt_tokens(5);
  m.add_generation_tokens(3);
  m.add_prefix_cache(64, 48);
  m.request_finished("stop");
  m.request_finished("stop");
  m.request_finished("length");
  m.request_finished("error");  // a reason vLLM may add later gets its own series
  m.observe_inter_token_latency(0.02);
  m.observe_e2e_request_latency(1.2);
  m.observe_request_queue_time(0.0);
  const auto s = samples(m.render({.running = 3, .waiting = 2, .kv_cache_usage = 0.25, .last_step_age_seconds = 0.5}));
  for (const char* prefix : {"vllm:", "halyard:"}) {
    const std::string p = prefix;
    const std::string lbl = "{model_name=\"m\"}";
    EXPECT_EQ(value_of(s, p + "num_requests_running" + lbl), "3");
    EXPECT_EQ(value_of(s, p + "num_requests_waiting" + lbl), "2");
    EXPECT_EQ(value_of(s, p + "kv_cache_usage_perc" + lbl), "0.25");
    EXPECT_EQ(value_of(s, p + "prompt_tokens_total" + lbl), "12");
    EXPECT_EQ(value_of(s, p + "generation_tokens_total" + lbl), "3");
    EXPECT_EQ(value_of(s, p + "prefix_cache_queries_total" + lbl), "64");
    EXPECT_EQ(value_of(s, p + "prefix_cache_hits_total" + lbl), "48");
    EXPECT_EQ(value_of(s, p + "request_success_total{model_name=\"m\",finished_reason=\"stop\"}"), "2");
    EXPECT_EQ(value_of(s, p + "request_success_total{model_name=\"m\",finished_reason=\"length\"}"), "1");
    EXPECT_EQ(value_of(s, p + "request_success_total{model_name=\"m\",finished_reason=\"abort\"}"), "0");
    EXPECT_EQ(value_of(s, p + "request_success_total{model_name=\"m\",finished_reason=\"error\"}"), "1");
    EXPECT_EQ(value_of(s, p + "inter_token_latency_seconds_bucket{model_name=\"m\",le=\"0.01\"}"), "0");
    EXPECT_EQ(value_of(s, p + "inter_token_latency_seconds_bucket{model_name=\"m\",le=\"0.025\"}"), "1");
    EXPECT_EQ(value_of(s, p + "e2e_request_latency_seconds_bucket{model_name=\"m\",le=\"1.0\"}"), "0");
    EXPECT_EQ(value_of(s, p + "e2e_request_latency_seconds_bucket{model_name=\"m\",le=\"1.5\"}"), "1");
    EXPECT_EQ(value_of(s, p + "request_queue_time_seconds_bucket{model_name=\"m\",le=\"0.3\"}"), "1");
  }
  EXPECT_EQ(value_of(s, "halyard:engine_last_step_age_seconds{model_name=\"m\"}"), "0.5");
}

TEST(ServerMetrics, ModelNameIsEscaped) {
  ServerMetrics m("we\"ird\\name\nx", 16, 8);
  const std::string body = m.render({});
  EXPECT_NE(body.find("vllm:num_requests_running{model_name=\"we\\\"ird\\\\name\\nx\"} 0\n"), std::string::npos);
  EXPECT_NE(
      body.find("vllm:cache_config_info{model_name=\"we\\\"ird\\\\name\\nx\",block_size=\"16\",num_gpu_blocks=\"8\"}"),
      std::string::npos);
  // No raw line feed from the name: every line is a comment or starts with a metric name.
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line))
    EXPECT_TRUE(line.rfind("#", 0) == 0 || line.rfind("vllm:", 0) == 0 || line.rfind("halyard:", 0) == 0 ||
                line.rfind("process_", 0) == 0)
        << line;
}

// Updates from several threads at once all land (and a render in the middle does not tear).
TEST(ServerMetrics, ConcurrentUpdatesAddUp) {
  ServerMetrics m("m", 16, 512);
  constexpr int kThreads = 8;
  constexpr int kEach = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&m, t] {
      for (int i = 0; i < kEach; ++i) {
        m.add_prompt_tokens(2);
        m.add_generation_tokens(1);
        m.add_prefix_cache(4, 1);
        m.observe_inter_token_latency(0.005);  // first bucket
        m.observe_time_to_first_token(t % 2 ? 0.5 : 5.0);
        if (i % 100 == 0)
          m.request_finished(i % 200 == 0 ? "stop" : "length");
      }
    });
  }
  threads.emplace_back([&m] {
    for (int i = 0; i < 50; ++i) {
      const auto s = samples(m.render({}));
      const auto count = std::stoull(value_of(s, "vllm:inter_token_latency_seconds_count{model_name=\"m\"}"));
      const auto inf =
          std::stoull(value_of(s, "vllm:inter_token_latency_seconds_bucket{model_name=\"m\",le=\"+Inf\"}"));
      EXPECT_EQ(count, inf);
    }
  });
  for (auto& th : threads)
    th.join();
  const auto s = samples(m.render({}));
  const std::uint64_t n = std::uint64_t{kThreads} * kEach;
  EXPECT_EQ(value_of(s, "vllm:prompt_tokens_total{model_name=\"m\"}"), std::to_string(2 * n));
  EXPECT_EQ(value_of(s, "vllm:generation_tokens_total{model_name=\"m\"}"), std::to_string(n));
  EXPECT_EQ(value_of(s, "vllm:prefix_cache_queries_total{model_name=\"m\"}"), std::to_string(4 * n));
  EXPECT_EQ(value_of(s, "vllm:prefix_cache_hits_total{model_name=\"m\"}"), std::to_string(n));
  EXPECT_EQ(value_of(s, "vllm:inter_token_latency_seconds_bucket{model_name=\"m\",le=\"0.01\"}"), std::to_string(n));
  EXPECT_EQ(value_of(s, "vllm:inter_token_latency_seconds_count{model_name=\"m\"}"), std::to_string(n));
  EXPECT_EQ(value_of(s, std::string(kTtftBucket) + "0.5\"}"), std::to_string(n / 2));
  EXPECT_EQ(value_of(s, std::string(kTtftBucket) + "5.0\"}"), std::to_string(n));
  EXPECT_EQ(value_of(s, "vllm:request_success_total{model_name=\"m\",finished_reason=\"stop\"}"),
            std::to_string(kThreads * kEach / 200));
  EXPECT_EQ(value_of(s, "vllm:request_success_total{model_name=\"m\",finished_reason=\"length\"}"),
            std::to_string(kThreads * kEach / 200));
}

TEST(ResidentMemory, ReadsThisProcess) {
  const std::uint64_t before = resident_memory_bytes();
  EXPECT_GT(before, 0u);
  // Touching 64 MiB raises it by about that much (the pages are written, so they are resident).
  std::vector<char> block(64 << 20, 1);
  const std::uint64_t after = resident_memory_bytes();
  EXPECT_GT(after, before + (48u << 20)) << "before " << before << " after " << after;
  EXPECT_EQ(block[12345], 1);
}

}  // namespace
}  // namespace halyard::server
