// Greedy decode with argmax steps (the device's ARGMAX picks the token; one id is downloaded)
// against the logits path (the vocab-sized logits are downloaded and the sampler takes their
// argmax), through the generator halyard_generate runs. Both give the same tokens; the decode
// tokens/s is the generator's own figure (steps after the first token), as `halyard generate`
// prints it. Run the two interleaved, with repetitions, and read the medians:
//   HALYARD_TEST_MODEL=... [HALYARD_DEVICE=cpu] build/ci/bin/halyard-argmax-bench
//       --benchmark_repetitions=9 --benchmark_enable_random_interleaving=true
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "halyard/hal/registry.h"
#include "halyard/runtime/generator.h"
#include "halyard/runtime/session.h"

namespace halyard::runtime {
namespace {

std::string model_path() {
  if (const char* p = std::getenv("HALYARD_TEST_MODEL"); p && *p)
    return p;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.cache/halyard/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

std::string device_uri() {
  const char* d = std::getenv("HALYARD_DEVICE");
  return d && *d ? d : "cpu";
}

// The model stays loaded for the whole run; nullptr (with `why`) when it cannot be.
Model* model(std::string& why) {
  static std::unique_ptr<BackendRegistry> registry;
  static std::unique_ptr<Model> m;
  static std::string error;
  static bool tried = false;
  if (!tried) {
    tried = true;
    auto r = BackendRegistry::load(RegistryOptions::from_environment());
    if (!r.is_ok()) {
      error = r.status().to_string();
    } else {
      registry = std::move(r).value();
      ModelOptions mo;
      mo.device = device_uri();
      mo.context_length = 256;
      auto loaded = Model::load(model_path(), mo, *registry);
      if (loaded.is_ok())
        m = std::move(loaded).value();
      else
        error = loaded.status().to_string();
    }
  }
  why = error;
  return m.get();
}

// One iteration: a fresh session, a 21-token prompt, 128 greedy tokens; the iteration's time is
// the generator's decode time (manual), and "tok/s" its decode rate.
void decode(benchmark::State& state, bool argmax_step) {
  std::string why;
  Model* m = model(why);
  if (!m) {
    state.SkipWithError(("cannot load " + model_path() + " on " + device_uri() + ": " + why).c_str());
    return;
  }
  const std::vector<TokenId> prompt{504,  3575, 282, 4649, 314,  7042, 30,   378, 1345, 2115, 288,
                                    9201, 8869, 355, 253,  1789, 28,   2230, 314, 260,  3263};
  GenerateOptions go;
  go.max_tokens = 128;
  go.stop_at_end_of_generation = false;
  go.argmax_step = argmax_step;
  double tokens_per_s = 0;
  for (auto _ : state) {
    auto session = Session::create(*m);
    if (!session.is_ok()) {
      state.SkipWithError(session.status().to_string().c_str());
      return;
    }
    auto r = generate(*session.value(), prompt, go, nullptr);
    if (!r.is_ok()) {
      state.SkipWithError(r.status().to_string().c_str());
      return;
    }
    state.SetIterationTime(r->timings.decode_ms / 1e3);
    tokens_per_s += r->timings.decode_tokens_per_s();
  }
  state.counters["tok/s"] = benchmark::Counter(tokens_per_s, benchmark::Counter::kAvgIterations);
}

BENCHMARK_CAPTURE(decode, argmax_steps, true)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK_CAPTURE(decode, logits, false)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace
}  // namespace halyard::runtime

BENCHMARK_MAIN();
