#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include "halyard/runtime/chat_template.h"
#include "halyard/runtime/sampler.h"
#include "halyard/runtime/scheduler.h"

namespace halyard::runtime {
namespace {

// SmolLM2's own template (the default model's tokenizer.chat_template), rendered by the Jinja
// interpreter: its default system prompt comes from the template itself.
TEST(ChatTemplate, TheModelsOwnTemplateIsRendered) {
  const std::string jinja =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
      "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
      "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
      "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
  auto t = ChatTemplate::from_jinja(jinja);
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ(t->format(), ChatFormat::kJinja);
  EXPECT_EQ(t->description(), "the model's own (tokenizer.chat_template)");
  EXPECT_EQ(t->apply({{"user", "Hi"}}, true).value(),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t->apply({{"system", "Be brief."}, {"user", "Hi"}}, false).value(),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
  EXPECT_EQ(t->apply({{"user", ""}}, false).value(),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\n<|im_end|>\n");
}

TEST(ChatTemplate, BosEosAndToolsReachTheTemplate) {
  auto t = ChatTemplate::from_jinja(
      "{{ bos_token }}{% if tools %}{{ tools|map(attribute='function.name')|join(',') }}{% endif %}"
      "{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}{{ eos_token }}",
      "<s>", "</s>");
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ(t->apply({{"user", "x"}}, true).value(), "<s>[user:x]</s>");
  EXPECT_EQ(t->apply({{"user", "x"}}, true, R"([{"type": "function", "function": {"name": "f"}}])").value(),
            "<s>f[user:x]</s>");
  EXPECT_EQ(t->apply({}, true, "{not json").status().message(), "the tools must be a JSON array of tool definitions");
}

TEST(ChatTemplate, BuiltinLlama3) {
  const ChatTemplate t = ChatTemplate::make(ChatFormat::kLlama3);
  EXPECT_EQ(t.description(), "builtin Llama-3");
  EXPECT_EQ(t.apply({{"user", " Hi \n"}}, true).value(),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, BuiltinGemmaFoldsTheSystemTurnIntoTheFirstUserTurn) {
  const ChatTemplate t = ChatTemplate::make(ChatFormat::kGemma);
  EXPECT_EQ(t.description(), "builtin Gemma");
  EXPECT_EQ(
      t.apply({{"system", "Be brief."}, {"user", " Hi "}, {"assistant", "Hello."}, {"user", "Bye"}}, true).value(),
      "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n"
      "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(t.apply({{"user", "Hi"}}, false).value(), "<start_of_turn>user\nHi<end_of_turn>\n");
}

TEST(ChatTemplate, BuiltinChatML) {
  const ChatTemplate t = ChatTemplate::make(ChatFormat::kChatML);
  EXPECT_EQ(t.description(), "builtin ChatML");
  EXPECT_EQ(t.apply({{"user", "Hi"}}, true).value(), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_FALSE(t.apply({{"user", "Hi"}}, true, "[]").is_ok());
}

TEST(ChatTemplate, ATemplateTheInterpreterCannotParseIsAnErrorNamingTheConstruct) {
  auto t = ChatTemplate::from_jinja("{% for m in messages %}\n{{ m|frobnicate }}{% endfor %}");
  ASSERT_FALSE(t.is_ok());
  EXPECT_EQ(t.status().message(), "chat template: unsupported filter 'frobnicate' at line 2");
}

TEST(ChatTemplate, TheTemplatesOwnRefusalIsAnApplyError) {
  // Gemma's templates refuse a system turn with raise_exception.
  auto t = ChatTemplate::from_jinja(
      "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}ok");
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->apply({{"user", "Hi"}}, true).value(), "ok");
  const auto r = t->apply({{"system", "S"}, {"user", "Hi"}}, true);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "the template raised an error: System role not supported at line 1");
}

TEST(TokenLogprobs, LogSoftmaxOfTheTokenAndTheTopAlternativesInOrder) {
  // logits 0, ln 2, ln 4, -inf, ln 2: probabilities 1/9, 2/9, 4/9, 0, 2/9.
  const std::vector<float> logits = {0.f, std::log(2.f), std::log(4.f), -std::numeric_limits<float>::infinity(),
                                     std::log(2.f)};
  const TokenLogprobs lp = token_logprobs(logits, 0, 3);
  EXPECT_NEAR(lp.logprob, std::log(1.f / 9), 1e-6);
  ASSERT_EQ(lp.top.size(), 3U);
  EXPECT_EQ(lp.top[0].token, 2);
  EXPECT_NEAR(lp.top[0].logprob, std::log(4.f / 9), 1e-6);
  // A tie keeps the lower id first.
  EXPECT_EQ(lp.top[1].token, 1);
  EXPECT_EQ(lp.top[2].token, 4);
  EXPECT_NEAR(lp.top[2].logprob, std::log(2.f / 9), 1e-6);
  // A banned token's log-probability is -inf, not NaN; top_n 0 lists none; top_n past the
  // vocabulary lists every token.
  const TokenLogprobs banned = token_logprobs(logits, 3, 0);
  EXPECT_TRUE(std::isinf(banned.logprob) && banned.logprob < 0);
  EXPECT_TRUE(banned.top.empty());
  EXPECT_EQ(token_logprobs(logits, 1, 20).top.size(), logits.size());
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

SamplerOptions sampling(float temperature, std::uint64_t seed) {
  SamplerOptions o;
  o.temperature = temperature;
  o.top_k = 0;
  o.top_p = 1.f;
  o.seed = seed;
  return o;
}

TEST(Sampler, MinPRemovesTheTokensBelowAFractionOfTheMostLikely) {
  // Probabilities 0.40, 0.25, 0.15, 0.10, 0.06, 0.04 (shuffled). min-p 0.3: the threshold is
  // 0.3 * 0.40 = 0.12, so 0.40, 0.25 and 0.15 stay (over 0.80) and the 0.10 token (~2000 draws
  // without the filter) never comes. A threshold of 0.3 absolute would keep only the first.
  SamplerOptions o = sampling(1.f, 21);
  o.min_p = 0.3f;
  const auto counts = draw_counts(o, log_probs({0.10, 0.40, 0.04, 0.15, 0.06, 0.25}));
  expect_frequencies(counts, {0.0, 0.40 / 0.80, 0.0, 0.15 / 0.80, 0.0, 0.25 / 0.80});
}

TEST(Sampler, MinPIsAppliedAfterTemperature) {
  // Probabilities 0.40, 0.25, 0.15, 0.10 at temperature 2 become proportional to sqrt(p):
  // ratios to the largest 1, 0.79, 0.61, 0.5. min-p 0.45 keeps all four; on the untempered
  // distribution (ratios 1, 0.625, 0.375, 0.25) it would keep two.
  SamplerOptions o = sampling(2.f, 22);
  o.min_p = 0.45f;
  const std::vector<float> logits = log_probs({0.40, 0.25, 0.15, 0.10});
  expect_frequencies(draw_counts(o, logits), tempered_softmax(logits, 2.0, {true, true, true, true}));
}

TEST(Sampler, MinPOfOneIsGreedyAndZeroIsOff) {
  SamplerOptions o = sampling(1.f, 23);
  o.min_p = 1.f;
  const std::vector<double> p{0.3, 0.5, 0.2};
  expect_frequencies(draw_counts(o, log_probs(p)), {0.0, 1.0, 0.0});
  o.min_p = 0.f;
  expect_frequencies(draw_counts(o, log_probs(p)), p);
}

TEST(Sampler, RepeatPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  // Tokens 0 (logit 2) and 1 (logit -1) are in the history; penalty 2 makes them 1 and -2, token
  // 2 keeps 0.5: the probabilities are softmax{1, -2, 0.5} = 0.604, 0.030, 0.366 instead of
  // softmax{2, -1, 0.5} = 0.786, 0.039, 0.175. Dividing the negative logit too (-0.5) would give
  // token 1 0.152, and multiplying the positive one would give token 0 ~0.96.
  SamplerOptions o = sampling(1.f, 24);
  o.repeat_penalty = 2.f;
  Sampler s(o);
  s.accept(0);
  s.accept(1);
  std::vector<int> counts(3, 0);
  const std::vector<float> logits{2.f, -1.f, 0.5f};
  for (int i = 0; i < kDraws; ++i)
    ++counts[static_cast<std::size_t>(s.sample(logits))];
  expect_frequencies(counts, tempered_softmax({1.f, -2.f, 0.5f}, 1.0, {true, true, true}));
}

TEST(Sampler, RepeatedTokensProbabilityDropsByTheExactFactor) {
  // A token of logit 0 in the history, penalised by presence 0.7: its odds against each other
  // token fall by exactly e^0.7 (= 2.014). Tokens: logits {0, 0, 0, 0}; token 3 seen, so its
  // probability is e^-0.7 / (3 + e^-0.7) = 0.142 instead of 0.25.
  SamplerOptions o = sampling(1.f, 25);
  o.presence_penalty = 0.7f;
  Sampler s(o);
  s.accept(3);
  std::vector<int> counts(4, 0);
  const std::vector<float> logits{0.f, 0.f, 0.f, 0.f};
  for (int i = 0; i < kDraws; ++i)
    ++counts[static_cast<std::size_t>(s.sample(logits))];
  const double q = std::exp(-0.7);
  expect_frequencies(counts, {1 / (3 + q), 1 / (3 + q), 1 / (3 + q), q / (3 + q)});
}

TEST(Sampler, PresenceAndFrequencyPenaltiesAreExactLogitArithmetic) {
  // Window: token 1 three times, token 2 once. presence 0.5, frequency 0.25:
  // token 1: 3 - 0.5 - 3 * 0.25 = 1.75; token 2: -1 - 0.5 - 0.25 = -1.75; 0 and 3 unchanged.
  SamplerOptions o;
  o.presence_penalty = 0.5f;
  o.frequency_penalty = 0.25f;
  const std::vector<TokenId> window{1, 2, 1, 1};
  std::vector<float> logits{0.5f, 3.f, -1.f, 2.f};
  apply_bias_and_penalties(logits, o, window);
  EXPECT_EQ(logits, (std::vector<float>{0.5f, 1.75f, -1.75f, 2.f}));
  // With a repeat penalty of 2 as well, it applies first: 3 / 2 - 1.25 = 0.25 and
  // -1 * 2 - 0.75 = -2.75.
  o.repeat_penalty = 2.f;
  logits = {0.5f, 3.f, -1.f, 2.f};
  apply_bias_and_penalties(logits, o, window);
  EXPECT_EQ(logits, (std::vector<float>{0.5f, 0.25f, -2.75f, 2.f}));
  // Negative penalties raise the logits by the same amounts.
  o.repeat_penalty = 1.f;
  o.presence_penalty = -0.5f;
  o.frequency_penalty = -0.25f;
  logits = {0.5f, 3.f, -1.f, 2.f};
  apply_bias_and_penalties(logits, o, window);
  EXPECT_EQ(logits, (std::vector<float>{0.5f, 4.25f, -0.25f, 2.f}));
}

TEST(Sampler, LogitBiasIsAddedBeforeThePenalties) {
  // Bias +1 on token 0 (logit 1 -> 2), then repeat penalty 4 (2 / 4 = 0.5); the other order
  // would give 1 / 4 + 1 = 1.25. Two entries for token 2 add up (-0.5 - 0.25).
  SamplerOptions o;
  o.repeat_penalty = 4.f;
  o.logit_bias = {{0, 1.f}, {2, -0.5f}, {2, -0.25f}};
  std::vector<float> logits{1.f, 1.f, 1.f};
  const std::vector<TokenId> window{0};
  apply_bias_and_penalties(logits, o, window);
  EXPECT_EQ(logits, (std::vector<float>{0.5f, 1.f, 0.25f}));
}

TEST(Sampler, GreedyHonoursThePenalties) {
  // Logits {1, 1.2}: greedy picks 1 until it has been seen; frequency 0.3 takes it to 0.9 < 1.
  SamplerOptions o;
  o.frequency_penalty = 0.3f;
  Sampler s(o);
  const std::vector<float> logits{1.f, 1.2f};
  EXPECT_EQ(s.sample(logits), 1);
  s.accept(1);
  EXPECT_EQ(s.sample(logits), 0);
  // Repeat penalty alone: 1.2 / 1.25 = 0.96 < 1.
  SamplerOptions r;
  r.repeat_penalty = 1.25f;
  Sampler t(r);
  t.accept(1);
  EXPECT_EQ(t.sample(logits), 0);
}

TEST(Sampler, GreedyIsThePlainArgmaxWhenEverythingIsOff) {
  // Defaults (penalties 1 / 0 / 0, no bias) with a history: the first maximum, untouched.
  Sampler s(SamplerOptions{});
  for (TokenId t : {1, 1, 3, 3, 3})
    s.accept(t);
  const std::vector<float> logits{0.1f, 2.f, -1.f, 2.f};
  EXPECT_EQ(s.sample(logits), 1);
}

// The generator takes argmax steps (no logits downloaded) only while needs_logits() is false,
// so it must be true exactly when sample() could differ from argmax().
TEST(Sampler, NeedsLogitsOnlyWhenSampleIsMoreThanTheArgmax) {
  Sampler greedy(SamplerOptions{});
  EXPECT_FALSE(greedy.needs_logits());
  greedy.accept(3);
  EXPECT_FALSE(greedy.needs_logits());  // a history without penalties changes nothing
  EXPECT_TRUE(Sampler(sampling(0.7f, 1)).needs_logits());
  SamplerOptions bias;
  bias.logit_bias = {{1, 0.5f}};
  EXPECT_TRUE(Sampler(bias).needs_logits());
  for (auto set :
       {+[](SamplerOptions& o) { o.repeat_penalty = 1.1f; }, +[](SamplerOptions& o) { o.presence_penalty = 0.5f; },
        +[](SamplerOptions& o) { o.frequency_penalty = -0.5f; }}) {
    SamplerOptions o;
    set(o);
    Sampler s(o);
    EXPECT_FALSE(s.needs_logits());  // nothing in the window yet: the penalty changes nothing
    s.accept(2);
    EXPECT_TRUE(s.needs_logits());
    o.repeat_last_n = 0;  // no window: the penalties are off
    Sampler off(o);
    off.accept(2);
    EXPECT_FALSE(off.needs_logits());
  }
}

TEST(Sampler, LogitBiasBansAndPromotesUnderGreedy) {
  const std::vector<float> logits{0.1f, 2.f, -1.f, 1.5f};
  SamplerOptions ban;
  ban.logit_bias = {{1, -std::numeric_limits<float>::infinity()}};
  EXPECT_EQ(Sampler(ban).sample(logits), 3);
  SamplerOptions promote;
  promote.logit_bias = {{2, 3.5f}};  // -1 + 3.5 = 2.5 > 2
  EXPECT_EQ(Sampler(promote).sample(logits), 2);
  promote.logit_bias = {{2, 2.5f}};  // 1.5 < 2
  EXPECT_EQ(Sampler(promote).sample(logits), 1);
}

TEST(Sampler, ABannedTokenIsNeverDrawnAndTheRestRenormalize) {
  // Probabilities 0.5, 0.3, 0.2; banning the 0.5 token leaves 0.6 / 0.4.
  SamplerOptions o = sampling(1.f, 26);
  o.logit_bias = {{0, -std::numeric_limits<float>::infinity()}};
  expect_frequencies(draw_counts(o, log_probs({0.5, 0.3, 0.2})), {0.0, 0.6, 0.4});
  // And with a finite bias: +log 2 on the 0.2 token doubles its odds: 0.5, 0.3, 0.4 over 1.2.
  o.logit_bias = {{2, static_cast<float>(std::log(2.0))}};
  expect_frequencies(draw_counts(o, log_probs({0.5, 0.3, 0.2})), {0.5 / 1.2, 0.3 / 1.2, 0.4 / 1.2});
}

TEST(Sampler, RepeatLastNIsTheWindow) {
  // Logits {1, 0.9, 0}; history 0, 2, 2; presence 0.5. Only a window that reaches back to the
  // first token penalises token 0 (to 0.5 < 0.9), so greedy moves to token 1.
  const std::vector<float> logits{1.f, 0.9f, 0.f};
  auto greedy_with_window = [&](int n) {
    SamplerOptions o;
    o.presence_penalty = 0.5f;
    o.repeat_last_n = n;
    Sampler s(o);
    for (TokenId t : {0, 2, 2})
      s.accept(t);
    return s.sample(logits);
  };
  EXPECT_EQ(greedy_with_window(2), 0);
  EXPECT_EQ(greedy_with_window(3), 1);
  EXPECT_EQ(greedy_with_window(64), 1);
  EXPECT_EQ(greedy_with_window(-1), 1);
  EXPECT_EQ(greedy_with_window(0), 0);  // no window: no penalties
}

TEST(Sampler, TheWindowHoldsTheLastNAcceptedTokens) {
  SamplerOptions o;
  o.repeat_last_n = 5;
  Sampler s(o);
  // After every token (the history is trimmed now and then, not at each one): the last five.
  for (TokenId t = 0; t < 100; ++t) {
    s.accept(t);
    std::vector<TokenId> expected;
    for (TokenId u = std::max(0, t - 4); u <= t; ++u)
      expected.push_back(u);
    const auto w = s.window();
    ASSERT_EQ(std::vector<TokenId>(w.begin(), w.end()), expected) << "after token " << t;
  }
  o.repeat_last_n = -1;
  Sampler all(o);
  for (TokenId t = 0; t < 100; ++t)
    all.accept(t);
  EXPECT_EQ(all.window().size(), 100u);
  o.repeat_last_n = 0;
  Sampler none(o);
  none.accept(1);
  EXPECT_TRUE(none.window().empty());
}

TEST(Sampler, TheWholeChainIsReproducibleFromTheSeed) {
  SamplerOptions o = sampling(1.5f, 31);
  o.top_k = 6;
  o.top_p = 0.9f;
  o.min_p = 0.05f;
  o.repeat_penalty = 1.3f;
  o.presence_penalty = 0.2f;
  o.frequency_penalty = 0.1f;
  o.logit_bias = {{2, -1.f}};
  const std::vector<float> logits{1.f, 1.1f, 0.9f, 1.05f, 0.95f, -0.5f, 0.3f, 0.7f};
  Sampler a(o), b(o);
  std::set<TokenId> seen;
  for (int i = 0; i < 300; ++i) {
    const TokenId x = a.sample(logits);
    ASSERT_EQ(x, b.sample(logits)) << "draw " << i;
    a.accept(x);
    b.accept(x);
    seen.insert(x);
  }
  EXPECT_GT(seen.size(), 3u);  // it does sample
  // Another seed gives another sequence.
  Sampler c(o);
  o.seed = 32;
  Sampler d(o);
  int differ = 0;
  for (int i = 0; i < 50; ++i)
    differ += c.sample(logits) != d.sample(logits);
  EXPECT_GT(differ, 0);
}

TEST(Sampler, ValidateRefusesEveryBadNewField) {
  auto bad = [](auto change) {
    SamplerOptions o;
    change(o);
    return !validate(o).is_ok();
  };
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(bad([&](SamplerOptions& o) { o.min_p = nan; }));
  EXPECT_TRUE(bad([](SamplerOptions& o) { o.min_p = -0.1f; }));
  EXPECT_TRUE(bad([](SamplerOptions& o) { o.min_p = 1.5f; }));
  EXPECT_TRUE(bad([&](SamplerOptions& o) { o.repeat_penalty = nan; }));
  EXPECT_TRUE(bad([](SamplerOptions& o) { o.repeat_penalty = 0.f; }));
  EXPECT_TRUE(bad([](SamplerOptions& o) { o.repeat_penalty = -1.f; }));
  EXPECT_TRUE(bad([&](SamplerOptions& o) { o.repeat_penalty = inf; }));
  EXPECT_TRUE(bad([](SamplerOptions& o) { o.repeat_last_n = -2; }));
  EXPECT_TRUE(bad([&](SamplerOptions& o) { o.presence_penalty = nan; }));
  EXPECT_TRUE(bad([&](SamplerOptions& o) { o.frequency_penalty = -inf; }));
  EXPECT_TRUE(bad([](SamplerOptions& o) { o.logit_bias = {{-1, 1.f}}; }));
  EXPECT_TRUE(bad([&](SamplerOptions& o) { o.logit_bias = {{3, nan}}; }));
  EXPECT_TRUE(bad([&](SamplerOptions& o) { o.logit_bias = {{3, inf}}; }));
  // Allowed: the edges and the meaningful negatives.
  EXPECT_FALSE(bad([](SamplerOptions& o) {
    o.min_p = 1.f;
    o.repeat_penalty = 0.5f;
    o.repeat_last_n = -1;
    o.presence_penalty = -2.f;
    o.frequency_penalty = 2.f;
  }));
  EXPECT_FALSE(bad([&](SamplerOptions& o) { o.logit_bias = {{3, -inf}, {4, -100.f}}; }));
  EXPECT_TRUE(validate(SamplerOptions{}).is_ok());
}

TEST(Sampler, ValidateWithTheVocabularyChecksBiasIds) {
  SamplerOptions o;
  o.logit_bias = {{9, 1.f}};
  EXPECT_TRUE(validate(o).is_ok());
  EXPECT_TRUE(validate(o, 10).is_ok());
  const Status s = validate(o, 9);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("token 9"), std::string::npos) << s.message();
  // Banning every token leaves nothing to sample.
  const float inf = std::numeric_limits<float>::infinity();
  o.logit_bias = {{0, -inf}, {1, -inf}, {2, -inf}};
  EXPECT_FALSE(validate(o, 3).is_ok());
  EXPECT_TRUE(validate(o, 4).is_ok());
}

}  // namespace
}  // namespace halyard::runtime
