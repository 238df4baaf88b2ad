// What the model loader says about files it cannot run: the architecture first, then every
// unsupported tensor dtype in one message.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <variant>

#include "gguf_writer.h"
#include "halyard/runtime/model.h"
#include "halyard/runtime/session.h"
#include "test_registry.h"

namespace halyard::runtime {
namespace {

using testing::GgufWriter;

// Two K-quant blocks of zeros: q4_k blocks are 144 bytes, q6_k 210, 256 elements each.
void add_kquant(GgufWriter& w, const std::string& name, std::uint32_t type_id) {
  w.add_raw_tensor(name, {256, 2}, type_id, std::vector<std::uint8_t>(type_id == 12 ? 2 * 144 : 2 * 210));
}

// A tensor of a dtype Halyard does not read (iq2_xxs, iq3_s: lattice codebook formats): its
// bytes are not validated, so any will do.
void add_unsupported(GgufWriter& w, const std::string& name, std::uint32_t type_id) {
  w.add_raw_tensor(name, {256, 2}, type_id, std::vector<std::uint8_t>(2 * 136));
}

std::unique_ptr<GgufFile> parse(const GgufWriter& w) {
  auto f = GgufFile::from_bytes(w.bytes());
  EXPECT_TRUE(f.is_ok()) << f.status().to_string();
  return f.is_ok() ? std::move(f).value() : nullptr;
}

TEST(ModelConfig, ArchitectureIsCheckedBeforeDtypes) {
  GgufWriter w;
  w.add_string("general.architecture", "mamba");
  add_kquant(w, "blk.0.ffn_down.weight", 14);
  auto f = parse(w);
  ASSERT_NE(f, nullptr);
  auto c = LlamaConfig::from_gguf(*f);
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(c.status().message().find("architecture 'mamba' is not supported"), std::string::npos)
      << c.status().to_string();
  EXPECT_EQ(c.status().message().find("dtype"), std::string::npos) << c.status().to_string();
}

TEST(ModelConfig, EveryUnsupportedDtypeIsNamedWithItsCount) {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  static const float norm[256] = {};
  w.add_tensor("output_norm.weight", TensorDesc::make(DType::kF32, 256), norm);
  for (int i = 0; i < 27; ++i)
    add_unsupported(w, "iq2xxs." + std::to_string(i), 16);
  for (int i = 0; i < 9; ++i)
    add_unsupported(w, "iq3s." + std::to_string(i), 21);
  add_kquant(w, "q4k", 12);  // supported: not named
  auto f = parse(w);
  ASSERT_NE(f, nullptr);
  auto c = LlamaConfig::from_gguf(*f);
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(c.status().message(),
            "unsupported tensor dtypes: iq2_xxs (id 16) x 27 tensors, iq3_s (id 21) x 9 tensors; "
            "supported: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl, "
            "iq4_xs");
}

// The K-quants (Q4_K_M files carry q4_k and q6_k) and the 5-bit formats pass the dtype check:
// the config then fails on the first missing metadata key, not on a dtype.
TEST(ModelConfig, KQuantAndQ5TensorsAreAccepted) {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  add_kquant(w, "blk.0.attn_q.weight", 12);
  add_kquant(w, "blk.0.ffn_down.weight", 14);
  w.add_raw_tensor("blk.0.attn_k.weight", {64, 2}, 6, std::vector<std::uint8_t>(2 * 2 * 22));  // q5_0
  w.add_raw_tensor("blk.0.attn_v.weight", {64, 2}, 7, std::vector<std::uint8_t>(2 * 2 * 24));  // q5_1
  auto f = parse(w);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->find_tensor("blk.0.attn_q.weight")->desc.dtype, DType::kQ4_K);
  EXPECT_EQ(f->find_tensor("blk.0.attn_q.weight")->desc.bytes(), 2u * 144u);
  EXPECT_EQ(f->find_tensor("blk.0.ffn_down.weight")->desc.dtype, DType::kQ6_K);
  EXPECT_EQ(f->find_tensor("blk.0.attn_k.weight")->desc.dtype, DType::kQ5_0);
  auto c = LlamaConfig::from_gguf(*f);
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), StatusCode::kDataLoss) << c.status().to_string();
  EXPECT_EQ(c.status().message().find("dtype"), std::string::npos) << c.status().to_string();
}

// A K-quant row must be whole super-blocks of 256: a q4_k tensor 128 wide is corrupt.
TEST(ModelConfig, KQuantRowOfHalfASuperBlockIsRefused) {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_raw_tensor("blk.0.attn_q.weight", {128, 2}, 12, std::vector<std::uint8_t>(144));
  auto f = GgufFile::from_bytes(w.bytes());
  ASSERT_FALSE(f.is_ok());
  EXPECT_EQ(f.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(f.status().message().find("row length is not a multiple of its q4_k block"), std::string::npos)
      << f.status().to_string();
}

TEST(ModelConfig, OneUnsupportedTensorIsSingular) {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_raw_tensor("ids", {4}, 26, std::vector<std::uint8_t>(16));  // i32: not a weight dtype
  auto f = parse(w);
  ASSERT_NE(f, nullptr);
  auto c = LlamaConfig::from_gguf(*f);
  ASSERT_FALSE(c.is_ok());
  EXPECT_NE(c.status().message().find("i32 (id 26) x 1 tensor;"), std::string::npos) << c.status().to_string();
}

// A corrupt file with a thousand bogus dtype ids gets a message of bounded length.
TEST(ModelConfig, ManyUnknownDtypesAreSummarised) {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  for (std::uint32_t i = 0; i < 1000; ++i)
    w.add_raw_tensor("t" + std::to_string(i), {4}, 1000 + i, {});
  auto f = parse(w);
  ASSERT_NE(f, nullptr);
  auto c = LlamaConfig::from_gguf(*f);
  ASSERT_FALSE(c.is_ok());
  EXPECT_NE(c.status().message().find("unknown (id 1000) x 1 tensor, "), std::string::npos) << c.status().to_string();
  EXPECT_NE(c.status().message().find(", and 988 more; supported:"), std::string::npos) << c.status().to_string();
  EXPECT_LT(c.status().message().size(), 600u);
}

// A llama file with only what LlamaConfig::from_gguf reads: the hyper-parameters (editable
// before writing) and a token_embd.weight of 8 rows, optionally an output.weight.
struct LlamaFile {
  std::map<std::string, std::variant<std::int64_t, float>> keys = {
      {"llama.block_count", std::int64_t{2}},
      {"llama.embedding_length", std::int64_t{64}},
      {"llama.feed_forward_length", std::int64_t{96}},
      {"llama.attention.head_count", std::int64_t{4}},
      {"llama.attention.head_count_kv", std::int64_t{2}},
      {"llama.context_length", std::int64_t{512}},
  };
  bool separate_output = false;
  // Another architecture's file: the keys' "llama." prefix becomes "<architecture>.".
  std::string architecture = "llama";

  std::unique_ptr<GgufFile> gguf() const {
    GgufWriter w;
    w.add_string("general.architecture", architecture);
    for (const auto& [llama_key, value] : keys) {
      const std::string key =
          llama_key.starts_with("llama.") ? architecture + llama_key.substr(std::string("llama").size()) : llama_key;
      if (const auto* i = std::get_if<std::int64_t>(&value)) {
        if (*i < 0)
          w.add_i32(key, static_cast<std::int32_t>(*i));
        else
          w.add_u32(key, static_cast<std::uint32_t>(*i));
      } else {
        w.add_f32(key, std::get<float>(value));
      }
    }
    static const std::vector<float> embd(64 * 8, 0.5f);
    w.add_tensor("token_embd.weight", TensorDesc::make(DType::kF32, 64, 8), embd.data());
    if (separate_output)
      w.add_tensor("output.weight", TensorDesc::make(DType::kF32, 64, 8), embd.data());
    return parse(w);
  }
  Result<LlamaConfig> config() const {
    auto f = gguf();
    if (!f)
      return internal_error("the test file did not parse");
    return LlamaConfig::from_gguf(*f);
  }
};

TEST(ModelConfig, ReadsTheHyperParameters) {
  LlamaFile file;
  file.keys["llama.rope.freq_base"] = 500000.f;
  file.keys["llama.attention.layer_norm_rms_epsilon"] = 1e-6f;
  file.keys["llama.rope.dimension_count"] = std::int64_t{8};
  auto c = file.config();
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->architecture, "llama");
  EXPECT_EQ(c->n_layers, 2);
  EXPECT_EQ(c->d_model, 64);
  EXPECT_EQ(c->d_ff, 96);
  EXPECT_EQ(c->n_heads, 4);
  EXPECT_EQ(c->n_kv_heads, 2);
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->rope_dims, 8);
  EXPECT_EQ(c->context_train, 512);
  EXPECT_EQ(c->vocab_size, 8);
  EXPECT_EQ(c->rope_base, 500000.f);
  EXPECT_EQ(c->rms_eps, 1e-6f);
}

TEST(ModelConfig, DefaultsWhereTheFileIsSilent) {
  LlamaFile file;
  file.keys.erase("llama.attention.head_count_kv");
  auto c = file.config();
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->n_kv_heads, 4);  // no grouped-query attention
  EXPECT_EQ(c->rope_dims, 16);  // the whole head
  EXPECT_EQ(c->rope_base, 10000.f);
  EXPECT_EQ(c->rms_eps, 1e-5f);
}

// llama rotates adjacent pairs (ggml's "normal" RoPE); qwen2, qwen3 and gemma3 (arch_test.cpp)
// rotate NeoX half-split pairs.
TEST(ModelConfig, LlamaUsesTheNormalRopeLayout) {
  auto c = LlamaFile{}.config();
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->rope_layout, RopeLayout::kNormal);
}

TEST(ModelConfig, OutputIsTiedOnlyWithoutOutputWeight) {
  LlamaFile file;
  auto tied = file.config();
  ASSERT_TRUE(tied.is_ok()) << tied.status().to_string();
  EXPECT_TRUE(tied->tied_output);
  file.separate_output = true;
  auto separate = file.config();
  ASSERT_TRUE(separate.is_ok()) << separate.status().to_string();
  EXPECT_FALSE(separate->tied_output);
}

void expect_config_error(const LlamaFile& file, const std::string& message) {
  auto c = file.config();
  ASSERT_FALSE(c.is_ok()) << "accepted; expected: " << message;
  EXPECT_EQ(c.status().code(), StatusCode::kDataLoss) << c.status().to_string();
  EXPECT_EQ(c.status().message(), message);
}

TEST(ModelConfig, EachMissingRequiredKeyIsNamed) {
  for (const char* key : {"llama.block_count", "llama.embedding_length", "llama.feed_forward_length",
                          "llama.attention.head_count", "llama.context_length"}) {
    SCOPED_TRACE(key);
    LlamaFile file;
    file.keys.erase(key);
    expect_config_error(file, "model metadata '" + std::string(key) + "' is missing or not an integer");
  }
}

TEST(ModelConfig, SizesOutOfRangeAreRefused) {
  const std::pair<const char*, std::int64_t> cases[] = {
      {"llama.block_count", 0},
      {"llama.block_count", -1},
      {"llama.embedding_length", 0},
      {"llama.embedding_length", -64},
      {"llama.feed_forward_length", 0},
      {"llama.attention.head_count", 0},
      {"llama.attention.head_count_kv", 0},
      {"llama.attention.head_count_kv", -2},
      {"llama.context_length", 0},
      {"llama.rope.dimension_count", 1},
      {"llama.rope.dimension_count", 32},  // longer than a 16-wide head
  };
  for (const auto& [key, value] : cases) {
    SCOPED_TRACE(std::string(key) + " = " + std::to_string(value));
    LlamaFile file;
    file.keys[key] = value;
    expect_config_error(file,
                        "model metadata '" + std::string(key) + "' = " + std::to_string(value) + " is out of range");
  }
}

TEST(ModelConfig, HeadsThatDoNotDivideAreRefused) {
  LlamaFile file;
  file.keys["llama.attention.head_count"] = std::int64_t{5};  // 64 is not a multiple of 5
  file.keys["llama.attention.head_count_kv"] = std::int64_t{5};
  expect_config_error(file, "model heads do not divide: embedding 64, heads 5, and no attention.key_length");
  file.keys["llama.attention.head_count"] = std::int64_t{4};
  file.keys["llama.attention.head_count_kv"] = std::int64_t{3};  // 4 query heads cannot share 3
  expect_config_error(file, "model heads do not divide: heads 4, kv heads 3");
}

// Mistral-Nemo, Qwen3 and Gemma 3 give the head size as its own key: it need not be
// d_model / n_heads (which was assumed before, making the Q projection's shape wrong).
TEST(ModelConfig, KeyLengthIsTheHeadSize) {
  LlamaFile file;
  file.keys["llama.attention.key_length"] = std::int64_t{24};
  file.keys["llama.attention.value_length"] = std::int64_t{24};
  auto c = file.config();
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->head_dim, 24);
  EXPECT_EQ(c->rope_dims, 24);
  EXPECT_EQ(c->q_dim(), 96);
  EXPECT_EQ(c->kv_dim(), 48);
  // With the head size given, heads need not divide the embedding.
  file.keys["llama.attention.head_count"] = std::int64_t{6};
  file.keys["llama.attention.head_count_kv"] = std::int64_t{3};
  c = file.config();
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->q_dim(), 144);
}

TEST(ModelConfig, ValueLengthOtherThanKeyLengthIsRefused) {
  LlamaFile file;
  file.keys["llama.attention.key_length"] = std::int64_t{16};
  file.keys["llama.attention.value_length"] = std::int64_t{32};
  auto c = file.config();
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(c.status().message(),
            "attention.value_length 32 differs from key_length 16; Halyard needs one head size for keys and values");
}

TEST(ModelConfig, QwenAndGemmaRotateNeoxPairs) {
  for (const char* arch : {"qwen2", "qwen3", "gemma3"}) {
    LlamaFile file;
    file.architecture = arch;
    auto c = file.config();
    ASSERT_TRUE(c.is_ok()) << arch << ": " << c.status().to_string();
    EXPECT_EQ(c->architecture, arch);
    EXPECT_EQ(c->rope_layout, RopeLayout::kNeox) << arch;
    EXPECT_EQ(c->n_layers, 2) << arch;
  }
}

// llama.cpp's rule for Gemma 3: five local layers then a global one (l % 6 == 5 is global);
// local layers use the window and rope.freq_base_swa, global ones rope.freq_base.
TEST(ModelConfig, Gemma3LayersAlternateLocalAndGlobal) {
  LlamaFile file;
  file.architecture = "gemma3";
  file.keys["llama.block_count"] = std::int64_t{13};
  file.keys["llama.attention.sliding_window"] = std::int64_t{512};
  file.keys["llama.rope.freq_base"] = 1000000.f;
  auto c = file.config();
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->sliding_window, 512);
  EXPECT_EQ(c->embed_scale, 8.f);  // sqrt(64)
  EXPECT_EQ(c->rope_base, 1000000.f);
  EXPECT_EQ(c->rope_base_local, 10000.f);  // no freq_base_swa: llama.cpp's default
  std::string pattern;
  for (int l = 0; l < 13; ++l)
    pattern += c->is_local(l) ? 'L' : 'G';
  EXPECT_EQ(pattern, "LLLLLGLLLLLGL");
  file.keys["llama.rope.freq_base_swa"] = 20000.f;
  file.keys["llama.attention.sliding_window_pattern"] = std::int64_t{2};
  c = file.config();
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->rope_base_local, 20000.f);
  EXPECT_TRUE(c->is_local(0));
  EXPECT_FALSE(c->is_local(1));
  // Without a window every layer is global.
  file.keys.erase("llama.attention.sliding_window");
  c = file.config();
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_FALSE(c->is_local(0));
}

TEST(ModelConfig, UnsupportedArchitectureNamesTheSupportedOnes) {
  LlamaFile file;
  file.architecture = "phi3";
  auto c = file.config();
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().message(), "architecture 'phi3' is not supported (supported: llama, qwen2, qwen3, gemma3)");
}

TEST(ModelConfig, RopeBaseAndEpsilonMustBePositive) {
  for (const char* key : {"llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon"}) {
    for (float bad : {0.f, -1.f}) {
      SCOPED_TRACE(std::string(key) + " = " + std::to_string(bad));
      LlamaFile file;
      file.keys[key] = bad;
      expect_config_error(file, "rope.freq_base and the RMS epsilon must be positive");
    }
  }
}

TEST(ModelConfig, NoTokenEmbeddingIsRefused) {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  for (const auto& [key, value] : LlamaFile{}.keys)
    w.add_u32(key, static_cast<std::uint32_t>(std::get<std::int64_t>(value)));
  auto f = parse(w);
  ASSERT_NE(f, nullptr);
  auto c = LlamaConfig::from_gguf(*f);
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(c.status().message(), "model has no token_embd.weight");
}

// The same through Model::load, as the CLI and the C API reach it: a file on disk.
TEST(ModelConfig, LoadReportsTheArchitectureOfAMambaFile) {
  GgufWriter w;
  w.add_string("general.architecture", "mamba");
  add_kquant(w, "blk.0.attn_q.weight", 12);
  add_kquant(w, "blk.0.ffn_down.weight", 14);
  const std::string path = ::testing::TempDir() + "/mamba_kquants.gguf";
  {
    const auto bytes = w.bytes();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  auto registry = testing::load_registry();
  ASSERT_NE(registry, nullptr);
  ModelOptions o;
  o.device = "ref";
  auto m = Model::load(path, o, *registry);
  std::remove(path.c_str());
  ASSERT_FALSE(m.is_ok());
  EXPECT_NE(m.status().message().find("architecture 'mamba' is not supported"), std::string::npos)
      << m.status().to_string();
}

// A one-layer llama of f32 weights whose attention and feed-forward weights are zero, so the
// logits of a token t are the output projection of rms_norm(embedding row t): they show which
// matrix the graph projects with and which epsilon it normalises with. Embedding row t holds 0.1 (t + 1) + 0.01 i; a
// separate output.weight is the identity on the first 8 columns, so its logit j is normed[j]. Its RMS epsilon is large,
// so a graph that used the default 1e-5 instead would be seen.
constexpr int kTinyD = 32, kTinyVocab = 8;
constexpr float kTinyEps = 0.25f;

float tiny_embedding(int token, int i) {
  return 0.1f * static_cast<float>(token + 1) + 0.01f * static_cast<float>(i);
}

std::string write_tiny_llama(bool separate_output) {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  for (const auto& [key, value] : std::map<std::string, std::uint32_t>{{"llama.block_count", 1},
                                                                       {"llama.embedding_length", kTinyD},
                                                                       {"llama.feed_forward_length", kTinyD},
                                                                       {"llama.attention.head_count", 2},
                                                                       {"llama.context_length", 64}})
    w.add_u32(key, value);
  w.add_f32("llama.attention.layer_norm_rms_epsilon", kTinyEps);
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string_array("tokenizer.ggml.tokens", {"<unk>", "a", "b", "c", "d", "e", "f", "g"});
  std::vector<float> embd(kTinyD * kTinyVocab), ones(kTinyD, 1.f), zeros(kTinyD * kTinyD, 0.f),
      identity(kTinyD * kTinyVocab, 0.f);
  for (int t = 0; t < kTinyVocab; ++t) {
    for (int i = 0; i < kTinyD; ++i)
      embd[static_cast<std::size_t>(t * kTinyD + i)] = tiny_embedding(t, i);
    identity[static_cast<std::size_t>(t * kTinyD + t)] = 1.f;
  }
  const auto matrix = TensorDesc::make(DType::kF32, kTinyD, kTinyD);
  const auto vector = TensorDesc::make(DType::kF32, kTinyD);
  w.add_tensor("token_embd.weight", TensorDesc::make(DType::kF32, kTinyD, kTinyVocab), embd.data());
  w.add_tensor("output_norm.weight", vector, ones.data());
  if (separate_output)
    w.add_tensor("output.weight", TensorDesc::make(DType::kF32, kTinyD, kTinyVocab), identity.data());
  w.add_tensor("blk.0.attn_norm.weight", vector, ones.data());
  for (const char* name : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"})
    w.add_tensor(std::string("blk.0.") + name + ".weight", matrix, zeros.data());
  w.add_tensor("blk.0.ffn_norm.weight", vector, ones.data());
  std::string path = ::testing::TempDir() + "/tiny_llama_" + (separate_output ? "separate" : "tied") + "_output.gguf";
  const auto bytes = w.bytes();
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return path;
}

// The logits of one token through the tiny model on the reference device.
std::vector<float> tiny_logits(bool separate_output, TokenId token) {
  const std::string path = write_tiny_llama(separate_output);
  auto registry = testing::load_registry();
  if (!registry)
    return {};
  ModelOptions o;
  o.device = "ref";
  auto m = Model::load(path, o, *registry);
  std::remove(path.c_str());
  EXPECT_TRUE(m.is_ok()) << m.status().to_string();
  if (!m.is_ok())
    return {};
  EXPECT_EQ(m.value()->config().tied_output, !separate_output);
  auto session = Session::create(*m.value());
  EXPECT_TRUE(session.is_ok()) << session.status().to_string();
  if (!session.is_ok())
    return {};
  const TokenId one[1] = {token};
  auto logits = session.value()->eval(one);
  EXPECT_TRUE(logits.is_ok()) << logits.status().to_string();
  return logits.is_ok() ? std::vector<float>(logits->begin(), logits->end()) : std::vector<float>{};
}

// rms_norm(embedding row `token`) with the file's epsilon.
std::vector<float> tiny_normed(TokenId token) {
  double sum = 0;
  for (int i = 0; i < kTinyD; ++i)
    sum += static_cast<double>(tiny_embedding(token, i)) * tiny_embedding(token, i);
  const double scale = 1.0 / std::sqrt(sum / kTinyD + kTinyEps);
  std::vector<float> normed(kTinyD);
  for (int i = 0; i < kTinyD; ++i)
    normed[static_cast<std::size_t>(i)] = static_cast<float>(tiny_embedding(token, i) * scale);
  return normed;
}

TEST(ModelOutput, TiedOutputProjectsWithTheEmbedding) {
  const TokenId token = 3;
  const std::vector<float> logits = tiny_logits(false, token);
  ASSERT_EQ(logits.size(), static_cast<std::size_t>(kTinyVocab));
  const std::vector<float> normed = tiny_normed(token);
  for (int j = 0; j < kTinyVocab; ++j) {
    double expected = 0;
    for (int i = 0; i < kTinyD; ++i)
      expected += static_cast<double>(normed[static_cast<std::size_t>(i)]) * tiny_embedding(j, i);
    EXPECT_NEAR(logits[static_cast<std::size_t>(j)], expected, 1e-3 * std::abs(expected)) << "logit " << j;
  }
}

TEST(ModelOutput, SeparateOutputWeightIsUsedInsteadOfTheEmbedding) {
  const TokenId token = 3;
  const std::vector<float> logits = tiny_logits(true, token);
  ASSERT_EQ(logits.size(), static_cast<std::size_t>(kTinyVocab));
  const std::vector<float> normed = tiny_normed(token);
  for (int j = 0; j < kTinyVocab; ++j)
    EXPECT_NEAR(logits[static_cast<std::size_t>(j)], normed[static_cast<std::size_t>(j)], 1e-4) << "logit " << j;
}

// A one-layer llama 256 wide whose ffn_down is Q4_K (all-zero blocks: d = 0, so zero weights)
// and whose other matrices are f32 zeros: the shape of a K-quant file's load, small. Its output
// is tied; with kquant_embedding the embedding is Q4_K zeros as well.
std::string write_kquant_llama(bool kquant_embedding = false) {
  constexpr int d = 256, vocab = 8;
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  for (const auto& [key, value] : std::map<std::string, std::uint32_t>{{"llama.block_count", 1},
                                                                       {"llama.embedding_length", d},
                                                                       {"llama.feed_forward_length", d},
                                                                       {"llama.attention.head_count", 4},
                                                                       {"llama.context_length", 64}})
    w.add_u32(key, value);
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string_array("tokenizer.ggml.tokens", {"<unk>", "a", "b", "c", "d", "e", "f", "g"});
  std::vector<float> embd(d * vocab, 0.5f), ones(d, 1.f), zeros(d * d, 0.f);
  const auto matrix = TensorDesc::make(DType::kF32, d, d);
  const auto vector = TensorDesc::make(DType::kF32, d);
  if (kquant_embedding)  // zero blocks, as ffn_down
    w.add_raw_tensor("token_embd.weight", {d, vocab}, 12, std::vector<std::uint8_t>(vocab * 144));
  else
    w.add_tensor("token_embd.weight", TensorDesc::make(DType::kF32, d, vocab), embd.data());
  w.add_tensor("output_norm.weight", vector, ones.data());
  w.add_tensor("blk.0.attn_norm.weight", vector, ones.data());
  for (const char* name : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up"})
    w.add_tensor(std::string("blk.0.") + name + ".weight", matrix, zeros.data());
  w.add_raw_tensor("blk.0.ffn_down.weight", {d, d}, 12, std::vector<std::uint8_t>(d * 144));
  w.add_tensor("blk.0.ffn_norm.weight", vector, ones.data());
  // One file per variant and process: ctest runs the cases as parallel processes.
  std::string path = ::testing::TempDir() + "/kquant_llama_" + (kquant_embedding ? "tied" : "separate") + "_" +
                     std::to_string(::getpid()) + ".gguf";
  const auto bytes = w.bytes();
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return path;
}

// Every backend built here runs Q4_K weights, the tied Q4_K embedding included (EMBED for the
// input, MATMUL for the output projection): the model loads, a step runs, and the logits are
// the expected ones (not NaN, not a refusal). Before the cpu backend had Q4_K kernels it
// refused such a file at load; now it must compute it. Devices that are not available here
// (vulkan without a driver) are left out and named.
void expect_kquant_model_runs(bool kquant_embedding) {
  const std::string path = write_kquant_llama(kquant_embedding);
  auto registry = testing::load_registry();
  ASSERT_NE(registry, nullptr);
  std::string not_here;
  int ran = 0;
  for (const char* device : {"ref", "cpu", "vulkan:0"}) {
    if (std::string(device) != "ref" && !registry->open_device(device).is_ok()) {
      not_here += std::string(not_here.empty() ? "" : ", ") + device;
      continue;
    }
    SCOPED_TRACE(device);
    ModelOptions o;
    o.device = device;
    auto m = Model::load(path, o, *registry);
    ASSERT_TRUE(m.is_ok()) << m.status().to_string();
    EXPECT_EQ(m.value()->weight("blk.0.ffn_down.weight")->desc.dtype, DType::kQ4_K);
    auto session = Session::create(*m.value());
    ASSERT_TRUE(session.is_ok()) << session.status().to_string();
    const TokenId one[1] = {2};
    auto logits = session.value()->eval(one);
    ASSERT_TRUE(logits.is_ok()) << logits.status().to_string();
    // Separate embedding: every row is 0.5 everywhere and the layer adds zeros, so the normed
    // row is all ones (up to epsilon) and every tied logit is 256 * 0.5. A zero-block Q4_K
    // embedding makes every logit 0.
    const float expected = kquant_embedding ? 0.f : 128.f;
    for (float v : *logits)
      EXPECT_NEAR(v, expected, 1e-2f);
    ++ran;
  }
  std::remove(path.c_str());
  EXPECT_GE(ran, 2) << "ref and cpu are always built";
  if (!not_here.empty())
    std::fprintf(stderr, "not available here, not run: %s\n", not_here.c_str());
}

TEST(ModelLoad, KQuantWeightsRunOnEveryBackend) {
  expect_kquant_model_runs(/*kquant_embedding=*/false);
}

TEST(ModelLoad, ATiedKQuantEmbeddingRunsAsEmbeddingAndOutputProjection) {
  expect_kquant_model_runs(/*kquant_embedding=*/true);
}

}  // namespace
}  // namespace halyard::runtime
