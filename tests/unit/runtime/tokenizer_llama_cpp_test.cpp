// Halyard's tokenizers against llama.cpp's on real vocabularies:
//  - the Gemma 3 270M file (scripts/fetch-model.sh gemma3-270m): token ids of a text set as
//    llama.cpp's llama-tokenize gave them (tests/data/llama_cpp_reference/tokenizer_gemma3_270m.json,
//    recorded by scripts/record-tokenizer-reference.py);
//  - the DeepSeek-R1-Distill-Qwen-7B header (scripts/fetch-model.sh deepseek-r1-qwen-header: the
//    first 4% of the file, tensor data cut off), opened header-only: the same for its qwen2 BPE
//    vocabulary and pre-tokenizer deepseek-r1-qwen (tokenizer_deepseek_r1_qwen.json);
//  - llama.cpp's own tokenizer tests: the vocab-only GGUFs and their .inp/.out files in the
//    llama-cpp-python 0.3.36 source distribution (scripts/fetch-llama-cpp-sdist.sh unpacks them;
//    HALYARD_LLAMA_CPP_SRC names the unpacked root), read at test time and never committed.
// Each skips, saying how to get its data, when that data is not here.
// Also the pre-tokenizer choice itself on tiny vocabularies: qwen2's digit split, the error for
// an unknown tokenizer.ggml.pre and --force-gpt2-split.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gguf_writer.h"
#include "halyard/runtime/tokenizer.h"
#include "test_paths.h"

namespace halyard::runtime {
namespace {

std::string cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return std::string(x) + "/halyard";
  return std::string(std::getenv("HOME") ? std::getenv("HOME") : ".") + "/.cache/halyard";
}

std::string hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string ids_text(const std::vector<TokenId>& ids) {
  std::ostringstream s;
  for (std::size_t i = 0; i < ids.size(); ++i)
    s << (i ? " " : "") << ids[i];
  return s.str();
}

// ---- Tiny byte-level BPE vocabularies --------------------------------------------------------

// GPT-2's printable character for each byte (as the tokenizer maps them).
std::string gpt2_char(int b) {
  static std::vector<std::string> chars = [] {
    std::vector<std::string> out(256);
    int next = 256;
    for (int i = 0; i < 256; ++i) {
      const bool printable = (i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255);
      const unsigned cp = printable ? static_cast<unsigned>(i) : static_cast<unsigned>(next++);
      std::string s;
      if (cp < 0x80) {
        s += static_cast<char>(cp);
      } else {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
      }
      out[static_cast<std::size_t>(i)] = s;
    }
    return out;
  }();
  return chars[static_cast<std::size_t>(b)];
}

// Every byte, then "12" with the merge "1 2": whether "12" comes out whole tells whether the
// pre-tokenizer kept the two digits in one piece.
Result<std::unique_ptr<Tokenizer>> tiny_bpe(const std::string& pre, bool force_gpt2_split = false) {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b)
    tokens.push_back(gpt2_char(b));
  tokens.push_back("12");
  testing::GgufWriter w;
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", pre);
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_string_array("tokenizer.ggml.merges", {"1 2"});
  auto f = GgufFile::from_bytes(w.bytes());
  EXPECT_TRUE(f.is_ok()) << f.status().to_string();
  TokenizerOptions options;
  options.force_gpt2_split = force_gpt2_split;
  return Tokenizer::from_gguf(*f.value(), options);
}

TEST(PreTokenizer, Qwen2AndDeepSeekR1QwenSplitEveryDigitLlama3GroupsThree) {
  for (const char* pre : {"qwen2", "deepseek-r1-qwen"}) {
    auto t = tiny_bpe(pre);
    ASSERT_TRUE(t.is_ok()) << pre << ": " << t.status().to_string();
    EXPECT_EQ(t.value()->encode("12", false, false), (std::vector<TokenId>{'1', '2'})) << pre;
  }
  for (const char* pre : {"llama-bpe", "llama3", "gpt2", "gpt-2"}) {
    auto t = tiny_bpe(pre);
    ASSERT_TRUE(t.is_ok()) << pre << ": " << t.status().to_string();
    EXPECT_EQ(t.value()->encode("12", false, false), (std::vector<TokenId>{256})) << pre;
  }
}

TEST(PreTokenizer, UnknownNameIsAnErrorListingTheKnownOnes) {
  auto t = tiny_bpe("mystery-bpe");
  ASSERT_FALSE(t.is_ok());
  EXPECT_EQ(t.status().code(), StatusCode::kUnimplemented);
  const std::string message = t.status().message();
  EXPECT_NE(message.find("unknown pre-tokenizer 'mystery-bpe'"), std::string::npos) << message;
  for (const char* known : {"llama-bpe", "qwen2", "deepseek-r1-qwen", "smollm"})
    EXPECT_NE(message.find(known), std::string::npos) << known << " missing from: " << message;
  EXPECT_NE(message.find("--force-gpt2-split"), std::string::npos) << message;
}

TEST(PreTokenizer, ForcedGpt2SplitLoadsAnUnknownName) {
  auto t = tiny_bpe("mystery-bpe", true);
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  // GPT-2 keeps a run of digits in one piece, so the merge applies.
  EXPECT_EQ(t.value()->encode("12", false, false), (std::vector<TokenId>{256}));
}

// ---- A tiny SentencePiece vocabulary with a user-defined and a control token -----------------

std::unique_ptr<Tokenizer> tiny_spm_with_specials() {
  std::vector<std::string> tokens{"<unk>", "<s>", "<start_of_turn>", "\n\n",           "\xe2\x96\x81",
                                  "h",     "i",   "\xe2\x96\x81h",   "\xe2\x96\x81hi", "\n"};
  std::vector<std::int32_t> types{2, 3, 3, 4, 1, 1, 1, 1, 1, 1};
  std::vector<float> scores{0, 0, 0, 0, -1, -2, -2, -3, -4, -5};
  testing::GgufWriter w;
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_i32_array("tokenizer.ggml.token_type", types);
  w.add_f32_array("tokenizer.ggml.scores", scores);
  w.add_u32("tokenizer.ggml.bos_token_id", 1);
  auto f = GgufFile::from_bytes(w.bytes());
  EXPECT_TRUE(f.is_ok()) << f.status().to_string();
  auto t = Tokenizer::from_gguf(*f.value());
  EXPECT_TRUE(t.is_ok()) << t.status().to_string();
  return std::move(t).value();
}

// As llama.cpp (and Hugging Face's tokenizers) do: a user-defined token is cut out of the text
// even when special tokens are not parsed; a control token only when they are.
TEST(SpmSpecialTokens, UserDefinedTokensAreMatchedEvenWithoutParseSpecial) {
  auto t = tiny_spm_with_specials();
  // "hi", "\n\n" (user-defined, 3), "hi": the second "hi" follows a special token, so it gets
  // the space prefix too.
  EXPECT_EQ(t->encode("hi\n\nhi", false, false), (std::vector<TokenId>{8, 3, 8}));
  // Unparsed, the control token's text is ordinary text (here: bytes the vocabulary lacks).
  const auto unparsed = t->encode("<start_of_turn>hi", false, false);
  EXPECT_EQ(std::count(unparsed.begin(), unparsed.end(), 2), 0) << ids_text(unparsed);
}

// llama.cpp puts SentencePiece's space prefix before the text after every special token, not
// only before the first text.
TEST(SpmSpecialTokens, SpacePrefixAfterEachSpecialToken) {
  auto t = tiny_spm_with_specials();
  EXPECT_EQ(t->encode("<start_of_turn>hi", false, true), (std::vector<TokenId>{2, 8}));
  EXPECT_EQ(t->encode("hi<start_of_turn>hi", true, true), (std::vector<TokenId>{1, 8, 2, 8}));
}

// ---- Gemma 3 270M against llama.cpp ------------------------------------------------------------

std::string gemma3_path() {
  if (const char* p = std::getenv("HALYARD_TEST_GEMMA3_MODEL"); p && *p)
    return p;
  return cache_dir() + "/models/gemma-3-270m-q4_k_m.gguf";
}

// Every recorded case of `json_name` (scripts/record-tokenizer-reference.py) on the tokenizer of
// the GGUF at `path`.
void expect_recorded_ids(const std::string& path, const std::string& json_name,
                         GgufTensorData data = GgufTensorData::kRequired) {
  auto file = GgufFile::open(path, data);
  ASSERT_TRUE(file.is_ok()) << file.status().to_string();
  // Only the tokenizer: whether the architecture loads is not what this is about.
  auto tok = Tokenizer::from_gguf(*file.value());
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  std::ifstream in(testing::data_dir() + "/llama_cpp_reference/" + json_name);
  ASSERT_TRUE(in) << "missing tests/data/llama_cpp_reference/" << json_name;
  const auto data = nlohmann::json::parse(in);
  int checked = 0;
  for (const auto& c : data["cases"]) {
    const std::string text = c["text"];
    const bool add_special = c["add_special"], parse_special = c["parse_special"];
    const auto expected = c["ids"].get<std::vector<TokenId>>();
    const auto ids = tok.value()->encode(text, add_special, parse_special);
    EXPECT_EQ(ids_text(ids), ids_text(expected))
        << "text (hex) " << hex(text) << " add_special " << add_special << " parse_special " << parse_special;
    if (!parse_special) {
      EXPECT_EQ(tok.value()->decode(ids), text) << "decode, text (hex) " << hex(text);
    }
    ++checked;
  }
  EXPECT_GE(checked, 60);
}

TEST(Gemma3Tokenizer, MatchesLlamaCpp) {
  const std::string path = gemma3_path();
  if (!std::filesystem::exists(path)) {
    GTEST_SKIP() << "the Gemma 3 270M file is not at " << path
                 << ": run scripts/fetch-model.sh gemma3-270m or set HALYARD_TEST_GEMMA3_MODEL";
  }
  expect_recorded_ids(path, "tokenizer_gemma3_270m.json");
}

// ---- The DeepSeek-R1-Distill-Qwen-7B header against llama.cpp --------------------------------

std::string deepseek_header_path() {
  if (const char* p = std::getenv("HALYARD_TEST_DEEPSEEK_HEADER"); p && *p)
    return p;
  return cache_dir() + "/models/deepseek-r1-distill-qwen-7b-header.gguf";
}

std::string deepseek_header_missing(const std::string& path) {
  return "the DeepSeek-R1-Distill-Qwen header is not at " + path +
         ": run scripts/fetch-model.sh deepseek-r1-qwen-header or set HALYARD_TEST_DEEPSEEK_HEADER";
}

TEST(DeepSeekR1QwenHeader, TokenizerMatchesLlamaCpp) {
  const std::string path = deepseek_header_path();
  if (!std::filesystem::exists(path))
    GTEST_SKIP() << deepseek_header_missing(path);
  auto file = GgufFile::open(path, GgufTensorData::kHeaderOnly);
  ASSERT_TRUE(file.is_ok()) << file.status().to_string();
  // It is the truncated part the test is about, not a whole file that happens to be there.
  EXPECT_FALSE(file.value()->tensor_data_complete());
  EXPECT_EQ(file.value()->get_string("tokenizer.ggml.pre").value_or(""), "deepseek-r1-qwen");
  expect_recorded_ids(path, "tokenizer_deepseek_r1_qwen.json", GgufTensorData::kHeaderOnly);
}

// Opened as a model is (Model::load opens with kRequired), the cut-off file is a clear error.
TEST(DeepSeekR1QwenHeader, OpeningItAsAModelSaysTheFileIsTruncated) {
  const std::string path = deepseek_header_path();
  if (!std::filesystem::exists(path))
    GTEST_SKIP() << deepseek_header_missing(path);
  auto file = GgufFile::open(path);
  ASSERT_FALSE(file.is_ok());
  EXPECT_EQ(file.status().code(), StatusCode::kDataLoss);
  const std::string message = file.status().message();
  EXPECT_NE(message.find("lies past the end of the file; the file is truncated"), std::string::npos) << message;
  EXPECT_NE(message.find(path), std::string::npos) << message;
}

// ---- llama.cpp's own tokenizer tests ---------------------------------------------------------

std::string llama_cpp_models_dir() {
  std::string root;
  if (const char* p = std::getenv("HALYARD_LLAMA_CPP_SRC"); p && *p) {
    root = p;
  } else {
    root = cache_dir() + "/llama_cpp_python-0.3.36";
  }
  return root + "/vendor/llama.cpp/models";
}

struct VocabCase {
  std::string text;
  std::vector<TokenId> ids;
};

// The .inp file holds the texts separated by "\n__ggml_vocab_test__\n"; the .out file one line
// of space-separated ids per text (llama.cpp's tests/test-tokenizer-0.cpp reads them so).
std::vector<VocabCase> read_vocab_cases(const std::string& stem) {
  std::ifstream inp(stem + ".inp", std::ios::binary), out(stem + ".out");
  std::stringstream raw;
  raw << inp.rdbuf();
  const std::string all = raw.str();
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (std::size_t pos = 0; pos < all.size();) {
    const std::size_t next = all.find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(all.substr(pos));
      break;
    }
    texts.push_back(all.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<VocabCase> cases;
  std::string line;
  for (const auto& text : texts) {
    if (!std::getline(out, line))
      break;
    VocabCase c{text, {}};
    std::istringstream ids(line);
    for (TokenId id; ids >> id;)
      c.ids.push_back(id);
    cases.push_back(std::move(c));
  }
  EXPECT_EQ(cases.size(), texts.size()) << stem << ": .inp and .out hold different numbers of tests";
  return cases;
}

class LlamaCppVocab : public ::testing::TestWithParam<const char*> {};

// The vocabularies whose tokenizer Halyard claims: every case of llama.cpp's own test matches.
TEST_P(LlamaCppVocab, MatchesLlamaCppsOwnTests) {
  const std::string stem = llama_cpp_models_dir() + "/ggml-vocab-" + GetParam() + ".gguf";
  if (!std::filesystem::exists(stem) || !std::filesystem::exists(stem + ".inp")) {
    GTEST_SKIP() << "llama.cpp's vocabulary tests are not at " << llama_cpp_models_dir()
                 << ": run scripts/fetch-llama-cpp-sdist.sh or set HALYARD_LLAMA_CPP_SRC to its output";
  }
  auto file = GgufFile::open(stem);
  ASSERT_TRUE(file.is_ok()) << file.status().to_string();
  auto tok = Tokenizer::from_gguf(*file.value());
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  const auto cases = read_vocab_cases(stem);
  ASSERT_GT(cases.size(), 10u);
  int mismatches = 0;
  for (const auto& c : cases) {
    // llama.cpp's test tokenizes with add_special = false and parse_special = false.
    const auto ids = tok.value()->encode(c.text, false, false);
    if (ids != c.ids) {
      ++mismatches;
      ADD_FAILURE() << GetParam() << ": text (hex) " << hex(c.text) << "\n  halyard:   " << ids_text(ids)
                    << "\n  llama.cpp: " << ids_text(c.ids);
    }
  }
  std::printf("%s: %zu cases, %d differ\n", GetParam(), cases.size(), mismatches);
}

INSTANTIATE_TEST_SUITE_P(Claimed, LlamaCppVocab,
                         ::testing::Values("gpt-2", "llama-bpe", "qwen2", "starcoder", "refact", "command-r", "mpt",
                                           "falcon", "llama-spm", "phi-3"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (c == '-')
                               c = '_';
                           return name;
                         });

// The byte-level BPE vocabularies whose split Halyard does not have: a clear load error, never
// quietly different tokens.
TEST(LlamaCppVocabUnknownSplit, IsAClearLoadError) {
  const std::string dir = llama_cpp_models_dir();
  if (!std::filesystem::exists(dir + "/ggml-vocab-qwen35.gguf")) {
    GTEST_SKIP() << "llama.cpp's vocabulary tests are not at " << dir
                 << ": run scripts/fetch-llama-cpp-sdist.sh or set HALYARD_LLAMA_CPP_SRC to its output";
  }
  for (const char* name : {"deepseek-coder", "deepseek-llm", "qwen35"}) {
    auto file = GgufFile::open(dir + "/ggml-vocab-" + name + ".gguf");
    ASSERT_TRUE(file.is_ok()) << name << ": " << file.status().to_string();
    auto tok = Tokenizer::from_gguf(*file.value());
    ASSERT_FALSE(tok.is_ok()) << name;
    EXPECT_NE(tok.status().message().find("unknown pre-tokenizer"), std::string::npos)
        << name << ": " << tok.status().message();
  }
}

// GPT-NeoX's vocabulary has no tokenizer.ggml.pre, so llama.cpp (and Halyard) split it by the
// default expressions; llama.cpp ships no test for it, so its ids for the same text set as
// Gemma's were recorded (tokenizer_gpt_neox_default.json).
TEST(DefaultPreTokenizer, GptNeoxVocabMatchesLlamaCpp) {
  const std::string path = llama_cpp_models_dir() + "/ggml-vocab-gpt-neox.gguf";
  if (!std::filesystem::exists(path)) {
    GTEST_SKIP() << "llama.cpp's vocabularies are not at " << llama_cpp_models_dir()
                 << ": run scripts/fetch-llama-cpp-sdist.sh or set HALYARD_LLAMA_CPP_SRC to its output";
  }
  expect_recorded_ids(path, "tokenizer_gpt_neox_default.json");
}

}  // namespace
}  // namespace halyard::runtime
