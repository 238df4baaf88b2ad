#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <vector>

#include "halyard/runtime/chat_template.h"
#include "halyard/runtime/sampler.h"

namespace halyard::runtime {
namespace {

TEST(ChatTemplate, ChatMLWithTheTemplatesDefaultSystemPrompt) {
  const std::string jinja =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
      "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
      "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}";
  auto t = ChatTemplate::from_jinja(jinja);
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->format(), ChatFormat::kChatML);
  EXPECT_EQ(t->apply({{"user", "Hi"}}, true),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t->apply({{"system", "Be brief."}, {"user", "Hi"}}, false),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, Llama3) {
  auto t = ChatTemplate::from_jinja("{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>' }}");
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->format(), ChatFormat::kLlama3);
  EXPECT_EQ(t->apply({{"user", " Hi \n"}}, true),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, UnknownFamilyIsAnError) {
  EXPECT_FALSE(ChatTemplate::from_jinja("[INST] {{ message }} [/INST]").is_ok());
}

TEST(Sampler, GreedyIsArgmax) {
  Sampler s(SamplerOptions{});
  const std::vector<float> logits{0.1f, 2.f, -1.f, 2.f};
  EXPECT_EQ(s.sample(logits), 1);  // first maximum
}

TEST(Sampler, TopKOfOneIsGreedyAtAnyTemperature) {
  Sampler s(SamplerOptions{5.f, 1, 1.f, 42});
  const std::vector<float> logits{0.1f, 0.2f, 3.f, 0.3f};
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(s.sample(logits), 2);
}

TEST(Sampler, SeedMakesItReproducibleAndTemperatureSpreadsIt) {
  const std::vector<float> logits{1.f, 1.1f, 0.9f, 1.05f, 0.95f};
  Sampler a(SamplerOptions{1.f, 0, 1.f, 7}), b(SamplerOptions{1.f, 0, 1.f, 7});
  std::set<TokenId> seen;
  for (int i = 0; i < 200; ++i) {
    const TokenId x = a.sample(logits);
    EXPECT_EQ(x, b.sample(logits));
    seen.insert(x);
  }
  EXPECT_EQ(seen.size(), logits.size());
}

// The filters below are checked on distributions where each of them changes the result: the
// frequencies of many seeded draws must lie within a few standard errors of the exact
// probabilities computed here, and a token the filter removes must never be drawn.
constexpr int kDraws = 20000;

std::vector<int> draw_counts(const SamplerOptions& options, const std::vector<float>& logits) {
  Sampler s(options);
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < kDraws; ++i) {
    const TokenId t = s.sample(logits);
    EXPECT_GE(t, 0);
    EXPECT_LT(static_cast<std::size_t>(t), logits.size());
    if (t >= 0 && static_cast<std::size_t>(t) < logits.size())
      ++counts[static_cast<std::size_t>(t)];
  }
  return counts;
}

// Softmax of logits / temperature over the tokens in `kept` (the others get 0).
std::vector<double> tempered_softmax(const std::vector<float>& logits, double temperature,
                                     const std::vector<bool>& kept) {
  std::vector<double> p(logits.size(), 0.0);
  double sum = 0.0;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    if (kept[i])
      sum += p[i] = std::exp(static_cast<double>(logits[i]) / temperature);
  }
  for (auto& v : p)
    v /= sum;
  return p;
}

// Each count within 5 standard errors of its binomial expectation (a false alarm about once in
// 3 million per token, and the seed is fixed anyway); tokens of probability 0 never drawn.
void expect_frequencies(const std::vector<int>& counts, const std::vector<double>& expected) {
  ASSERT_EQ(counts.size(), expected.size());
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (expected[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " is outside the kept set but was drawn";
      continue;
    }
    const double mean = kDraws * expected[i];
    const double sd = std::sqrt(kDraws * expected[i] * (1.0 - expected[i]));
    EXPECT_NEAR(counts[i], mean, 5.0 * sd) << "token " << i << ": p = " << expected[i];
  }
}

std::vector<float> log_probs(const std::vector<double>& p) {
  std::vector<float> l;
  for (double v : p)
    l.push_back(static_cast<float>(std::log(v)));
  return l;
}

TEST(Sampler, TopKKeepsTheKMostLikelyAndRenormalizes) {
  // Five tokens, top-k 3: tokens 3 and 4 (the two least likely, 3.0% and 1.4% of the full softmax, i.e.
  // ~600 and ~280 in 20 000) must never come; 0..2 in the ratio of their softmax over those
  // three. Keeping k+1 or ignoring k draws token 3; keeping k-1 never draws token 2.
  const std::vector<float> logits{0.5f, 2.f, 1.f, -1.f, -1.75f};  // order differs from index
  const auto counts = draw_counts(SamplerOptions{1.f, 3, 1.f, 11}, logits);
  expect_frequencies(counts, tempered_softmax(logits, 1.0, {true, true, true, false, false}));
}

TEST(Sampler, TopPKeepsTheTokenThatCrossesTheThreshold) {
  // Probabilities 0.5, 0.3, 0.15, 0.05 (in shuffled order). top-p 0.7: the cumulative sum is 0.5
  // after the first token and 0.8 after the second, which crosses 0.7, so the nucleus is
  // {0.5, 0.3}, renormalized to 0.625 / 0.375. Cutting before the crossing token keeps only the
  // first; cutting one later (or not at all) draws the 0.15 token ~2600 times.
  const std::vector<float> logits = log_probs({0.15, 0.5, 0.05, 0.3});
  const auto counts = draw_counts(SamplerOptions{1.f, 0, 0.7f, 5}, logits);
  expect_frequencies(counts, {0.0, 0.625, 0.0, 0.375});
}

TEST(Sampler, TopPBelowTheFirstProbabilityKeepsOnlyTheMostLikely) {
  // top-p 0.4 < 0.5: the first token alone crosses it.
  const std::vector<float> logits = log_probs({0.15, 0.5, 0.05, 0.3});
  const auto counts = draw_counts(SamplerOptions{1.f, 0, 0.4f, 6}, logits);
  expect_frequencies(counts, {0.0, 1.0, 0.0, 0.0});
}

TEST(Sampler, TopPOfOneKeepsEveryToken) {
  const std::vector<float> logits = log_probs({0.15, 0.5, 0.05, 0.3});
  const auto counts = draw_counts(SamplerOptions{1.f, 0, 1.f, 8}, logits);
  expect_frequencies(counts, {0.15, 0.5, 0.05, 0.3});
}

TEST(Sampler, LowTemperatureSharpensTheDistribution) {
  // softmax(logits / 0.5) = softmax({0, 2, 4}) = 0.016, 0.117, 0.867; at temperature 1 the
  // middle token would be 0.245, ~21 standard errors away.
  const std::vector<float> logits{0.f, 1.f, 2.f};
  const auto counts = draw_counts(SamplerOptions{0.5f, 0, 1.f, 9}, logits);
  expect_frequencies(counts, tempered_softmax(logits, 0.5, {true, true, true}));
}

TEST(Sampler, HighTemperatureFlattensTheDistribution) {
  // softmax(logits / 2) = softmax({0, 0.5, 1}) = 0.186, 0.307, 0.506 (at 1: 0.090, 0.245, 0.665).
  const std::vector<float> logits{0.f, 1.f, 2.f};
  const auto counts = draw_counts(SamplerOptions{2.f, 0, 1.f, 10}, logits);
  expect_frequencies(counts, tempered_softmax(logits, 2.0, {true, true, true}));
}

TEST(Sampler, TopPIsAppliedToTheTemperedDistribution) {
  // The order is top-k, temperature, then top-p. Logits log{0.5, 0.3, 0.15, 0.05} at
  // temperature 2 become proportional to sqrt(p): 0.707, 0.548, 0.387, 0.224 over a sum of 1.866,
  // i.e. 0.379, 0.294, 0.208, 0.120. The cumulative sums are 0.379, 0.673, 0.880: top-p 0.75
  // keeps the first three, which renormalize to their sqrt(p) over 1.642. Untempered (0.5, 0.8)
  // it would keep two.
  const std::vector<double> p{0.5, 0.3, 0.15, 0.05};
  const auto counts = draw_counts(SamplerOptions{2.f, 0, 0.75f, 12}, log_probs(p));
  const double sum = std::sqrt(0.5) + std::sqrt(0.3) + std::sqrt(0.15);
  expect_frequencies(counts, {std::sqrt(0.5) / sum, std::sqrt(0.3) / sum, std::sqrt(0.15) / sum, 0.0});
}

TEST(Sampler, TopKThenTopPTogether) {
  // Six tokens; top-k 4 drops the two least likely (0.04, 0.02), then the four kept renormalize
  // (0.40, 0.30, 0.15, 0.09 over 0.94: 0.4255, 0.3191, 0.1596, 0.0957) and top-p 0.87 crosses at
  // the third (0.4255 + 0.3191 = 0.7447 < 0.87 <= 0.9043), so three tokens remain: 0.40, 0.30,
  // 0.15 over 0.85. Without top-k the sums would be 0.40, 0.70, 0.85, 0.94: four tokens.
  const std::vector<double> p{0.02, 0.30, 0.09, 0.40, 0.04, 0.15};
  const auto counts = draw_counts(SamplerOptions{1.f, 4, 0.87f, 13}, log_probs(p));
  expect_frequencies(counts, {0.0, 0.30 / 0.85, 0.0, 0.40 / 0.85, 0.0, 0.15 / 0.85});
}

}  // namespace
}  // namespace halyard::runtime
