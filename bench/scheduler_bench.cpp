// Offline serving throughput of the continuous-batching Scheduler: N requests (random prompts
// of P tokens, G generated tokens each, end of generation ignored) submitted at once, run
// through the scheduler, against the same requests run one after another with generate() on a
// Session (what a server without batching does). Reports wall time, aggregate generated tokens
// per second (of wall time and of this process's CPU time), time to first token in ms from the
// common start, and the scheduler's counters.
//   build/ci/bin/halyard-scheduler-bench -m model.gguf -d cpu -n 8 -p 64 -g 32 --chunk 64
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "halyard/runtime/generator.h"
#include "halyard/runtime/scheduler.h"
#include "halyard/runtime/session.h"

namespace rt = halyard::runtime;
using Clock = std::chrono::steady_clock;

namespace {

double ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// This process's CPU time: on a machine shared with other jobs wall time says more about them
// than about the work, and tokens per CPU second still show what batching saves.
double cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) * 1e-6;
}

struct Figures {
  double wall_ms = 0;
  double cpu_ms = 0;
  int generated = 0;
  std::vector<double> ttft_ms;  // per request, from the common start
};

void print(const char* mode, const Figures& f) {
  std::vector<double> t = f.ttft_ms;
  std::sort(t.begin(), t.end());
  double mean = 0;
  for (double v : t)
    mean += v / static_cast<double>(t.size());
  std::printf("| %-10s | %8.0f | %8.0f | %5d | %8.2f | %10.2f | %9.0f | %9.0f | %9.0f |\n", mode, f.wall_ms, f.cpu_ms,
              f.generated, f.generated * 1e3 / f.wall_ms, f.generated * 1e3 / f.cpu_ms, mean, t[t.size() / 2],
              t.back());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"halyard-scheduler-bench: the Scheduler against one-at-a-time generate()"};
  std::string model_path;
  const char* env_model = std::getenv("HALYARD_TEST_MODEL");
  if (env_model)
    model_path = env_model;
  std::string device = "cpu";
  int n_requests = 8, prompt_len = 64, gen = 32, chunk = 64, budget = 0, seqs = 0, blocks = 0, ctx_len = 512;
  int threads = 0;
  bool skip_sequential = false;
  app.add_option("-m,--model", model_path, "GGUF model (default: $HALYARD_TEST_MODEL)")->required(!env_model);
  app.add_option("-d,--device", device, "device URI");
  app.add_option("-n,--requests", n_requests, "requests")->check(CLI::Range(1, 1024));
  app.add_option("-p,--prompt", prompt_len, "prompt tokens per request")->check(CLI::Range(1, 1 << 20));
  app.add_option("-g,--generate", gen, "tokens generated per request")->check(CLI::Range(1, 1 << 20));
  app.add_option("--chunk", chunk, "prefill chunk (tokens per request per step)")->check(CLI::Range(1, 1 << 20));
  app.add_option("--budget", budget, "tokens per step (default: sequences + chunk)")->check(CLI::Range(0, 1 << 20));
  app.add_option("--seqs", seqs, "sequences of the context (default: requests)")->check(CLI::Range(0, 1024));
  app.add_option("--blocks", blocks, "KV blocks (default: every sequence can fill the context)")
      ->check(CLI::Range(0, 1 << 24));
  app.add_option("-c,--ctx", ctx_len, "context length")->check(CLI::Range(2, 1 << 20));
  app.add_option("-t,--threads", threads, "CPU threads (0: the backend's default)")->check(CLI::Range(0, 1024));
  app.add_flag("--no-sequential", skip_sequential, "skip the one-at-a-time baseline");
  CLI11_PARSE(app, argc, argv);
  if (prompt_len + gen > ctx_len) {
    std::fprintf(stderr, "error: --prompt + --generate (%d) exceed --ctx (%d)\n", prompt_len + gen, ctx_len);
    return 2;
  }
  if (seqs == 0)
    seqs = n_requests;
  if (budget == 0)
    budget = seqs + chunk;

  auto registry = halyard::BackendRegistry::load(halyard::RegistryOptions::from_environment());
  if (!registry.is_ok()) {
    std::fprintf(stderr, "error: %s\n", registry.status().to_string().c_str());
    return 1;
  }
  rt::ModelOptions mo;
  mo.device = device;
  mo.context_length = ctx_len;
  mo.threads = threads;
  auto model = rt::Model::load(model_path, mo, **registry);
  if (!model.is_ok()) {
    std::fprintf(stderr, "error: %s\n", model.status().to_string().c_str());
    return 1;
  }
  rt::Model& m = **model;
  std::mt19937 rng(42);
  std::uniform_int_distribution<rt::TokenId> pick(100, m.config().vocab_size - 1);
  std::vector<rt::Request> requests(static_cast<std::size_t>(n_requests));
  for (auto& r : requests) {
    for (int i = 0; i < prompt_len; ++i)
      r.prompt.push_back(pick(rng));
    r.max_tokens = gen;
    r.stop_at_end_of_generation = false;
  }

  rt::ContextOptions co;
  co.max_sequences = seqs;
  co.max_batch_tokens = budget;
  co.n_blocks = blocks;
  auto ctx = rt::Context::create(m, co);
  if (!ctx.is_ok()) {
    std::fprintf(stderr, "error: %s\n", ctx.status().to_string().c_str());
    return 1;
  }
  rt::SchedulerOptions so;
  so.max_batch_tokens = budget;
  so.prefill_chunk = chunk;
  auto sched = rt::Scheduler::create(**ctx, so);
  if (!sched.is_ok()) {
    std::fprintf(stderr, "error: %s\n", sched.status().to_string().c_str());
    return 1;
  }
  // One untimed request first, so graph compilation and first-touch costs stay out.
  {
    rt::Request warm = requests[0];
    warm.max_tokens = 2;
    if (auto id = (*sched)->submit(warm); !id.is_ok()) {
      std::fprintf(stderr, "error: %s\n", id.status().to_string().c_str());
      return 1;
    }
    while ((*sched)->has_work()) {
      if (auto st = (*sched)->step(); !st.is_ok()) {
        std::fprintf(stderr, "error: %s\n", st.status().to_string().c_str());
        return 1;
      }
    }
  }
  const rt::SchedulerStats before = (*sched)->stats();

  Figures batched;
  std::map<rt::RequestId, std::size_t> index;
  batched.ttft_ms.assign(requests.size(), -1);
  const auto start = Clock::now();
  const double cpu_start = cpu_ms();
  for (std::size_t i = 0; i < requests.size(); ++i) {
    auto id = (*sched)->submit(requests[i]);
    if (!id.is_ok()) {
      std::fprintf(stderr, "error: %s\n", id.status().to_string().c_str());
      return 1;
    }
    index[id.value()] = i;
  }
  while ((*sched)->has_work()) {
    auto st = (*sched)->step();
    if (!st.is_ok()) {
      std::fprintf(stderr, "error: %s\n", st.status().to_string().c_str());
      return 1;
    }
    for (const rt::RequestEvent& e : st->events) {
      double& t = batched.ttft_ms[index[e.id]];
      if (!e.tokens.empty() && t < 0)
        t = ms(Clock::now() - start);
      batched.generated += static_cast<int>(e.tokens.size());
    }
  }
  batched.wall_ms = ms(Clock::now() - start);
  batched.cpu_ms = cpu_ms() - cpu_start;
  const rt::SchedulerStats after = (*sched)->stats();

  Figures sequential;
  if (!skip_sequential) {
    auto session = rt::Session::create(m);
    if (!session.is_ok()) {
      std::fprintf(stderr, "error: %s\n", session.status().to_string().c_str());
      return 1;
    }
    const auto seq_start = Clock::now();
    const double seq_cpu_start = cpu_ms();
    for (const rt::Request& r : requests) {
      (*session)->reset();
      rt::GenerateOptions go;
      go.max_tokens = r.max_tokens;
      go.sampler = r.sampler;
      go.stop_at_end_of_generation = false;
      const auto t0 = Clock::now();
      auto res = rt::generate(**session, r.prompt, go, nullptr);
      if (!res.is_ok()) {
        std::fprintf(stderr, "error: %s\n", res.status().to_string().c_str());
        return 1;
      }
      sequential.ttft_ms.push_back(ms(t0 - seq_start) + res->timings.time_to_first_token_ms);
      sequential.generated += static_cast<int>(res->tokens.size());
    }
    sequential.wall_ms = ms(Clock::now() - seq_start);
    sequential.cpu_ms = cpu_ms() - seq_cpu_start;
  }

  std::printf(
      "device %s, %d requests of %d prompt + %d generated tokens; scheduler: %d sequences, budget %d, "
      "chunk %d, %d KV blocks\n",
      device.c_str(), n_requests, prompt_len, gen, seqs, budget, chunk, (*ctx)->blocks_total());
  std::printf(
      "| mode       |  wall ms |   cpu ms | gen   | gen t/s  | gen/cpu-s  | TTFT mean | TTFT p50  | TTFT max  |\n");
  std::printf(
      "|------------|---------:|---------:|------:|---------:|-----------:|----------:|----------:|----------:|\n");
  print("scheduler", batched);
  if (!skip_sequential)
    print("sequential", sequential);
  std::printf("scheduler: %llu steps, %llu preemptions, %llu tokens recomputed\n",
              static_cast<unsigned long long>(after.steps - before.steps),
              static_cast<unsigned long long>(after.preemptions - before.preemptions),
              static_cast<unsigned long long>(after.recomputed_tokens - before.recomputed_tokens));
  return 0;
}
