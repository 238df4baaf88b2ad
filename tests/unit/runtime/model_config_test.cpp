// What the model loader says about files it cannot run: the architecture first, then every
// unsupported tensor dtype in one message.
#include <gtest/gtest.h>

#include <fstream>

#include "gguf_writer.h"
#include "halyard/runtime/model.h"
#include "test_registry.h"

namespace halyard::runtime {
namespace {

using testing::GgufWriter;

// A K-quant block of zeros: q4_k blocks are 144 bytes, q6_k 210, 256 elements each.
void add_kquant(GgufWriter& w, const std::string& name, std::uint32_t type_id) {
  w.add_raw_tensor(name, {256, 2}, type_id, std::vector<std::uint8_t>(type_id == 12 ? 2 * 144 : 2 * 210));
}

std::unique_ptr<GgufFile> parse(const GgufWriter& w) {
  auto f = GgufFile::from_bytes(w.bytes());
  EXPECT_TRUE(f.is_ok()) << f.status().to_string();
  return f.is_ok() ? std::move(f).value() : nullptr;
}

TEST(ModelConfig, ArchitectureIsCheckedBeforeDtypes) {
  GgufWriter w;
  w.add_string("general.architecture", "qwen2");
  add_kquant(w, "blk.0.ffn_down.weight", 14);
  auto f = parse(w);
  ASSERT_NE(f, nullptr);
  auto c = LlamaConfig::from_gguf(*f);
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(c.status().message().find("architecture 'qwen2' is not supported"), std::string::npos)
      << c.status().to_string();
  EXPECT_EQ(c.status().message().find("dtype"), std::string::npos) << c.status().to_string();
}

TEST(ModelConfig, EveryUnsupportedDtypeIsNamedWithItsCount) {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  static const float norm[256] = {};
  w.add_tensor("output_norm.weight", TensorDesc::make(DType::kF32, 256), norm);
  for (int i = 0; i < 27; ++i)
    add_kquant(w, "q4k." + std::to_string(i), 12);
  for (int i = 0; i < 9; ++i)
    add_kquant(w, "q6k." + std::to_string(i), 14);
  auto f = parse(w);
  ASSERT_NE(f, nullptr);
  auto c = LlamaConfig::from_gguf(*f);
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(c.status().message(),
            "unsupported tensor dtypes: q4_k (id 12) x 27 tensors, q6_k (id 14) x 9 tensors; "
            "supported: f32, f16, bf16, q8_0, q4_0, q4_1");
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

// The same through Model::load, as the CLI and the C API reach it: a file on disk.
TEST(ModelConfig, LoadReportsTheArchitectureOfAQwenFile) {
  GgufWriter w;
  w.add_string("general.architecture", "qwen2");
  add_kquant(w, "blk.0.attn_q.weight", 12);
  add_kquant(w, "blk.0.ffn_down.weight", 14);
  const std::string path = ::testing::TempDir() + "/qwen2_kquants.gguf";
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
  EXPECT_NE(m.status().message().find("architecture 'qwen2' is not supported"), std::string::npos)
      << m.status().to_string();
}

}  // namespace
}  // namespace halyard::runtime
