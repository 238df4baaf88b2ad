// Model-level conformance: the default model's prefill logits and 32 decode steps on a device
// against the reference device, both fed the reference's greedy tokens.
//   model_conformance_tests --device URI [--cpu-kernels SET] [--kv-dtype f16|f32]
// The reference keeps f32 KV caches (the exact arithmetic); the device under test runs the
// runtime's default (f16) unless --kv-dtype says otherwise, so the bounds include what f16 costs.
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

// The reference and the device each decode in their own session, and both are fed the same
// token after every step: the reference's greedy choice. Up to the first step where the device's
// greedy token differs this is the device's own greedy decode. A difference is accepted only at a
// near tie in the reference, and the comparison goes on after it: a fault that shows only late in
// a trace (a KV-cache row written to the wrong place past some position, say) still fails, where
// a comparison of two free-running greedy decodes could check nothing beyond the first parting.
TEST_P(ModelConformance, PrefillAndGreedyDecodeMatchTheReference) {
  const std::string prompt_text = kPrompts[GetParam()];
  const std::vector<TokenId> prompt = g_ref->tokenizer().encode(prompt_text, false, true);
  auto ref_session = Session::create(*g_ref);
  ASSERT_TRUE(ref_session.is_ok()) << ref_session.status().to_string();
  auto dev_session = Session::create(*g_device);
  ASSERT_TRUE(dev_session.is_ok()) << dev_session.status().to_string();
  std::vector<TokenId> next = prompt;
  int agreed_before_parting = kSteps;  // steps before the first greedy difference
  int parted = 0;
  double worst = 0;
  std::vector<double> errors;
  for (int step = 0; step < kSteps; ++step) {
    auto ref_out = ref_session.value()->eval(next);
    ASSERT_TRUE(ref_out.is_ok()) << "step " << step << ": " << ref_out.status().to_string();
    const std::vector<float> ref(ref_out->begin(), ref_out->end());
    auto dev_out = dev_session.value()->eval(next);
    ASSERT_TRUE(dev_out.is_ok()) << "step " << step << ": " << dev_out.status().to_string();
    const std::vector<float> dev(dev_out->begin(), dev_out->end());
    ASSERT_EQ(dev.size(), ref.size());

    const double e = nmse(dev, ref);
    worst = std::max(worst, e);
    errors.push_back(e);
    const double margin = top2_margin(ref);
    if (std::getenv("HALYARD_VERBOSE_STEPS"))
      std::printf("  step %d NMSE %.3g, reference top-two margin %.4f\n", step, e, margin);
    EXPECT_LE(e, kLogitNmse) << "logits at step " << step;
    const TokenId ref_token = Sampler::argmax(ref);
    if (Sampler::argmax(dev) != ref_token) {
      if (parted++ == 0)
        agreed_before_parting = step;
      std::printf("  greedy tokens differ at step %d where the reference's top-two margin is %.4f\n", step, margin);
      EXPECT_LT(margin, kNearTieMargin) << "greedy tokens differ at step " << step << " without a near tie";
    }
    next.assign(1, ref_token);
  }
  std::sort(errors.begin(), errors.end());
  const double median = errors[errors.size() / 2];
  std::printf(
      "%s (%s KV cache): %d of %d greedy tokens equal the reference's before the first difference, %d differ in "
      "all; logit NMSE median %.3g, worst %.3g\n",
      g_device->device_uri().c_str(), std::string(dtype_name(g_device->kv_dtype())).c_str(), agreed_before_parting,
      kSteps, parted, median, worst);
  EXPECT_LE(median, kMedianLogitNmse);
}

INSTANTIATE_TEST_SUITE_P(Prompts, ModelConformance, ::testing::Values(0, 1));

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // --kv-dtype is this driver's own flag: taken out before the shared driver arguments are parsed.
  DType kv_dtype = ModelOptions{}.kv_dtype;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) != "--kv-dtype")
      continue;
    const std::string value = i + 1 < argc ? argv[i + 1] : "";
    if (value != "f16" && value != "f32") {
      std::fprintf(stderr, "model_conformance_tests: --kv-dtype takes f16 or f32, not '%s'\n", value.c_str());
      return 2;
    }
    kv_dtype = value == "f16" ? DType::kF16 : DType::kF32;
    for (int j = i; j + 2 <= argc; ++j)
      argv[j] = argv[j + 2];
    argc -= 2;
    break;
  }
  const conformance::DriverArgs args = conformance::parse_driver_args(argc, argv, "cpu");
  const std::string& uri = args.uri;
  if (!args.error.empty()) {
    std::fprintf(stderr, "model_conformance_tests: %s\n", args.error.c_str());
    return 2;
  }
  ModelOptions device_options;
  device_options.backend_options = args.options;
  device_options.kv_dtype = kv_dtype;
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
  ref_options.kv_dtype = DType::kF32;
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
