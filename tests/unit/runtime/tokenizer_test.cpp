#include "halyard/runtime/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "default_tokenizer.h"
#include "gguf_writer.h"
#include "test_paths.h"

namespace halyard::runtime {
namespace {

using SmolLM2Tokenizer = testing::DefaultTokenizerTest;

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

// The byte-level BPE merge written the obvious way: rescan every adjacent pair, merge the
// lowest-ranked one (leftmost on ties), repeat. Quadratic, so for short words only; the
// tokenizer must give the same ids.
class ReferenceBpe {
 public:
  ReferenceBpe(const GgufFile& file, const Tokenizer& tok) : tok_(tok) {
    const auto* merges = file.find("tokenizer.ggml.merges")->as_array();
    for (std::size_t i = 0; i < merges->strings.size(); ++i)
      rank_.emplace(std::string(merges->strings[i]), static_cast<int>(i));
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      const int cp = printable ? b : next++;
      // Code points below 0x800: one or two UTF-8 bytes.
      byte_char_[b] = cp < 0x80
                          ? std::string(1, static_cast<char>(cp))
                          : std::string{static_cast<char>(0xc0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3f))};
    }
  }
  // `word` must be one pre-token.
  std::vector<TokenId> encode_word(const std::string& word) const {
    std::vector<std::string> symbols;
    for (unsigned char c : word)
      symbols.push_back(byte_char_[c]);
    while (symbols.size() > 1) {
      int best_rank = INT32_MAX;
      std::size_t best = 0;
      for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
        auto it = rank_.find(symbols[i] + " " + symbols[i + 1]);
        if (it != rank_.end() && it->second < best_rank) {
          best_rank = it->second;
          best = i;
        }
      }
      if (best_rank == INT32_MAX)
        break;
      symbols[best] += symbols[best + 1];
      symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    }
    std::vector<TokenId> ids;
    for (const auto& sym : symbols) {
      if (auto id = tok_.find(sym)) {
        ids.push_back(*id);
        continue;
      }
      for (std::size_t i = 0; i < sym.size();) {  // fall back to the bytes' characters
        const std::size_t n = (static_cast<unsigned char>(sym[i]) & 0x80) ? 2 : 1;
        if (auto id = tok_.find(sym.substr(i, n)))
          ids.push_back(*id);
        i += n;
      }
    }
    return ids;
  }

 private:
  const Tokenizer& tok_;
  std::map<std::string, int> rank_;
  std::string byte_char_[256];
};

std::string repeat(const std::string& unit, std::size_t times) {
  std::string s;
  for (std::size_t i = 0; i < times; ++i)
    s += unit;
  return s;
}

// 50 Han characters, some repeated, as Chinese text without spaces has them.
const std::vector<std::string>& cjk_chars() {
  static const std::vector<std::string> chars = [] {
    const std::string text =
        "\u4eca\u5929\u5929\u6c14\u5f88\u597d\u6211\u4eec\u53bb\u516c\u56ed\u6563\u6b65\u7136\u540e\u5403"
        "\u996d\u4e2d\u6587\u5b57\u7b26\u6d4b\u8bd5\u5927\u5bb6\u90fd\u559c\u6b22\u8fd9\u4e2a\u57ce\u5e02"
        "\u7684\u6625\u5929\u56e0\u4e3a\u82b1\u5f00\u4e86\u4eba\u4eec\u5728\u6cb3\u8fb9\u770b\u5b83\u5f88"
        "\u7f8e\u4e3d";
    std::vector<std::string> out;
    for (std::size_t i = 0; i < text.size(); i += 3)
      out.push_back(text.substr(i, 3));
    return out;
  }();
  return chars;
}

// Random single pre-tokens (letters only, an optional leading space: one GPT-2 \p{L}+ piece)
// from Latin, accented and Han letters, against the reference merge.
TEST_F(SmolLM2Tokenizer, MergesLikeTheReferenceOnRandomWords) {
  const ReferenceBpe ref(*file_, *tokenizer_);
  std::vector<std::string> alphabet;
  for (char c = 'a'; c <= 'z'; ++c)
    alphabet.emplace_back(1, c);
  for (const char* c : {"E", "T", "\xc3\xa9", "\xc3\xbc", "\xc3\x9f", "\xd0\xb4", "\xd0\xb0"})
    alphabet.emplace_back(c);
  for (const auto& c : cjk_chars())
    alphabet.push_back(c);
  std::mt19937 rng(1234);
  for (int n = 0; n < 400; ++n) {
    std::string word = rng() % 2 ? " " : "";
    const std::size_t len = 1 + rng() % 60;
    const std::size_t letters = rng() % 2 ? 6 : alphabet.size();  // few letters: many repeats
    for (std::size_t i = 0; i < len; ++i)
      word += alphabet[rng() % letters];
    ASSERT_EQ(tokenizer_->encode(word, false, false), ref.encode_word(word)) << "word: " << word;
  }
}

// The inputs that were quadratic: a long run of one letter and Chinese text without spaces.
// Medium lengths are checked against the reference; the long ones must round-trip.
TEST_F(SmolLM2Tokenizer, LongSingleWordsMergeLikeTheReference) {
  const ReferenceBpe ref(*file_, *tokenizer_);
  for (const std::string& word : {repeat("a", 1000), " " + repeat("a", 999), repeat("ab", 300)})
    EXPECT_EQ(tokenizer_->encode(word, false, false), ref.encode_word(word)) << word.size() << " bytes";
  std::string cjk;
  for (std::size_t i = 0; i < 400; ++i)
    cjk += cjk_chars()[(i * 7 + i / 50) % cjk_chars().size()];
  EXPECT_EQ(tokenizer_->encode(cjk, false, false), ref.encode_word(cjk));

  const std::string letters = repeat("a", 20000);
  const auto letter_ids = tokenizer_->encode(letters, false, false);
  EXPECT_LT(letter_ids.size(), letters.size() / 2);  // merged, not left as bytes
  EXPECT_EQ(tokenizer_->decode(letter_ids), letters);
  std::string han;
  for (std::size_t i = 0; i < 20000; ++i)
    han += cjk_chars()[(i * 13 + i / 97) % cjk_chars().size()];
  const auto han_ids = tokenizer_->encode(han, false, false);
  EXPECT_LT(han_ids.size(), han.size());
  EXPECT_EQ(tokenizer_->decode(han_ids), han);
}

// max_tokens: the result is the full encoding's first max_tokens + 1 tokens once it is longer,
// and the whole encoding when it is not.
TEST_F(SmolLM2Tokenizer, StopsOnceTheLimitIsPassed) {
  const std::string text = repeat("The quick brown fox <|im_end|> jumps. ", 200);
  const auto full = tokenizer_->encode(text, true, true);
  ASSERT_GT(full.size(), 100u);
  for (std::size_t limit : {std::size_t{0}, std::size_t{1}, std::size_t{5}, std::size_t{37}, full.size() - 1}) {
    const auto ids = tokenizer_->encode(text, true, true, limit);
    ASSERT_EQ(ids.size(), limit + 1) << "limit " << limit;
    EXPECT_TRUE(std::equal(ids.begin(), ids.end(), full.begin())) << "limit " << limit;
  }
  EXPECT_EQ(tokenizer_->encode(text, true, true, full.size()), full);
  EXPECT_EQ(tokenizer_->encode(text, true, true, full.size() + 10), full);
}

// The tiny vocabulary's ordinary pieces and their scores.
const std::vector<std::pair<std::string, float>>& tiny_spm_pieces() {
  static const std::vector<std::pair<std::string, float>> pieces{{"\xe2\x96\x81", -1},
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
  return pieces;
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
  const auto& pieces = tiny_spm_pieces();
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

// SentencePiece merging the obvious way (rescan, highest score, leftmost on ties) on the tiny
// vocabulary's letters: the heap-based merge must give the same tokens.
TEST(SpmTokenizer, MergesLikeTheReference) {
  auto t = tiny_spm();
  std::map<std::string, float> score(tiny_spm_pieces().begin(), tiny_spm_pieces().end());
  auto reference = [&](const std::string& text) {
    std::vector<std::string> symbols{"\xe2\x96\x81"};
    for (char c : text)
      symbols.push_back(c == ' ' ? "\xe2\x96\x81" : std::string(1, c));
    while (symbols.size() > 1) {
      float best_score = 0.f;
      std::ptrdiff_t best = -1;
      for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
        auto it = score.find(symbols[i] + symbols[i + 1]);
        if (it == score.end())
          continue;
        if (best < 0 || it->second > best_score) {
          best_score = it->second;
          best = static_cast<std::ptrdiff_t>(i);
        }
      }
      if (best < 0)
        break;
      symbols[static_cast<std::size_t>(best)] += symbols[static_cast<std::size_t>(best) + 1];
      symbols.erase(symbols.begin() + best + 1);
    }
    std::vector<TokenId> ids;
    for (const auto& s : symbols)
      ids.push_back(t->find(s).value());
    return ids;
  };
  std::mt19937 rng(7);
  const std::string letters = "helowrd ";
  for (int n = 0; n < 300; ++n) {
    std::string text;
    const std::size_t len = 1 + rng() % 40;
    for (std::size_t i = 0; i < len; ++i)
      text += letters[rng() % letters.size()];
    ASSERT_EQ(t->encode(text, false, false), reference(text)) << "text: '" << text << "'";
  }
  const std::string long_text = repeat("hello world ", 5000);
  EXPECT_EQ(t->decode(t->encode(long_text, false, false)), long_text);
  const auto limited = t->encode(long_text, false, false, 10);
  EXPECT_EQ(limited.size(), 11u);
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
