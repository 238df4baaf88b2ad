// The whole model on the reference device against llama.cpp on the same GGUF file
// (tests/data/llama_cpp_reference, recorded by scripts/record-llama-cpp-reference.py).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "halyard/runtime/generator.h"
#include "halyard/runtime/session.h"
#include "test_paths.h"

namespace halyard::runtime {
namespace {

// llama.cpp is not exact arithmetic: before every Q4_1/Q8_0 matrix product its CPU kernels
// quantize the activations to 8 bits (blocks of 32), and its KV cache is f16. Against an exact
// f64 forward pass its logits differ by up to ~0.75 (see the data README). So a greedy
// divergence is accepted only where llama.cpp's own top-two margin is within that error:
constexpr double kNearTieMargin = 0.3;
// ... and the strict criterion (margin < 0.05) must hold for at least three prompts.
constexpr double kStrictNearTieMargin = 0.05;
constexpr int kStrictPromptsRequired = 3;

class ModelOnRef : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = testing::default_model_path();
    if (!std::filesystem::exists(path))
      return;
    RegistryOptions ro;
    ro.search_paths = {testing::plugin_dir()};
    auto reg = BackendRegistry::load(ro);
    ASSERT_TRUE(reg.is_ok()) << reg.status().to_string();
    registry_ = std::move(reg).value().release();
    ModelOptions mo;
    mo.device = "ref";
    mo.context_length = 256;
    auto model = Model::load(path, mo, *registry_);
    ASSERT_TRUE(model.is_ok()) << model.status().to_string();
    model_ = std::move(model).value().release();
  }
  void SetUp() override {
    HALYARD_REQUIRE_MODEL(testing::default_model_path());
    ASSERT_NE(model_, nullptr);
  }
  static nlohmann::json greedy_data() {
    std::ifstream in(testing::data_dir() + "/llama_cpp_reference/greedy.json");
    return nlohmann::json::parse(in);
  }
  static inline BackendRegistry* registry_ = nullptr;
  static inline Model* model_ = nullptr;
};

TEST_F(ModelOnRef, PromptTokensMatchLlamaCpp) {
  const auto data = greedy_data();
  ASSERT_GE(data["cases"].size(), 3u);
  for (const auto& c : data["cases"]) {
    EXPECT_EQ(model_->tokenizer().encode(c["prompt"].get<std::string>(), false, true),
              c["prompt_ids"].get<std::vector<TokenId>>());
  }
}

TEST_F(ModelOnRef, PrefillLogitsMatchLlamaCpp) {
  const auto data = greedy_data();
  const auto& c = data["cases"][data["prefill_logits_case"].get<std::size_t>()];
  std::ifstream in(testing::data_dir() + "/llama_cpp_reference/" + data["prefill_logits_file"].get<std::string>(),
                   std::ios::binary);
  std::vector<float> expected(static_cast<std::size_t>(model_->config().vocab_size));
  in.read(reinterpret_cast<char*>(expected.data()), static_cast<std::streamsize>(expected.size() * 4));
  ASSERT_TRUE(in.good());

  auto session = Session::create(*model_);
  ASSERT_TRUE(session.is_ok());
  const auto prompt = c["prompt_ids"].get<std::vector<TokenId>>();
  auto logits = session.value()->eval(prompt);
  ASSERT_TRUE(logits.is_ok()) << logits.status().to_string();
  double err = 0, ref = 0, max_abs = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    ASSERT_FALSE(std::isnan(logits.value()[i]));
    const double d = logits.value()[i] - expected[i];
    err += d * d;
    ref += static_cast<double>(expected[i]) * expected[i];
    max_abs = std::max(max_abs, std::fabs(d));
  }
  const double nmse = err / ref;
  std::printf("prefill logits vs llama.cpp: NMSE %.3g, max |diff| %.3f\n", nmse, max_abs);
  EXPECT_EQ(Sampler::argmax(logits.value()), Sampler::argmax(expected));
  // Measured 2.4e-4 (llama.cpp's 8-bit activations and f16 KV cache against exact math).
  EXPECT_LT(nmse, 1e-3);
}

TEST_F(ModelOnRef, GreedyTokensMatchLlamaCppUpToNearTies) {
  int strict_prompts = 0;
  const auto data = greedy_data();  // kept alive: the loop walks into it
  ASSERT_GE(data["cases"].size(), 3u);
  for (const auto& c : data["cases"]) {
    const auto prompt = c["prompt_ids"].get<std::vector<TokenId>>();
    const auto expected = c["tokens"].get<std::vector<TokenId>>();
    const auto margins = c["margins"].get<std::vector<double>>();
    auto session = Session::create(*model_);
    ASSERT_TRUE(session.is_ok());
    GenerateOptions go;
    go.max_tokens = static_cast<int>(expected.size());
    go.stop_at_end_of_generation = false;
    auto result = generate(*session.value(), prompt, go, nullptr);
    ASSERT_TRUE(result.is_ok()) << result.status().to_string();
    const auto& got = result->tokens;
    ASSERT_EQ(got.size(), expected.size());
    std::size_t step = 0;
    while (step < got.size() && got[step] == expected[step])
      ++step;
    const std::string prompt_text = c["prompt"];
    if (step == got.size()) {
      std::printf("'%.30s...': all %zu greedy tokens equal llama.cpp's\n", prompt_text.c_str(), got.size());
      ++strict_prompts;
      continue;
    }
    std::printf("'%.30s...': equal for %zu tokens, then parts where llama.cpp's margin is %.4f\n", prompt_text.c_str(),
                step, margins[step]);
    EXPECT_LT(margins[step], kNearTieMargin)
        << "diverged from llama.cpp at step " << step << " of '" << prompt_text << "', which was not a near tie";
    if (margins[step] < kStrictNearTieMargin)
      ++strict_prompts;
  }
  EXPECT_GE(strict_prompts, kStrictPromptsRequired);
}

TEST_F(ModelOnRef, PromptLongerThanContextIsAClearError) {
  auto session = Session::create(*model_);
  ASSERT_TRUE(session.is_ok());
  const std::vector<TokenId> prompt(static_cast<std::size_t>(model_->context_length()) + 1, 504);
  auto r = generate(*session.value(), prompt, GenerateOptions{}, nullptr);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(r.status().message().find("context"), std::string::npos);
}

TEST_F(ModelOnRef, GenerationStopsWhenTheContextIsFull) {
  ModelOptions mo;
  mo.device = "ref";
  mo.context_length = 8;
  auto small = Model::load(testing::default_model_path(), mo, *registry_);
  ASSERT_TRUE(small.is_ok()) << small.status().to_string();
  auto session = Session::create(*small.value());
  ASSERT_TRUE(session.is_ok());
  const std::vector<TokenId> prompt{504, 3575, 282, 4649, 314, 7042};  // 6 of the 8 positions
  GenerateOptions go;
  go.max_tokens = 10;
  go.stop_at_end_of_generation = false;
  auto r = generate(*session.value(), prompt, go, nullptr);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->stop, StopReason::kContextFull);
  EXPECT_EQ(r->tokens.size(), 3u);  // two more fit in the cache; the third is sampled from the last logits
}

}  // namespace
}  // namespace halyard::runtime
