#include "bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>

#include "halyard.h"
#include "read_bandwidth.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Stats {
  double median = 0, stddev = 0;
};

Stats stats(std::vector<double> v) {
  Stats s;
  if (v.empty())
    return s;
  std::sort(v.begin(), v.end());
  s.median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  double mean = 0;
  for (double x : v)
    mean += x;
  mean /= static_cast<double>(v.size());
  double var = 0;
  for (double x : v)
    var += (x - mean) * (x - mean);
  s.stddev = v.size() > 1 ? std::sqrt(var / static_cast<double>(v.size() - 1)) : 0;
  return s;
}

int fail(halyard_status s, const std::string& what) {
  std::fprintf(stderr, "halyard bench: %s failed: %s: %s\n", what.c_str(), halyard_status_name(s),
               halyard_last_error());
  return 1;
}

struct DeviceResult {
  std::string device;
  Stats pp_tps, tg_tps, ttft_ms, tg_gbps;
  std::vector<double> pp_runs, tg_runs;
  double read_share = 0;  // decode GB/s over the streaming-read ceiling (host devices)
};

// --json: the results, when a path was given; 0, or 1 after saying why it could not be written.
int write_json(const std::string& path, const nlohmann::json& results) {
  if (path.empty())
    return 0;
  std::ofstream out(path);
  out << results.dump(2) << "\n";
  if (!out) {
    std::fprintf(stderr, "halyard bench: cannot write %s\n", path.c_str());
    return 1;
  }
  return 0;
}

// Loads the model on `device` with the bench's threads, KV dtype and backend options.
halyard_status load_for_bench(const BenchArgs& a, const std::string& device, int context_length,
                              halyard_model** model) {
  halyard_model_options mo;
  halyard_model_options_default(&mo);
  mo.device = device.c_str();
  mo.context_length = context_length;
  mo.threads = a.threads;
  mo.kv_dtype = a.kv_dtype;
  mo.force_gpt2_split = a.force_gpt2_split ? 1 : 0;
  mo.load_flags = a.no_mmap ? HALYARD_LOAD_NO_MMAP : 0;
  std::vector<const char*> options;
  for (const auto& o : a.options)
    options.push_back(o.c_str());
  options.push_back(nullptr);
  mo.backend_options = options.data();
  return halyard_model_load(a.model.c_str(), &mo, model);
}

// --prefix-cache: time to first token of a -p token prompt computed from scratch (cold) and
// again with its blocks in the prefix cache (warm), through the public context API: cold is the
// step over the whole prompt, warm is halyard_seq_attach_prefix plus the step over the rest
// (the last partial block and at least the last token). A new random prompt every run, so each
// cold run misses.
int run_prefix_bench(const BenchArgs& a) {
  nlohmann::json results = nlohmann::json::array();
  std::printf(
      "| model | device | test | cold TTFT ms | warm TTFT ms | warm / cold | cached tokens |\n"
      "|---|---|---|---:|---:|---:|---:|\n");
  for (const auto& device : a.devices) {
    halyard_model* model = nullptr;
    if (halyard_status s = load_for_bench(a, device, a.prompt_tokens + 8, &model); s != HALYARD_OK)
      return fail(s, "loading on " + device);
    halyard_context_options co;
    halyard_context_options_default(&co);
    co.max_batch_tokens = a.prompt_tokens;
    halyard_context* ctx = nullptr;
    if (halyard_status s = halyard_context_create(model, &co, &ctx); s != HALYARD_OK) {
      halyard_model_free(model);
      return fail(s, "creating a context");
    }
    std::mt19937 rng(4321);
    std::uniform_int_distribution<int32_t> token(0, halyard_model_vocab_size(model) - 1);
    const auto n = static_cast<std::size_t>(a.prompt_tokens);
    std::vector<int32_t> ids(n), pos(n), seqs(n, 0);
    halyard_status s = HALYARD_OK;
    int32_t cached = 0;
    // The prompt from position `from` in one step; the clock stops when its logits are on the host.
    auto ttft_ms = [&](bool warm) -> double {
      const auto t0 = Clock::now();
      int32_t from = 0;
      if (warm) {
        s = halyard_seq_attach_prefix(ctx, 0, ids.data(), n, &from);
        cached = from;
      }
      if (s != HALYARD_OK)
        return 0;
      for (std::size_t i = 0; i < n; ++i)
        pos[i] = static_cast<int32_t>(i);
      halyard_batch b{sizeof(halyard_batch), n - static_cast<std::size_t>(from),
                      ids.data() + from,     pos.data() + from,
                      seqs.data(),           nullptr,
                      HALYARD_OUTPUT_LOGITS};
      s = halyard_context_step(ctx, &b);
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      if (s == HALYARD_OK)
        s = halyard_seq_remove(ctx, 0, 0, -1);
      return ms;
    };
    std::vector<double> cold, warm, ratio;
    const std::string name = halyard_model_name(model), dev = halyard_model_device(model);
    for (int rep = -1; rep < a.repeats && s == HALYARD_OK; ++rep) {  // rep -1: warm-up (compiles)
      std::fprintf(stderr, "\r%s: prefix cache, pp%d, run %d of %d ", dev.c_str(), a.prompt_tokens, rep + 1, a.repeats);
      for (auto& t : ids)
        t = token(rng);
      const double c = ttft_ms(false);
      const double w = s == HALYARD_OK ? ttft_ms(true) : 0;
      if (s == HALYARD_OK && rep >= 0) {
        cold.push_back(c);
        warm.push_back(w);
        ratio.push_back(w / c);
      }
    }
    std::fprintf(stderr, "\n");
    const int64_t hits = halyard_context_prefix_hits(ctx);
    halyard_context_free(ctx);
    halyard_model_free(model);
    if (s != HALYARD_OK)
      return fail(s, "running on " + device);
    const Stats c = stats(cold), w = stats(warm), r = stats(ratio);
    std::printf("| %s | %s | pp%d | %.2f | %.2f | %.3f | %d |\n", name.c_str(), dev.c_str(), a.prompt_tokens, c.median,
                w.median, r.median, cached);
    results.push_back({{"model", name},
                       {"model_path", a.model},
                       {"device", dev},
                       {"threads", a.threads},
                       {"n_prompt", a.prompt_tokens},
                       {"repeats", a.repeats},
                       {"cached_tokens", cached},
                       {"prefix_hits", hits},
                       {"cold_ttft_ms_median", c.median},
                       {"warm_ttft_ms_median", w.median},
                       {"warm_over_cold_median", r.median},
                       {"cold_runs", cold},
                       {"warm_runs", warm}});
  }
  return write_json(a.json_path, results);
}

// The prompt length of sequence q of n: the same -p for all, or with --mixed ceil(p * (q+1) / n),
// so that n sequences hold lengths spread evenly up to p (p/n, 2p/n, ..., p).
int prompt_length(const BenchArgs& a, int q) {
  if (!a.mixed)
    return a.prompt_tokens;
  const long long p = a.prompt_tokens, n = a.batch;
  return static_cast<int>(std::max(1LL, (p * (q + 1) + n - 1) / n));
}

// What the paged KV cache holds once every sequence has decoded its tokens, against the layout
// before it (one f32 slot of the whole context per sequence): the memory claim of issue 13.
struct KvReport {
  std::vector<int> lengths;  // positions each sequence holds
  long long positions = 0;
  int block_size = 0, blocks_used = 0, blocks_total = 0, context_length = 0;
  std::uint64_t bytes_per_position = 0;  // K and V of all layers, in the cache's dtype
  std::uint64_t bytes_used = 0;          // blocks in use x block_size x bytes_per_position
  std::uint64_t bytes_pool = 0;          // the whole pool the context allocated
  std::uint64_t bytes_per_slot_f32 = 0;  // max_sequences x context x kv_dim x 4 x 2 x layers
};

KvReport kv_report(const halyard_model* model, const halyard_context* ctx, int kv_dtype) {
  KvReport r;
  const int n = halyard_context_max_sequences(ctx);
  for (int q = 0; q < n; ++q) {
    r.lengths.push_back(halyard_seq_pos_max(ctx, q) + 1);
    r.positions += r.lengths.back();
  }
  r.block_size = halyard_context_block_size(ctx);
  r.blocks_used = halyard_context_kv_blocks_used(ctx);
  r.blocks_total = halyard_context_kv_blocks_total(ctx);
  r.context_length = halyard_model_context_length(model);
  r.bytes_per_position = halyard_model_kv_bytes_per_token(model);
  const auto per_block = static_cast<std::uint64_t>(r.block_size) * r.bytes_per_position;
  r.bytes_used = static_cast<std::uint64_t>(r.blocks_used) * per_block;
  r.bytes_pool = static_cast<std::uint64_t>(r.blocks_total) * per_block;
  // bytes_per_position counts 2 bytes an element for f16: the f32 layout holds twice that.
  const std::uint64_t f32_per_position = r.bytes_per_position * (kv_dtype == HALYARD_KV_F32 ? 1 : 2);
  r.bytes_per_slot_f32 =
      static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(r.context_length) * f32_per_position;
  return r;
}

std::string lengths_text(const std::vector<int>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i)
    s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

double mib(std::uint64_t b) {
  return static_cast<double>(b) / (1 << 20);
}

// --batch N: N sequences decode together, one token each per step (one graph run per step),
// through the public context API. Reports aggregate and per-sequence decode tokens/s, and the KV
// bytes the paged cache holds at the end against the f32 per-slot layout of before.
int run_batch_bench(const BenchArgs& a) {
  const int n = a.batch;
  int max_prompt = 0;
  for (int q = 0; q < n; ++q)
    max_prompt = std::max(max_prompt, prompt_length(a, q));
  nlohmann::json results = nlohmann::json::array();
  std::vector<std::string> kv_rows;
  std::printf(
      "| model | device | sequences | test | aggregate t/s | per sequence t/s |\n|---|---|---:|---|---:|---:|\n");
  for (const auto& device : a.devices) {
    halyard_model* model = nullptr;
    const int context_length = a.context_length > 0 ? a.context_length : max_prompt + a.gen_tokens + 8;
    if (halyard_status s = load_for_bench(a, device, context_length, &model); s != HALYARD_OK)
      return fail(s, "loading on " + device);
    if (max_prompt + a.gen_tokens > halyard_model_context_length(model)) {
      std::fprintf(stderr, "halyard bench: a prompt of %d plus %d generated tokens exceeds the context of %d (-c)\n",
                   max_prompt, a.gen_tokens, halyard_model_context_length(model));
      halyard_model_free(model);
      return 1;
    }
    halyard_context_options co;
    halyard_context_options_default(&co);
    co.max_sequences = n;
    co.max_batch_tokens = std::max(n, max_prompt);
    co.kv_blocks = a.kv_blocks;
    halyard_context* ctx = nullptr;
    if (halyard_status s = halyard_context_create(model, &co, &ctx); s != HALYARD_OK) {
      halyard_model_free(model);
      return fail(s, "creating a context of " + std::to_string(n) + " sequences");
    }
    std::mt19937 rng(1234);
    std::uniform_int_distribution<int32_t> token(0, halyard_model_vocab_size(model) - 1);
    std::vector<int32_t> ids(static_cast<std::size_t>(std::max(n, max_prompt))), pos(ids.size()), seqs(ids.size());
    std::vector<int8_t> want(ids.size(), 0);
    halyard_status s = HALYARD_OK;
    // Prefills sequence q with a random prompt (not timed).
    auto prefill = [&](int q) {
      const int len = prompt_length(a, q);
      for (int i = 0; i < len; ++i) {
        ids[static_cast<std::size_t>(i)] = token(rng);
        pos[static_cast<std::size_t>(i)] = i;
        seqs[static_cast<std::size_t>(i)] = q;
      }
      halyard_batch b{sizeof(halyard_batch), static_cast<size_t>(len), ids.data(), pos.data(), seqs.data(), nullptr,
                      HALYARD_OUTPUT_LOGITS};
      return halyard_context_step(ctx, &b);
    };
    // Timed: gen_tokens steps of n tokens, one per sequence, every token asking for logits.
    auto decode = [&]() -> double {
      std::fill(want.begin(), want.end(), 1);
      const auto t0 = Clock::now();
      for (int step = 0; step < a.gen_tokens && s == HALYARD_OK; ++step) {
        for (int q = 0; q < n; ++q) {
          const auto u = static_cast<std::size_t>(q);
          ids[u] = token(rng);
          pos[u] = halyard_seq_pos_max(ctx, q) + 1;
          seqs[u] = q;
        }
        halyard_batch b{sizeof(halyard_batch), static_cast<size_t>(n), ids.data(), pos.data(), seqs.data(),
                        want.data(),           HALYARD_OUTPUT_LOGITS};
        s = halyard_context_step(ctx, &b);
      }
      std::fill(want.begin(), want.end(), 0);
      return std::chrono::duration<double>(Clock::now() - t0).count();
    };
    std::vector<double> runs;
    const std::string name = halyard_model_name(model), dev = halyard_model_device(model);
    const std::string test = (a.mixed ? "pp" + std::to_string(prompt_length(a, 0)) + "-" : std::string("pp")) +
                             std::to_string(a.prompt_tokens) + "+tg" + std::to_string(a.gen_tokens);
    for (int rep = -1; rep < a.repeats && s == HALYARD_OK; ++rep) {  // rep -1: warm-up
      std::fprintf(stderr, "\r%s: %d sequences, %s, run %d of %d ", dev.c_str(), n, test.c_str(), rep + 1, a.repeats);
      for (int q = 0; q < n && s == HALYARD_OK; ++q) {
        s = halyard_seq_remove(ctx, q, 0, -1);
        if (s == HALYARD_OK)
          s = prefill(q);
      }
      if (s != HALYARD_OK)
        break;
      const double secs = decode();
      if (s == HALYARD_OK && rep >= 0)
        runs.push_back(static_cast<double>(n) * a.gen_tokens / secs);
    }
    std::fprintf(stderr, "\n");
    const KvReport kv = kv_report(model, ctx, a.kv_dtype);
    halyard_context_free(ctx);
    halyard_model_free(model);
    if (s != HALYARD_OK)
      return fail(s, "running on " + device);
    const Stats agg = stats(runs);
    std::printf("| %s | %s | %d | %s | %.2f ± %.2f | %.2f |\n", name.c_str(), dev.c_str(), n, test.c_str(), agg.median,
                agg.stddev, agg.median / n);
    char row[512];
    std::snprintf(row, sizeof row, "| %s | %d | %s | %lld | %d x %d of %d | %.2f | %.2f | %.2f | %.1f%% |", dev.c_str(),
                  n, lengths_text(kv.lengths).c_str(), kv.positions, kv.blocks_used, kv.block_size, kv.blocks_total,
                  mib(kv.bytes_used), mib(kv.bytes_pool), mib(kv.bytes_per_slot_f32),
                  100.0 * static_cast<double>(kv.bytes_used) / static_cast<double>(kv.bytes_per_slot_f32));
    kv_rows.push_back(row);
    results.push_back({{"model", name},
                       {"model_path", a.model},
                       {"device", dev},
                       {"threads", a.threads},
                       {"sequences", n},
                       {"n_prompt", a.prompt_tokens},
                       {"mixed", a.mixed},
                       {"n_gen", a.gen_tokens},
                       {"repeats", a.repeats},
                       {"tg_aggregate_tokens_per_s_median", agg.median},
                       {"tg_aggregate_tokens_per_s_stddev", agg.stddev},
                       {"tg_runs", runs},
                       {"kv",
                        {{"dtype", a.kv_dtype == HALYARD_KV_F32 ? "f32" : "f16"},
                         {"sequence_lengths", kv.lengths},
                         {"positions", kv.positions},
                         {"context_length", kv.context_length},
                         {"block_size", kv.block_size},
                         {"blocks_used", kv.blocks_used},
                         {"blocks_total", kv.blocks_total},
                         {"bytes_per_position", kv.bytes_per_position},
                         {"bytes_used", kv.bytes_used},
                         {"bytes_pool", kv.bytes_pool},
                         {"bytes_per_slot_f32_layout", kv.bytes_per_slot_f32}}}});
  }
  // After the last run: the positions each sequence holds (its prompt plus -n), the blocks they
  // occupy, and the bytes against max_sequences x context x kv_dim x 4 x 2 x layers.
  std::printf(
      "\nKV cache after the run (%s): blocks in use x positions a block, of the pool; MiB in use, of the pool, and of "
      "the f32 per-slot layout (sequences x context x kv_dim x 4 B x 2 x layers)\n\n"
      "| device | sequences | positions each | positions | blocks | MiB in use | MiB pool | MiB f32 per-slot | in use "
      "/ "
      "per-slot |\n|---|---:|---|---:|---|---:|---:|---:|---:|\n",
      a.kv_dtype == HALYARD_KV_F32 ? "f32" : "f16");
  for (const auto& r : kv_rows)
    std::printf("%s\n", r.c_str());
  return write_json(a.json_path, results);
}

}  // namespace

int run_bench(const BenchArgs& a) {
  if (a.prompt_tokens < 1 || a.gen_tokens < 1 || a.repeats < 1) {
    std::fprintf(stderr, "halyard bench: -p, -n and -r must be positive\n");
    return 1;
  }
  if (a.batch < 0) {
    std::fprintf(stderr, "halyard bench: --batch must be >= 1 (or 0 for the single-sequence tests)\n");
    return 1;
  }
  if (a.prefix_cache && a.batch > 0) {
    std::fprintf(stderr, "halyard bench: --prefix-cache and --batch are separate tests; give one\n");
    return 1;
  }
  if (a.prefix_cache)
    return run_prefix_bench(a);
  if (a.batch == 0 && (a.mixed || a.kv_blocks != 0 || a.context_length != 0)) {
    std::fprintf(stderr, "halyard bench: --mixed, --kv-blocks and -c apply to --batch N only\n");
    return 1;
  }
  if (a.kv_blocks < 0 || a.context_length < 0) {
    std::fprintf(stderr, "halyard bench: --kv-blocks and -c must be >= 0\n");
    return 1;
  }
  if (a.batch > 0)
    return run_batch_bench(a);
  nlohmann::json results = nlohmann::json::array();
  std::vector<DeviceResult> table;
  std::string model_name;
  double size_gib = 0, params_m = 0;
  double read_ceiling = 0;
  int read_threads = 0;
  for (const auto& device : a.devices) {
    halyard_model* model = nullptr;
    if (halyard_status s = load_for_bench(a, device, std::max(a.prompt_tokens, a.gen_tokens) + 8, &model);
        s != HALYARD_OK)
      return fail(s, "loading on " + device);
    halyard_session* session = nullptr;
    if (halyard_status s = halyard_session_create(model, &session); s != HALYARD_OK) {
      halyard_model_free(model);
      return fail(s, "creating a session");
    }
    model_name = halyard_model_name(model);
    const double weight_bytes = static_cast<double>(halyard_model_weight_bytes(model));
    size_gib = weight_bytes / (1u << 30);
    params_m = static_cast<double>(halyard_model_parameter_count(model)) / 1e6;
    const double kv_per_token = static_cast<double>(halyard_model_kv_bytes_per_token(model));
    std::mt19937 rng(1234);
    std::uniform_int_distribution<int32_t> token(0, halyard_model_vocab_size(model) - 1);
    std::vector<int32_t> prompt(static_cast<std::size_t>(a.prompt_tokens));
    for (auto& t : prompt)
      t = token(rng);

    DeviceResult r;
    r.device = halyard_model_device(model);
    std::vector<double> ttft, gbps;
    // Warm-up: compiles both graphs and faults the weights in.
    halyard_status s = halyard_session_eval(session, prompt.data(), prompt.size(), nullptr);
    if (s == HALYARD_OK)
      s = halyard_session_eval(session, prompt.data(), 1, nullptr);
    for (int rep = 0; rep < a.repeats && s == HALYARD_OK; ++rep) {
      std::fprintf(stderr, "\r%s: pp%d/tg%d run %d of %d ", r.device.c_str(), a.prompt_tokens, a.gen_tokens, rep + 1,
                   a.repeats);
      halyard_session_reset(session);
      // A new prompt every run: the prefix cache would serve a repeated one from the last
      // run's blocks, and pp measures computing a prompt.
      for (auto& t : prompt)
        t = token(rng);
      auto t0 = Clock::now();
      s = halyard_session_eval(session, prompt.data(), prompt.size(), nullptr);
      const double pp_s = std::chrono::duration<double>(Clock::now() - t0).count();
      if (s != HALYARD_OK)
        break;
      r.pp_runs.push_back(a.prompt_tokens / pp_s);
      ttft.push_back(pp_s * 1e3);
      // Token generation from an empty sequence, one token per step (as llama-bench's tg).
      halyard_session_reset(session);
      t0 = Clock::now();
      for (int i = 0; i < a.gen_tokens && s == HALYARD_OK; ++i)
        s = halyard_session_eval(session, &prompt[static_cast<std::size_t>(i % a.prompt_tokens)], 1, nullptr);
      const double tg_s = std::chrono::duration<double>(Clock::now() - t0).count();
      if (s != HALYARD_OK)
        break;
      const double tps = a.gen_tokens / tg_s;
      r.tg_runs.push_back(tps);
      // Each step reads every weight plus the KV cache so far (on average half of the run's).
      const double bytes_per_token = weight_bytes + kv_per_token * (a.gen_tokens - 1) / 2.0;
      gbps.push_back(bytes_per_token * tps / 1e9);
    }
    std::fprintf(stderr, "\n");
    halyard_session_free(session);
    halyard_model_free(model);
    if (s != HALYARD_OK)
      return fail(s, "running on " + device);
    r.pp_tps = stats(r.pp_runs);
    r.tg_tps = stats(r.tg_runs);
    r.ttft_ms = stats(ttft);
    r.tg_gbps = stats(gbps);
    // A host device's decode is judged against the machine's streaming-read ceiling, measured
    // once per run with as many threads as the device uses (0: one per hardware thread).
    if ((r.device.starts_with("cpu") || r.device.starts_with("ref")) && read_ceiling == 0) {
      const int threads =
          a.threads > 0 ? a.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      std::fprintf(stderr, "measuring the streaming-read ceiling (%d threads)...\n", threads);
      std::uint64_t sink = 0;
      read_ceiling = halyard::apps::measure_read_bandwidth(512, threads, 5, &sink).median_gb_per_s;
      read_threads = threads;
    }
    r.read_share = r.device.starts_with("cpu") || r.device.starts_with("ref") ? r.tg_gbps.median / read_ceiling : 0;
    results.push_back({{"model", model_name},
                       {"model_path", a.model},
                       {"size_bytes", weight_bytes},
                       {"params", params_m * 1e6},
                       {"device", r.device},
                       {"threads", a.threads},
                       {"kv_dtype", a.kv_dtype == HALYARD_KV_F32 ? "f32" : "f16"},
                       {"n_prompt", a.prompt_tokens},
                       {"n_gen", a.gen_tokens},
                       {"repeats", a.repeats},
                       {"pp_tokens_per_s_median", r.pp_tps.median},
                       {"pp_tokens_per_s_stddev", r.pp_tps.stddev},
                       {"pp_runs", r.pp_runs},
                       {"tg_tokens_per_s_median", r.tg_tps.median},
                       {"tg_tokens_per_s_stddev", r.tg_tps.stddev},
                       {"tg_runs", r.tg_runs},
                       {"time_to_first_token_ms_median", r.ttft_ms.median},
                       {"tg_effective_gb_per_s_median", r.tg_gbps.median}});
    if (r.read_share > 0) {
      results.back()["read_ceiling_gb_per_s"] = read_ceiling;
      results.back()["read_ceiling_threads"] = read_threads;
      results.back()["tg_share_of_read_ceiling"] = r.read_share;
    }
    table.push_back(std::move(r));
  }
  std::printf(
      "| model | size | params | device | test | t/s | TTFT ms | GB/s |\n|---|---:|---:|---|---|---:|---:|---:|\n");
  for (const auto& r : table) {
    std::printf("| %s | %.2f GiB | %.1f M | %s | pp%d | %.2f ± %.2f | %.1f | |\n", model_name.c_str(), size_gib,
                params_m, r.device.c_str(), a.prompt_tokens, r.pp_tps.median, r.pp_tps.stddev, r.ttft_ms.median);
    const std::string share =
        r.read_share > 0 ? " (" + std::to_string(static_cast<int>(std::lround(100 * r.read_share))) + "% of read)" : "";
    std::printf("| %s | %.2f GiB | %.1f M | %s | tg%d | %.2f ± %.2f | | %.1f%s |\n", model_name.c_str(), size_gib,
                params_m, r.device.c_str(), a.gen_tokens, r.tg_tps.median, r.tg_tps.stddev, r.tg_gbps.median,
                share.c_str());
  }
  if (read_ceiling > 0)
    std::printf("\nstreaming-read ceiling: %.1f GB/s on %d threads (halyard-triad measures the same read)\n",
                read_ceiling, read_threads);
  return write_json(a.json_path, results);
}
