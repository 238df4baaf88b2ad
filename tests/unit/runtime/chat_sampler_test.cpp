#include <gtest/gtest.h>

#include <set>

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

TEST(Sampler, TopPKeepsOnlyTheNucleus) {
  // softmax of {10, 0, 0, 0} puts > 99.9% on token 0: top-p 0.9 keeps only it.
  Sampler s(SamplerOptions{1.f, 0, 0.9f, 3});
  const std::vector<float> logits{10.f, 0.f, 0.f, 0.f};
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(s.sample(logits), 0);
}

}  // namespace
}  // namespace halyard::runtime
