// Google Benchmark of the default model's tokenizer (SmolLM2's byte-level BPE) on inputs that
// once took quadratic time: one pre-token of a single repeated letter, CJK text without spaces
// (one pre-token too), and ordinary English text for comparison. Sizes are in bytes.
//   HALYARD_TEST_MODEL=... build/ci/bin/halyard-tokenizer-bench [--benchmark_filter=cjk]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "halyard/runtime/gguf.h"
#include "halyard/runtime/tokenizer.h"

namespace halyard::runtime {
namespace {

std::string model_path() {
  if (const char* p = std::getenv("HALYARD_TEST_MODEL"); p && *p)
    return p;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.cache/halyard/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

// The file and tokenizer stay loaded for the whole run; nullptr when the model is missing.
const Tokenizer* tokenizer() {
  static std::unique_ptr<GgufFile> file;
  static std::unique_ptr<Tokenizer> tok;
  static bool tried = false;
  if (!tried) {
    tried = true;
    auto f = GgufFile::open(model_path());
    if (!f.is_ok())
      return nullptr;
    file = std::move(f).value();
    auto t = Tokenizer::from_gguf(*file);
    if (t.is_ok())
      tok = std::move(t).value();
  }
  return tok.get();
}

std::string repeat_to(const std::string& unit, std::size_t bytes) {
  std::string s;
  s.reserve(bytes + unit.size());
  while (s.size() < bytes)
    s += unit;
  return s;
}

void run(benchmark::State& state, const std::string& unit) {
  const Tokenizer* tok = tokenizer();
  if (!tok) {
    state.SkipWithError(("no tokenizer: the model is missing at " + model_path()).c_str());
    return;
  }
  const std::string text = repeat_to(unit, static_cast<std::size_t>(state.range(0)));
  std::size_t tokens = 0;
  for (auto _ : state) {
    const auto ids = tok->encode(text, false, false);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(text.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
}

void one_letter(benchmark::State& state) {
  run(state, "a");
}
// 23 distinct Han characters, no spaces: the GPT-2 expression keeps the run as one pre-token.
void cjk(benchmark::State& state) {
  run(state,
      "\u4eca\u5929\u5929\u6c14\u5f88\u597d\u6211\u4eec\u53bb\u516c\u56ed\u6563\u6b65\u7136\u540e\u5403\u996d\u4e2d"
      "\u6587\u5b57\u7b26\u6d4b\u8bd5");
}
void english(benchmark::State& state) {
  run(state,
      "The quick brown fox jumps over the lazy dog. In 1984, 3 of the 12 engineers said: \"it's fine\"; "
      "others weren't sure.\nA new paragraph starts here, with commas, numbers like 3.14159 and words.\n");
}

// HALYARD_TOKENIZER_BENCH_MAX_BYTES lowers the largest size, e.g. to time old, quadratic code
// at a size it can finish.
std::int64_t max_bytes() {
  if (const char* m = std::getenv("HALYARD_TOKENIZER_BENCH_MAX_BYTES"); m && *m)
    return std::atoll(m);
  return 1 << 20;
}

void register_all() {
  const std::int64_t top = max_bytes();
  for (auto [name, fn] :
       {std::pair{"one_letter", &one_letter}, std::pair{"cjk", &cjk}, std::pair{"english", &english}}) {
    auto* b = benchmark::RegisterBenchmark(name, fn)->Unit(benchmark::kMillisecond)->MinTime(0.5);
    for (std::int64_t n = 32 << 10; n <= top; n *= 32)
      b->Arg(n);
    if (top != 32 << 10 && top != 1 << 20)
      b->Arg(top);
  }
}

}  // namespace
}  // namespace halyard::runtime

int main(int argc, char** argv) {
  if (!std::filesystem::exists(halyard::runtime::model_path())) {
    std::printf("skipped: the default model is missing at %s (run scripts/fetch-model.sh or set HALYARD_TEST_MODEL)\n",
                halyard::runtime::model_path().c_str());
    return 0;
  }
  halyard::runtime::register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
