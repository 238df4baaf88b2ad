#include "halyard/runtime/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "gguf_writer.h"
#include "test_paths.h"

namespace halyard::runtime {
namespace {

class SmolLM2Tokenizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = testing::default_model_path();
    if (!std::filesystem::exists(path))
      return;
    auto f = GgufFile::open(path);
    ASSERT_TRUE(f.is_ok()) << f.status().to_string();
    file_ = std::move(f).value().release();
    auto t = Tokenizer::from_gguf(*file_);
    ASSERT_TRUE(t.is_ok()) << t.status().to_string();
    tokenizer_ = std::move(t).value().release();
  }
  void SetUp() override { HALYARD_REQUIRE_MODEL(testing::default_model_path()); }
  static inline GgufFile* file_ = nullptr;
  static inline Tokenizer* tokenizer_ = nullptr;
};

nlohmann::json load_json(const std::string& name) {
  std::ifstream in(testing::data_dir() + "/llama_cpp_reference/" + name);
  return nlohmann::json::parse(in);
}

// Token ids equal llama.cpp's for the same GGUF (recorded by scripts/record-llama-cpp-reference.py).
TEST_F(SmolLM2Tokenizer, MatchesLlamaCpp) {
  const auto data = load_json("tokenizer.json");
  ASSERT_GE(data["cases"].size(), 20u);
  for (const auto& c : data["cases"]) {
    const std::string text = c["text"];
    const auto expected = c["ids"].get<std::vector<TokenId>>();
    EXPECT_EQ(tokenizer_->encode(text, false, true), expected) << "text: " << text;
  }
}

TEST_F(SmolLM2Tokenizer, DecodeInvertsEncode) {
  const auto data = load_json("tokenizer.json");
  for (const auto& c : data["cases"]) {
    const std::string text = c["text"];
    EXPECT_EQ(tokenizer_->decode(tokenizer_->encode(text, false, true)), text);
    EXPECT_EQ(tokenizer_->decode(tokenizer_->encode(text, false, false)), text);
  }
}

// Found by tests/fuzz/tokenizer_fuzz: SmolLM2's vocabulary has no token for the control byte
// 0x13. It is dropped (llama.cpp's BPE drops it the same way) instead of failing or emitting a
// wrong token; everything around it survives.
TEST_F(SmolLM2Tokenizer, BytesWithoutATokenAreDropped) {
  const auto ids = tokenizer_->encode("H\x13llo", false, false);
  EXPECT_EQ(tokenizer_->decode(ids), "Hllo");
  for (TokenId id : ids)
    EXPECT_LT(static_cast<std::size_t>(id), tokenizer_->vocab_size());
}

TEST_F(SmolLM2Tokenizer, SpecialTokensOnlyWhenAsked) {
  const auto with = tokenizer_->encode("<|im_start|>user", false, true);
  ASSERT_EQ(with.size(), 2u);
  EXPECT_EQ(with[0], 1);
  const auto without = tokenizer_->encode("<|im_start|>user", false, false);
  EXPECT_GT(without.size(), 2u);
  EXPECT_TRUE(tokenizer_->is_end_of_generation(*tokenizer_->find("<|im_end|>")));
  EXPECT_TRUE(tokenizer_->is_end_of_generation(tokenizer_->eos()));
  EXPECT_FALSE(tokenizer_->add_bos());  // SmolLM2 asks for no BOS
}

// A tiny SentencePiece-style vocabulary written into a GGUF by the test.
std::unique_ptr<Tokenizer> tiny_spm() {
  std::vector<std::string> tokens{"<unk>", "<s>", "</s>"};
  std::vector<std::int32_t> types{2, 3, 3};
  std::vector<float> scores{0, 0, 0};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    tokens.emplace_back(name);
    types.push_back(6);
    scores.push_back(0);
  }
  const std::vector<std::pair<std::string, float>> pieces{{"\xe2\x96\x81", -1},
                                                          {"h", -2},
                                                          {"e", -2},
                                                          {"l", -2},
                                                          {"o", -2},
                                                          {"w", -2},
                                                          {"r", -2},
                                                          {"d", -2},
                                                          {"\xe2\x96\x81h", -3},
                                                          {"ll", -4},
                                                          {"\xe2\x96\x81he", -5},
                                                          {"llo", -6},
                                                          {"\xe2\x96\x81hello", -7},
                                                          {"or", -8},
                                                          {"\xe2\x96\x81w", -9},
                                                          {"\xe2\x96\x81wor", -10},
                                                          {"ld", -11},
                                                          {"\xe2\x96\x81world", -12}};
  for (const auto& [p, s] : pieces) {
    tokens.push_back(p);
    types.push_back(1);
    scores.push_back(s);
  }
  testing::GgufWriter w;
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_i32_array("tokenizer.ggml.token_type", types);
  w.add_f32_array("tokenizer.ggml.scores", scores);
  w.add_u32("tokenizer.ggml.bos_token_id", 1);
  w.add_u32("tokenizer.ggml.eos_token_id", 2);
  auto f = GgufFile::from_bytes(w.bytes());
  EXPECT_TRUE(f.is_ok()) << f.status().to_string();
  auto t = Tokenizer::from_gguf(*f.value());
  EXPECT_TRUE(t.is_ok()) << t.status().to_string();
  return std::move(t).value();
}

TEST(SpmTokenizer, MergesByScoreWithLeadingSpace) {
  auto t = tiny_spm();
  const auto ids = t->encode("hello world", true, false);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], 1);  // BOS: SentencePiece models add it by default
  EXPECT_EQ(t->token_text(ids[1]), "\xe2\x96\x81hello");
  EXPECT_EQ(t->token_text(ids[2]), "\xe2\x96\x81world");
  EXPECT_EQ(t->decode(ids, false), "hello world");
}

TEST(SpmTokenizer, UnknownCharactersFallBackToBytes) {
  auto t = tiny_spm();
  const auto ids = t->encode("h\xc3\xa9", false, false);  // "hé": é is not in the vocabulary
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(t->token_text(ids[0]), "\xe2\x96\x81h");
  EXPECT_EQ(t->token_text(ids[1]), "<0xC3>");
  EXPECT_EQ(t->token_text(ids[2]), "<0xA9>");
  EXPECT_EQ(t->decode(ids), "h\xc3\xa9");
}

TEST(SpmTokenizer, ParsesSpecialTokens) {
  auto t = tiny_spm();
  const auto ids = t->encode("hello</s>", false, true);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[1], 2);
}

TEST(Tokenizer, UnknownTokenizerModelIsAClearError) {
  testing::GgufWriter w;
  w.add_string("tokenizer.ggml.model", "bert");
  w.add_string_array("tokenizer.ggml.tokens", {"a"});
  auto f = GgufFile::from_bytes(w.bytes());
  ASSERT_TRUE(f.is_ok());
  auto t = Tokenizer::from_gguf(*f.value());
  ASSERT_FALSE(t.is_ok());
  EXPECT_NE(t.status().message().find("'bert'"), std::string::npos);
}

}  // namespace
}  // namespace halyard::runtime
