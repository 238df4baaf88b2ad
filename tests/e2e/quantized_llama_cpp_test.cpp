// The default model quantized at test time by `halyard quantize` (the real CLI), against
// llama.cpp's greedy tokens on the same bytes (tests/data/llama_cpp_reference/quantized, recorded
// by scripts/record-quantized-llama-reference.sh). First the file's sha256 must equal the
// recorded one: the quantizer is deterministic across machines, and a recording made from other
// bytes says nothing about these. Then Halyard's greedy tokens must equal llama.cpp's up to the
// first step where llama.cpp's own top-two margin is a near tie.
// The device is HALYARD_QUANT_TEST_DEVICE (default ref). A device without kernels for a format
// reports the case skipped, with the reason, never passed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "halyard/runtime/generator.h"
#include "halyard/runtime/session.h"
#include "sha256.h"
#include "test_paths.h"

namespace halyard::runtime {
namespace {

namespace fs = std::filesystem;

// As in model_test.cpp: llama.cpp quantizes activations to 8 bits before each quantized matrix
// product (Q8_0 blocks for the 32-block formats, Q8_K for the K-quants) and keeps an f16 KV
// cache, so logits differ from exact math by up to ~0.75; a divergence is accepted only where
// llama.cpp's own top-two margin is below this ...
constexpr double kNearTieMargin = 0.3;
// ... or where Halyard took llama.cpp's runner-up and the two disagree on the gap between those
// two tokens by less than that measured error (llama.cpp's margin plus Halyard's margin the
// other way). Seen once: Q5_K_M, 'The three primary colors are' step 1, llama.cpp margin 0.448.
constexpr double kMaxLogitDisagreement = 0.75;

std::string device() {
  const char* d = std::getenv("HALYARD_QUANT_TEST_DEVICE");
  return d && *d ? d : "ref";
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s)
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class QuantizedVsLlamaCpp : public ::testing::TestWithParam<const char*> {};

TEST_P(QuantizedVsLlamaCpp, GreedyTokensMatchUpToNearTies) {
  const std::string type = GetParam();
  const std::string model_path = testing::default_model_path();
  HALYARD_REQUIRE_MODEL(model_path);
  const std::string data_path = testing::data_dir() + "/llama_cpp_reference/quantized/" + type + ".json";
  std::ifstream in(data_path);
  ASSERT_TRUE(in.good()) << "no llama.cpp recording " << data_path
                         << ": run scripts/record-quantized-llama-reference.sh";
  const auto data = nlohmann::json::parse(in);

  // Quantize with the CLI into a path of this test's own (ctest runs entries in parallel).
  const fs::path dir = fs::current_path() / "quantized_llama_cpp_tmp";
  fs::create_directories(dir);
  const std::string base = (dir / (device() + "." + type + "." + std::to_string(::getpid()))).string();
  const std::string out = base + ".gguf";
  const std::string log = base + ".log";
  const std::string cmd = shell_quote(HALYARD_CLI_PATH) + " quantize " + shell_quote(model_path) + " " +
                          shell_quote(out) + " " + type + " > " + shell_quote(log) + " 2>&1";
  struct Cleanup {
    std::string a, b;
    ~Cleanup() {
      std::error_code ec;
      fs::remove(a, ec);
      fs::remove(b, ec);
    }
  } cleanup{out, log};
  const int rc = std::system(cmd.c_str());
  std::ifstream log_in(log);
  const std::string printed{std::istreambuf_iterator<char>(log_in), std::istreambuf_iterator<char>()};
  ASSERT_EQ(rc, 0) << cmd << "\n" << printed;

  const std::string sha = testing::sha256_file(out);
  ASSERT_EQ(sha, data["quantized_sha256"].get<std::string>())
      << "halyard quantize " << type << " wrote other bytes than the recording was made from (" << data_path
      << "): the quantizer changed. Re-run scripts/record-quantized-llama-reference.sh and commit its output.\n"
      << printed;

  if (device().rfind("vulkan", 0) == 0)
    ::setenv("HALYARD_VULKAN_VALIDATION", "1", 0);  // as every Vulkan test runs
  RegistryOptions ro;
  ro.search_paths = {testing::plugin_dir()};
  auto reg = BackendRegistry::load(ro);
  ASSERT_TRUE(reg.is_ok()) << reg.status().to_string();
  ModelOptions mo;
  mo.device = device();
  mo.context_length = 128;
  auto model = Model::load(out, mo, *reg.value());
  if (!model.is_ok() &&
      (model.status().code() == StatusCode::kUnimplemented || model.status().code() == StatusCode::kUnavailable)) {
    GTEST_SKIP() << device() << " cannot run " << type << " yet: " << model.status().to_string();
  }
  ASSERT_TRUE(model.is_ok()) << model.status().to_string();

  std::size_t compared = 0;
  for (const auto& c : data["cases"]) {
    const auto prompt = c["prompt_ids"].get<std::vector<TokenId>>();
    const auto expected = c["tokens"].get<std::vector<TokenId>>();
    const auto margins = c["margins"].get<std::vector<double>>();
    auto session = Session::create(*model.value());
    ASSERT_TRUE(session.is_ok()) << session.status().to_string();
    GenerateOptions go;
    go.max_tokens = static_cast<int>(expected.size());
    go.stop_at_end_of_generation = false;
    auto result = generate(*session.value(), prompt, go, nullptr);
    if (!result.is_ok() && result.status().code() == StatusCode::kUnimplemented)
      GTEST_SKIP() << device() << " cannot run " << type << " yet: " << result.status().to_string();
    ASSERT_TRUE(result.is_ok()) << result.status().to_string();
    const auto& got = result->tokens;
    ASSERT_EQ(got.size(), expected.size());
    std::size_t step = 0;
    while (step < got.size() && got[step] == expected[step])
      ++step;
    compared += step;
    const std::string prompt_text = c["prompt"];
    if (step == got.size()) {
      std::printf("%s '%.30s...': all %zu greedy tokens equal llama.cpp's\n", type.c_str(), prompt_text.c_str(),
                  got.size());
      continue;
    }
    std::printf("%s '%.30s...': equal for %zu tokens, then parts where llama.cpp's margin is %.4f\n", type.c_str(),
                prompt_text.c_str(), step, margins[step]);
    if (margins[step] < kNearTieMargin)
      continue;
    // Not a near tie by llama.cpp's margin alone: measure Halyard's own gap at that step.
    const auto second = c["second_tokens"].get<std::vector<TokenId>>();
    ASSERT_EQ(got[step], second[step]) << type << ": diverged from llama.cpp at step " << step << " of '" << prompt_text
                                       << "' (got " << got[step] << ", llama.cpp " << expected[step] << " with margin "
                                       << margins[step] << "), not even its runner-up";
    std::vector<TokenId> context = prompt;
    context.insert(context.end(), expected.begin(), expected.begin() + static_cast<std::ptrdiff_t>(step));
    auto fresh = Session::create(*model.value());
    ASSERT_TRUE(fresh.is_ok());
    auto logits = fresh.value()->eval(context);
    ASSERT_TRUE(logits.is_ok()) << logits.status().to_string();
    const double ours =
        logits.value()[static_cast<std::size_t>(got[step])] - logits.value()[static_cast<std::size_t>(expected[step])];
    std::printf("  Halyard's margin for its pick: %.4f; disagreement %.4f\n", ours, ours + margins[step]);
    EXPECT_LT(ours + margins[step], kMaxLogitDisagreement)
        << type << ": diverged from llama.cpp at step " << step << " of '" << prompt_text << "' (got " << got[step]
        << ", llama.cpp " << expected[step] << "): llama.cpp's margin " << margins[step] << " plus Halyard's " << ours
        << " is more than the logit error between the two";
  }
  EXPECT_GT(compared, 0u) << "no token was compared";
}

INSTANTIATE_TEST_SUITE_P(Types, QuantizedVsLlamaCpp,
                         ::testing::Values("Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "Q5_0", "Q5_1"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace halyard::runtime
