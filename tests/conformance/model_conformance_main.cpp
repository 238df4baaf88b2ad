// Model-level conformance: the default model's prefill logits and 32 greedy decode steps on a
// device, against the reference device.
//   model_conformance_tests --device URI [--cpu-kernels SET]
// A device that is not available is one skipped test with the reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "halyard/runtime/generator.h"
#include "halyard/runtime/session.h"
#include "unavailable.h"

namespace {

using namespace halyard;
using namespace halyard::runtime;

// ARCHITECTURE.md starts whole-model logits at NMSE 2e-3. Per step this is loosened to 1e-2
// because backends multiply 8-bit activations and one step of the chat prompt (step 28) is
// sensitive: the cpu backend's per-step NMSE has a median near 1e-4, but that step measures
// 2.5e-3 to 5.2e-3 depending on the prefill path and the order of sums (with llama.cpp-style
// per-32 activation scales it was 2e-2). The median must still meet 2e-3.
constexpr double kLogitNmse = 1e-2;
constexpr double kMedianLogitNmse = 2e-3;
// Where greedy tokens part, the reference's own top-two margin must be small: a backend that
// quantizes activations to 8 bits (as cpu does, like llama.cpp) moves logits by a few tenths.
constexpr double kNearTieMargin = 0.3;
constexpr int kSteps = 32;

std::string model_path() {
  if (const char* p = std::getenv("HALYARD_TEST_MODEL"); p && *p)
    return p;
  const char* x = std::getenv("XDG_CACHE_HOME");
  const std::string cache = x && *x ? x : std::string(std::getenv("HOME") ? std::getenv("HOME") : ".") + "/.cache";
  return cache + "/halyard/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

struct Trace {
  std::vector<std::vector<float>> logits;  // after the prompt, then after each greedy token
  std::vector<TokenId> tokens;
};

Result<Trace> greedy_trace(Model& model, const std::vector<TokenId>& prompt) {
  HALYARD_ASSIGN_OR_RETURN(auto session, Session::create(model));
  Trace trace;
  HALYARD_ASSIGN_OR_RETURN(auto logits, session->eval(prompt));
  for (int step = 0; step < kSteps; ++step) {
    const TokenId next = Sampler::argmax(logits);
    trace.tokens.push_back(next);
    trace.logits.emplace_back(logits.begin(), logits.end());
    const TokenId one[1] = {next};
    HALYARD_ASSIGN_OR_RETURN(logits, session->eval(one));
  }
  return trace;
}

double nmse(const std::vector<float>& a, const std::vector<float>& ref) {
  double e = 0, n = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]))
      return INFINITY;
    e += (static_cast<double>(a[i]) - ref[i]) * (static_cast<double>(a[i]) - ref[i]);
    n += static_cast<double>(ref[i]) * ref[i];
  }
  return e / n;
}

double top2_margin(const std::vector<float>& l) {
  float a = -INFINITY, b = -INFINITY;
  for (float v : l) {
    if (v > a) {
      b = a;
      a = v;
    } else if (v > b) {
      b = v;
    }
  }
  return a - b;
}

BackendRegistry* g_registry = nullptr;
Model* g_ref = nullptr;
Model* g_device = nullptr;

const char* kPrompts[] = {
    "The capital of France is",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is the tallest mountain in the world?<|im_end|>\n<|im_start|>assistant\n",
};

class ModelConformance : public ::testing::TestWithParam<int> {};

TEST_P(ModelConformance, PrefillAndGreedyDecodeMatchTheReference) {
  const std::string prompt_text = kPrompts[GetParam()];
  const auto prompt = g_ref->tokenizer().encode(prompt_text, false, true);
  auto ref = greedy_trace(*g_ref, prompt);
  ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
  auto dev = greedy_trace(*g_device, prompt);
  ASSERT_TRUE(dev.is_ok()) << dev.status().to_string();
  int step = 0;
  double worst = 0;
  std::vector<double> errors;
  for (; step < kSteps; ++step) {
    const double e = nmse(dev->logits[static_cast<std::size_t>(step)], ref->logits[static_cast<std::size_t>(step)]);
    worst = std::max(worst, e);
    errors.push_back(e);
    if (std::getenv("HALYARD_VERBOSE_STEPS"))
      std::printf("  step %d NMSE %.3g\n", step, e);
    EXPECT_LE(e, kLogitNmse) << "logits at step " << step;
    if (dev->tokens[static_cast<std::size_t>(step)] != ref->tokens[static_cast<std::size_t>(step)])
      break;
  }
  std::sort(errors.begin(), errors.end());
  const double median = errors[errors.size() / 2];
  std::printf("%s: %d of %d greedy tokens equal the reference's; logit NMSE median %.3g, worst %.3g\n",
              g_device->device_uri().c_str(), step, kSteps, median, worst);
  EXPECT_LE(median, kMedianLogitNmse);
  if (step < kSteps) {
    const double margin = top2_margin(ref->logits[static_cast<std::size_t>(step)]);
    std::printf("  parted at step %d where the reference's top-two margin is %.4f\n", step, margin);
    EXPECT_LT(margin, kNearTieMargin) << "greedy tokens parted at step " << step << " without a near tie";
  }
}

INSTANTIATE_TEST_SUITE_P(Prompts, ModelConformance, ::testing::Values(0, 1));

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const conformance::DriverArgs args = conformance::parse_driver_args(argc, argv, "cpu");
  const std::string& uri = args.uri;
  if (!args.error.empty()) {
    std::fprintf(stderr, "model_conformance_tests: %s\n", args.error.c_str());
    return 2;
  }
  ModelOptions device_options;
  device_options.backend_options = args.options;
  const std::string path = model_path();
  if (!std::filesystem::exists(path)) {
    std::fprintf(stderr, "model not found at %s: run scripts/fetch-model.sh or set HALYARD_TEST_MODEL\n", path.c_str());
    return 1;
  }
  RegistryOptions ro;
  ro.search_paths = {HALYARD_PLUGIN_DIR};
  auto registry = BackendRegistry::load(ro);
  if (!registry.is_ok()) {
    std::fprintf(stderr, "%s\n", registry.status().to_string().c_str());
    return 1;
  }
  g_registry = registry.value().get();
  ModelOptions ref_options;
  ref_options.device = "ref";
  ref_options.context_length = 128;
  auto ref = Model::load(path, ref_options, *g_registry);
  if (!ref.is_ok()) {
    std::fprintf(stderr, "%s\n", ref.status().to_string().c_str());
    return 1;
  }
  g_ref = ref.value().get();
  device_options.device = uri;
  device_options.context_length = 128;
  auto dev = Model::load(path, device_options, *g_registry);
  if (dev.is_ok()) {
    g_device = dev.value().get();
  } else if (dev.status().code() == StatusCode::kInvalidArgument) {
    // A bad option or URI is the caller's mistake: fail, never count it as a skipped device.
    std::fprintf(stderr, "model_conformance_tests: %s\n", dev.status().to_string().c_str());
    return 2;
  } else {
    // Only the skipped placeholder runs. (Not uri + ".unavailable": ':' separates filter patterns,
    // so "cuda:0.unavailable" matched nothing and the run passed with zero tests.)
    ::testing::GTEST_FLAG(filter) = "*.unavailable";
    halyard::conformance::register_unavailable(uri, dev.status().to_string());
  }
  return RUN_ALL_TESTS();
}
