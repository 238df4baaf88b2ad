// The GGUF writer (round trips through the reader), the quantization mix rules on a small
// synthetic llama model, and quantize_gguf itself: determinism, metadata, bad input.
#include "halyard/runtime/quantize.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "gguf_writer.h"
#include "halyard/runtime/gguf.h"
#include "halyard/runtime/gguf_writer.h"
#include "halyard/runtime/quant_mix.h"

namespace halyard::runtime {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test under the working directory (the build tree under ctest), removed
// when the test ends.
struct TempDir {
  fs::path path;
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path = fs::current_path() / "quantize_test_tmp" /
           (std::string(info->test_suite_name()) + "." + info->name() + "." + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::vector<std::uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

GgufValue u32(std::uint32_t v) {
  return GgufValue{GgufType::kU32, std::uint64_t{v}};
}

TEST(GgufStreamWriter, RoundTripsThroughTheReader) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const std::vector<std::int32_t> ints{1, -2, 3};
  const std::vector<float> floats{0.5f, -1.25f};
  GgufArray int_array{GgufType::kI32, ints.size(), reinterpret_cast<const std::uint8_t*>(ints.data()), {}};
  GgufArray float_array{GgufType::kF32, floats.size(), reinterpret_cast<const std::uint8_t*>(floats.data()), {}};
  GgufArray strings{GgufType::kString, 3, nullptr, {"a", "", "<|im_end|>"}};

  GgufStreamWriter w;
  ASSERT_TRUE(w.add_metadata("general.alignment", u32(64)).is_ok());
  ASSERT_TRUE(w.add_metadata("general.architecture", GgufValue{GgufType::kString, std::string_view("llama")}).is_ok());
  ASSERT_TRUE(w.add_metadata("u8", GgufValue{GgufType::kU8, std::uint64_t{200}}).is_ok());
  ASSERT_TRUE(w.add_metadata("i8", GgufValue{GgufType::kI8, std::int64_t{-100}}).is_ok());
  ASSERT_TRUE(w.add_metadata("u16", GgufValue{GgufType::kU16, std::uint64_t{60000}}).is_ok());
  ASSERT_TRUE(w.add_metadata("i16", GgufValue{GgufType::kI16, std::int64_t{-30000}}).is_ok());
  ASSERT_TRUE(w.add_metadata("i32", GgufValue{GgufType::kI32, std::int64_t{-7}}).is_ok());
  ASSERT_TRUE(w.add_metadata("u64", GgufValue{GgufType::kU64, std::uint64_t{1} << 40}).is_ok());
  ASSERT_TRUE(w.add_metadata("i64", GgufValue{GgufType::kI64, std::int64_t{-(std::int64_t{1} << 40)}}).is_ok());
  ASSERT_TRUE(w.add_metadata("f32", GgufValue{GgufType::kF32, 1e-5}).is_ok());
  ASSERT_TRUE(w.add_metadata("f64", GgufValue{GgufType::kF64, 3.141592653589793}).is_ok());
  ASSERT_TRUE(w.add_metadata("bool", GgufValue{GgufType::kBool, true}).is_ok());
  ASSERT_TRUE(w.add_metadata("ints", GgufValue{GgufType::kArray, int_array}).is_ok());
  ASSERT_TRUE(w.add_metadata("floats", GgufValue{GgufType::kArray, float_array}).is_ok());
  ASSERT_TRUE(w.add_metadata("strings", GgufValue{GgufType::kArray, strings}).is_ok());
  EXPECT_EQ(w.add_metadata("u8", u32(1)).code(), StatusCode::kInvalidArgument);  // duplicate key

  const auto norm = TensorDesc::make(DType::kF32, 5);
  const auto q8 = TensorDesc::make(DType::kQ8_0, 64, 3);
  const auto q4k = TensorDesc::make(DType::kQ4_K, 256, 2);
  std::vector<std::vector<std::uint8_t>> data;
  for (const auto& d : {norm, q8, q4k}) {
    std::vector<std::uint8_t> bytes(d.bytes());
    for (std::size_t i = 0; i < bytes.size(); ++i)
      bytes[i] = static_cast<std::uint8_t>(i * 7 + data.size());
    data.push_back(bytes);
  }
  ASSERT_TRUE(w.add_tensor("norm", norm).is_ok());
  ASSERT_TRUE(w.add_tensor("q8", q8).is_ok());
  ASSERT_TRUE(w.add_tensor("q4k", q4k).is_ok());
  EXPECT_EQ(w.add_tensor("q8", q8).code(), StatusCode::kInvalidArgument);  // duplicate name
  EXPECT_EQ(w.add_tensor("odd", TensorDesc::make(DType::kQ4_K, 576, 1)).code(), StatusCode::kInvalidArgument);

  const fs::path out = dir / "round_trip.gguf";
  ASSERT_TRUE(w.begin(out.string()).is_ok());
  for (const auto& d : data)
    ASSERT_TRUE(w.write_tensor_data(d.data(), d.size()).is_ok());
  ASSERT_TRUE(w.finish().is_ok());
  EXPECT_FALSE(fs::exists(out.string() + ".tmp"));
  EXPECT_EQ(w.bytes_written(), fs::file_size(out));

  auto f = GgufFile::open(out.string());
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  const GgufFile& g = *f.value();
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.get_int("general.alignment"), 64);
  EXPECT_EQ(g.get_string("general.architecture"), "llama");
  EXPECT_EQ(g.get_int("u8"), 200);
  EXPECT_EQ(g.get_int("i8"), -100);
  EXPECT_EQ(g.get_int("u16"), 60000);
  EXPECT_EQ(g.get_int("i16"), -30000);
  EXPECT_EQ(g.get_int("i32"), -7);
  EXPECT_EQ(g.get_int("u64"), std::int64_t{1} << 40);
  EXPECT_EQ(g.get_int("i64"), -(std::int64_t{1} << 40));
  EXPECT_FLOAT_EQ(static_cast<float>(*g.get_float("f32")), 1e-5f);
  EXPECT_DOUBLE_EQ(*g.get_float("f64"), 3.141592653589793);
  EXPECT_EQ(g.find("bool")->type, GgufType::kBool);
  EXPECT_TRUE(std::get<bool>(g.find("bool")->value));
  const GgufArray* ia = g.find("ints")->as_array();
  ASSERT_NE(ia, nullptr);
  ASSERT_EQ(ia->count, 3u);
  EXPECT_EQ(std::memcmp(ia->data, ints.data(), 12), 0);
  const GgufArray* fa = g.find("floats")->as_array();
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(std::memcmp(fa->data, floats.data(), 8), 0);
  const GgufArray* sa = g.find("strings")->as_array();
  ASSERT_NE(sa, nullptr);
  EXPECT_EQ(sa->strings, (std::vector<std::string_view>{"a", "", "<|im_end|>"}));

  ASSERT_EQ(g.tensors().size(), 3u);
  const TensorDesc descs[] = {norm, q8, q4k};
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& t = g.tensors()[i];
    EXPECT_EQ(t.desc, descs[i]) << t.name;
    EXPECT_EQ(t.offset % 64, 0u) << t.name;
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.data) % 64, 0u) << t.name;
    EXPECT_EQ(std::memcmp(t.data, data[i].data(), data[i].size()), 0) << t.name;
  }
}

TEST(GgufStreamWriter, AnUnfinishedFileIsRemoved) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const fs::path out = dir / "partial.gguf";
  {
    GgufStreamWriter w;
    ASSERT_TRUE(w.add_tensor("t", TensorDesc::make(DType::kF32, 4)).is_ok());
    ASSERT_TRUE(w.begin(out.string()).is_ok());
    EXPECT_TRUE(fs::exists(out.string() + ".tmp"));
    const float wrong[3] = {};
    EXPECT_EQ(w.write_tensor_data(wrong, sizeof wrong).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(w.finish().code(), StatusCode::kFailedPrecondition);  // its data was never written
  }
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out.string() + ".tmp"));
}

TEST(GgufStreamWriter, UnwritableDirectoryIsAClearError) {
  GgufStreamWriter w;
  ASSERT_TRUE(w.add_tensor("t", TensorDesc::make(DType::kF32, 4)).is_ok());
  const Status s = w.begin("/nonexistent-dir-for-halyard-test/out.gguf");
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("cannot create"), std::string::npos) << s.message();
}

TEST(GgufStreamWriter, RefusesABadAlignment) {
  GgufStreamWriter w;
  EXPECT_EQ(w.add_metadata("general.alignment", u32(48)).code(), StatusCode::kInvalidArgument);
}

// ---- mix rules ---------------------------------------------------------------------------

// The tensors of a llama model: n_embd, n_ff, n_layers, tied embedding or not.
struct SyntheticLlama {
  std::vector<std::string> names;
  std::vector<TensorDesc> descs;
  SyntheticLlama(std::int64_t n_embd, std::int64_t n_ff, int n_layers, bool tied, std::int64_t n_vocab = 64,
                 DType dtype = DType::kF32) {
    auto add = [&](std::string name, TensorDesc d) {
      names.push_back(std::move(name));
      descs.push_back(d);
    };
    const std::int64_t n_kv = n_embd / 4;
    add("token_embd.weight", TensorDesc::make(dtype, n_embd, n_vocab));
    for (int l = 0; l < n_layers; ++l) {
      const std::string b = "blk." + std::to_string(l) + ".";
      add(b + "attn_norm.weight", TensorDesc::make(DType::kF32, n_embd));
      add(b + "attn_q.weight", TensorDesc::make(dtype, n_embd, n_embd));
      add(b + "attn_k.weight", TensorDesc::make(dtype, n_embd, n_kv));
      add(b + "attn_v.weight", TensorDesc::make(dtype, n_embd, n_kv));
      add(b + "attn_output.weight", TensorDesc::make(dtype, n_embd, n_embd));
      add(b + "ffn_norm.weight", TensorDesc::make(DType::kF32, n_embd));
      add(b + "ffn_gate.weight", TensorDesc::make(dtype, n_embd, n_ff));
      add(b + "ffn_up.weight", TensorDesc::make(dtype, n_embd, n_ff));
      add(b + "ffn_down.weight", TensorDesc::make(dtype, n_ff, n_embd));
    }
    add("output_norm.weight", TensorDesc::make(DType::kF32, n_embd));
    if (!tied)
      add("output.weight", TensorDesc::make(dtype, n_embd, n_vocab));
  }
};

std::map<std::string, DType> plan_map(const std::string& type, const SyntheticLlama& m, int n_layers,
                                      bool pure = false) {
  auto mix = parse_quant_mix(type, pure);
  EXPECT_TRUE(mix.is_ok()) << mix.status().to_string();
  std::map<std::string, DType> out;
  for (const auto& p : plan_quantization(mix.value(), m.names, m.descs, n_layers))
    out[p.name] = p.chosen;
  return out;
}

TEST(QuantMix, ParsesNamesCaseInsensitivelyAndListsTheKnownOnes) {
  auto m = parse_quant_mix("q4_k_m", false);
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ(m->name, "Q4_K_M");
  EXPECT_EQ(m->base, DType::kQ4_K);
  EXPECT_EQ(m->file_type, 15u);
  EXPECT_FALSE(m->pure);
  EXPECT_TRUE(parse_quant_mix("Q4_K", false)->pure);  // no mix by that name
  EXPECT_EQ(parse_quant_mix("BF16", false)->file_type, 32u);
  EXPECT_EQ(parse_quant_mix("Q8_0", false)->file_type, 7u);
  EXPECT_EQ(parse_quant_mix("Q5_1", false)->file_type, 9u);
  EXPECT_EQ(parse_quant_mix("Q6_K", false)->file_type, 18u);
  auto bad = parse_quant_mix("Q7_K", false);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("Q4_K_M"), std::string::npos);
  EXPECT_NE(bad.status().message().find("'Q7_K'"), std::string::npos);
}

TEST(QuantMix, SensitiveLayersAreTheEdgesAndEverySecondBetween) {
  std::vector<int> got;
  for (int l = 0; l < 16; ++l) {
    if (is_sensitive_layer(l, 16))
      got.push_back(l);
  }
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 4, 6, 8, 10, 12, 14, 15}));
  int n30 = 0;
  for (int l = 0; l < 30; ++l)
    n30 += is_sensitive_layer(l, 30);
  EXPECT_EQ(n30, 19);  // 4 + 4 at the edges, 11 of the 22 between
  EXPECT_FALSE(is_sensitive_layer(30, 30));
}

TEST(QuantMix, Q4KMKeepsTheOutputAndSensitiveVAndDownAtQ6K) {
  const SyntheticLlama m(256, 512, 16, /*tied=*/false);
  const auto p = plan_map("Q4_K_M", m, 16);
  EXPECT_EQ(p.at("token_embd.weight"), DType::kQ4_K);
  EXPECT_EQ(p.at("output.weight"), DType::kQ6_K);
  EXPECT_EQ(p.at("output_norm.weight"), DType::kF32);
  for (int l = 0; l < 16; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    const DType vd = is_sensitive_layer(l, 16) ? DType::kQ6_K : DType::kQ4_K;
    EXPECT_EQ(p.at(b + "attn_v.weight"), vd) << l;
    EXPECT_EQ(p.at(b + "ffn_down.weight"), vd) << l;
    EXPECT_EQ(p.at(b + "attn_q.weight"), DType::kQ4_K) << l;
    EXPECT_EQ(p.at(b + "attn_k.weight"), DType::kQ4_K) << l;
    EXPECT_EQ(p.at(b + "attn_output.weight"), DType::kQ4_K) << l;
    EXPECT_EQ(p.at(b + "ffn_gate.weight"), DType::kQ4_K) << l;
    EXPECT_EQ(p.at(b + "ffn_up.weight"), DType::kQ4_K) << l;
    EXPECT_EQ(p.at(b + "attn_norm.weight"), DType::kF32) << l;
  }
  // Tied: the embedding is the output projection.
  EXPECT_EQ(plan_map("Q4_K_M", SyntheticLlama(256, 512, 16, true), 16).at("token_embd.weight"), DType::kQ6_K);
  const auto p5 = plan_map("Q5_K_M", m, 16);
  EXPECT_EQ(p5.at("blk.0.attn_v.weight"), DType::kQ6_K);
  EXPECT_EQ(p5.at("blk.3.attn_v.weight"), DType::kQ5_K);
  EXPECT_EQ(p5.at("blk.3.attn_q.weight"), DType::kQ5_K);
}

TEST(QuantMix, TheOtherMixes) {
  const SyntheticLlama m(256, 512, 8, false);
  const auto q2 = plan_map("Q2_K", m, 8);
  EXPECT_EQ(q2.at("blk.5.attn_v.weight"), DType::kQ4_K);
  EXPECT_EQ(q2.at("blk.5.ffn_down.weight"), DType::kQ4_K);
  EXPECT_EQ(q2.at("blk.5.attn_output.weight"), DType::kQ2_K);
  EXPECT_EQ(q2.at("blk.5.ffn_up.weight"), DType::kQ2_K);
  EXPECT_EQ(q2.at("output.weight"), DType::kQ6_K);
  const auto q3m = plan_map("Q3_K_M", m, 8);
  EXPECT_EQ(q3m.at("blk.2.attn_output.weight"), DType::kQ4_K);
  EXPECT_EQ(q3m.at("blk.2.attn_v.weight"), DType::kQ4_K);
  EXPECT_EQ(q3m.at("blk.2.attn_q.weight"), DType::kQ3_K);
  const auto q3l = plan_map("Q3_K_L", m, 8);
  EXPECT_EQ(q3l.at("blk.2.ffn_down.weight"), DType::kQ5_K);
  EXPECT_EQ(q3l.at("blk.2.ffn_gate.weight"), DType::kQ3_K);
  const auto q3s = plan_map("Q3_K_S", m, 8);
  EXPECT_EQ(q3s.at("blk.2.ffn_down.weight"), DType::kQ3_K);
  EXPECT_EQ(q3s.at("output.weight"), DType::kQ6_K);
  const auto q6 = plan_map("Q6_K", m, 8);
  EXPECT_EQ(q6.at("blk.2.ffn_down.weight"), DType::kQ6_K);
  EXPECT_EQ(q6.at("output.weight"), DType::kQ6_K);
  const auto q8 = plan_map("Q8_0", m, 8);
  EXPECT_EQ(q8.at("output.weight"), DType::kQ8_0);
  EXPECT_EQ(q8.at("blk.0.attn_v.weight"), DType::kQ8_0);
  const auto q50 = plan_map("Q5_0", m, 8);
  EXPECT_EQ(q50.at("output.weight"), DType::kQ6_K);
  EXPECT_EQ(q50.at("blk.0.attn_v.weight"), DType::kQ5_0);
  const auto f16 = plan_map("F16", m, 8);
  EXPECT_EQ(f16.at("output.weight"), DType::kF16);
  EXPECT_EQ(f16.at("blk.0.attn_norm.weight"), DType::kF32);
  // Pure: one format everywhere but the 1-D tensors.
  const auto pure = plan_map("Q2_K", m, 8, /*pure=*/true);
  EXPECT_EQ(pure.at("output.weight"), DType::kQ2_K);
  EXPECT_EQ(pure.at("blk.1.attn_v.weight"), DType::kQ2_K);
  EXPECT_EQ(pure.at("blk.1.ffn_norm.weight"), DType::kF32);
  EXPECT_EQ(plan_map("Q4_K", m, 8).at("output.weight"), DType::kQ4_K);
}

TEST(QuantMix, RowsThatAreNotAMultipleOfTheBlockFallBack) {
  EXPECT_EQ(fallback_dtype(DType::kQ2_K, 576), DType::kQ4_0);
  EXPECT_EQ(fallback_dtype(DType::kQ3_K, 576), DType::kQ4_0);
  EXPECT_EQ(fallback_dtype(DType::kQ4_K, 576), DType::kQ5_0);
  EXPECT_EQ(fallback_dtype(DType::kQ5_K, 576), DType::kQ5_1);
  EXPECT_EQ(fallback_dtype(DType::kQ6_K, 576), DType::kQ8_0);
  EXPECT_EQ(fallback_dtype(DType::kQ6_K, 1536), DType::kQ6_K);
  EXPECT_EQ(fallback_dtype(DType::kQ4_K, 40), DType::kF16);  // not even a 32-block
  EXPECT_EQ(fallback_dtype(DType::kQ8_0, 40), DType::kF16);
  // SmolLM2-135M's shapes: rows of 576 everywhere but ffn_down (1536).
  const SyntheticLlama m(576, 1536, 30, true);
  const auto p = plan_map("Q4_K_M", m, 30);
  EXPECT_EQ(p.at("token_embd.weight"), DType::kQ8_0);  // Q6_K -> Q8_0
  EXPECT_EQ(p.at("blk.0.attn_q.weight"), DType::kQ5_0);
  EXPECT_EQ(p.at("blk.0.attn_v.weight"), DType::kQ8_0);  // sensitive: Q6_K -> Q8_0
  EXPECT_EQ(p.at("blk.0.ffn_down.weight"), DType::kQ6_K);
  EXPECT_EQ(p.at("blk.5.ffn_down.weight"), DType::kQ4_K);
}

// IQ4_NL and IQ4_XS: llama.cpp's ftype numbers (25, 30), the base format everywhere but the
// output projection (Q6_K), and IQ4_XS rows that are no multiple of 256 in IQ4_NL (the same
// codes in blocks of 32), as SmolLM2's 576-wide rows are.
TEST(QuantMix, IQ4MixesAndTheirFallback) {
  const auto nl = parse_quant_mix("iq4_nl", false);
  ASSERT_TRUE(nl.is_ok());
  EXPECT_EQ(nl->name, "IQ4_NL");
  EXPECT_EQ(nl->base, DType::kIQ4_NL);
  EXPECT_EQ(nl->file_type, 25u);
  const auto xs = parse_quant_mix("IQ4_XS", false);
  ASSERT_TRUE(xs.is_ok());
  EXPECT_EQ(xs->base, DType::kIQ4_XS);
  EXPECT_EQ(xs->file_type, 30u);
  EXPECT_EQ(fallback_dtype(DType::kIQ4_XS, 576), DType::kIQ4_NL);
  EXPECT_EQ(fallback_dtype(DType::kIQ4_XS, 1536), DType::kIQ4_XS);
  EXPECT_EQ(fallback_dtype(DType::kIQ4_NL, 40), DType::kF16);
  const SyntheticLlama m(576, 1536, 4, true);
  const auto p = plan_map("IQ4_XS", m, 4);
  EXPECT_EQ(p.at("token_embd.weight"), DType::kQ8_0);  // output projection: Q6_K -> Q8_0
  EXPECT_EQ(p.at("blk.0.attn_q.weight"), DType::kIQ4_NL);
  EXPECT_EQ(p.at("blk.0.ffn_down.weight"), DType::kIQ4_XS);
  EXPECT_EQ(p.at("blk.0.attn_norm.weight"), DType::kF32);
  const auto pn = plan_map("IQ4_NL", SyntheticLlama(256, 512, 4, false), 4);
  EXPECT_EQ(pn.at("output.weight"), DType::kQ6_K);
  EXPECT_EQ(pn.at("blk.3.ffn_up.weight"), DType::kIQ4_NL);
}

// ---- quantize_gguf -----------------------------------------------------------------------

// A tiny llama-shaped GGUF with random F32 (or `dtype`) weights, written with the test writer.
fs::path write_synthetic_model(const fs::path& dir, DType dtype = DType::kF32, const std::string& name = "in.gguf") {
  const SyntheticLlama m(256, 512, 2, /*tied=*/true, 96, dtype);
  testing::GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_string("general.name", "synthetic");
  w.add_u32("llama.block_count", 2);
  w.add_u32("general.file_type", 0);
  w.add_string_array("tokenizer.ggml.tokens", {"a", "b"});
  w.add_f32_array("some.floats", {1.5f, 2.5f});
  w.set_alignment(64);
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.f, 0.05f);
  for (std::size_t i = 0; i < m.names.size(); ++i) {
    const TensorDesc& d = m.descs[i];
    std::vector<float> values(static_cast<std::size_t>(d.elements()));
    for (auto& v : values)
      v = dist(rng);
    std::vector<std::uint8_t> bytes(d.bytes());
    for (std::int64_t r = 0; r < d.rows(); ++r) {
      quantize_row(d.dtype, values.data() + r * d.ne[0], bytes.data() + static_cast<std::size_t>(r) * d.row_size(),
                   d.ne[0]);
    }
    w.add_tensor(m.names[i], d, bytes.data());
  }
  const auto bytes = w.bytes();
  const fs::path p = dir / name;
  std::ofstream(p, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return p;
}

double nmse(const GgufTensor& a, const GgufTensor& b) {
  const std::int64_t n = a.desc.ne[0];
  std::vector<float> ra(static_cast<std::size_t>(n)), rb(static_cast<std::size_t>(n));
  double err = 0, ref = 0;
  for (std::int64_t r = 0; r < a.desc.rows(); ++r) {
    dequantize_row(a.desc.dtype, static_cast<const std::uint8_t*>(a.data) + r * a.desc.row_size(), ra.data(), n);
    dequantize_row(b.desc.dtype, static_cast<const std::uint8_t*>(b.data) + r * b.desc.row_size(), rb.data(), n);
    for (std::int64_t i = 0; i < n; ++i) {
      err += (ra[i] - rb[i]) * static_cast<double>(ra[i] - rb[i]);
      ref += static_cast<double>(ra[i]) * ra[i];
    }
  }
  return err / ref;
}

TEST(Quantize, WritesTheMixWithMetadataAndIsDeterministic) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const fs::path in = write_synthetic_model(dir);
  std::vector<std::string> lines;
  QuantizeOptions o;
  o.type = "Q4_K_M";
  o.threads = 1;
  o.on_message = [&](std::string_view l) { lines.emplace_back(l); };
  auto r1 = quantize_gguf(in.string(), (dir / "a.gguf").string(), o);
  ASSERT_TRUE(r1.is_ok()) << r1.status().to_string();
  o.threads = 3;
  auto r2 = quantize_gguf(in.string(), (dir / "b.gguf").string(), o);
  ASSERT_TRUE(r2.is_ok()) << r2.status().to_string();
  const auto a = read_bytes(dir / "a.gguf");
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, read_bytes(dir / "b.gguf")) << "the output depends on the thread count or the run";
  EXPECT_EQ(r1->output_bytes, a.size());
  EXPECT_EQ(r1->requantized, 0);

  auto src = GgufFile::open(in.string());
  auto out = GgufFile::open((dir / "a.gguf").string());
  ASSERT_TRUE(src.is_ok() && out.is_ok());
  EXPECT_EQ(out.value()->get_int("general.file_type"), 15);
  EXPECT_EQ(out.value()->get_int("general.quantization_version"), 2);
  EXPECT_EQ(out.value()->get_int("general.alignment"), 64);
  EXPECT_EQ(out.value()->get_string("general.name"), "synthetic");
  EXPECT_EQ(out.value()->find("tokenizer.ggml.tokens")->as_array()->strings, (std::vector<std::string_view>{"a", "b"}));
  ASSERT_EQ(out.value()->tensors().size(), src.value()->tensors().size());
  for (std::size_t i = 0; i < src.value()->tensors().size(); ++i) {
    const auto& s = src.value()->tensors()[i];
    const auto& t = out.value()->tensors()[i];
    EXPECT_EQ(t.name, s.name);
    EXPECT_EQ(t.desc.ne, s.desc.ne);
    EXPECT_EQ(t.offset % 64, 0u);
    EXPECT_EQ(t.desc.dtype, r1->plan[i].chosen) << t.name;
    // 4-bit blocks of a normal distribution: about 1% relative squared error.
    EXPECT_LT(nmse(s, t), 2e-2) << t.name << " as " << dtype_name(t.desc.dtype);
  }
  EXPECT_EQ(out.value()->find_tensor("token_embd.weight")->desc.dtype, DType::kQ6_K);
  EXPECT_EQ(out.value()->find_tensor("blk.0.attn_v.weight")->desc.dtype, DType::kQ6_K);
  EXPECT_EQ(out.value()->find_tensor("blk.0.attn_q.weight")->desc.dtype, DType::kQ4_K);
  bool summary = false;
  for (const auto& l : lines)
    summary |= l.find("q4_k") != std::string::npos && l.find("tensors") != std::string::npos;
  EXPECT_TRUE(summary) << "no per-format summary line";
}

TEST(Quantize, EveryTypeWritesAFileTheReaderAccepts) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const fs::path in = write_synthetic_model(dir);
  for (const char* type :
       {"F32",    "F16",    "BF16",   "Q8_0", "Q4_0",   "Q4_1",   "Q5_0", "Q5_1",   "Q2_K",   "Q3_K",
        "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K", "Q4_K_S", "Q4_K_M", "Q5_K", "Q5_K_S", "Q5_K_M", "Q6_K"}) {
    QuantizeOptions o;
    o.type = type;
    const fs::path out = dir / (std::string(type) + ".gguf");
    auto r = quantize_gguf(in.string(), out.string(), o);
    ASSERT_TRUE(r.is_ok()) << type << ": " << r.status().to_string();
    auto f = GgufFile::open(out.string());
    ASSERT_TRUE(f.is_ok()) << type << ": " << f.status().to_string();
    EXPECT_EQ(f.value()->get_int("general.file_type"), r->mix.file_type) << type;
    for (const auto& t : f.value()->tensors())
      EXPECT_LT(nmse(*GgufFile::open(in.string()).value()->find_tensor(t.name), t), 0.2) << type << " " << t.name;
  }
}

TEST(Quantize, AcceptsF16AndBF16InputsWithoutAWarning) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  for (DType d : {DType::kF16, DType::kBF16}) {
    const fs::path in = write_synthetic_model(dir, d, std::string(dtype_name(d)) + ".gguf");
    std::string text;
    QuantizeOptions o;
    o.type = "Q5_K_M";
    o.on_message = [&](std::string_view l) { text += std::string(l) + "\n"; };
    const fs::path out = dir / (std::string(dtype_name(d)) + ".q5_k_m.gguf");
    auto r = quantize_gguf(in.string(), out.string(), o);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ(r->requantized, 0);
    EXPECT_EQ(text.find("warning"), std::string::npos) << text;
    auto src = GgufFile::open(in.string());
    auto f = GgufFile::open(out.string());
    ASSERT_TRUE(src.is_ok() && f.is_ok());
    const auto* t = f.value()->find_tensor("blk.1.attn_q.weight");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->desc.dtype, DType::kQ5_K);
    EXPECT_LT(nmse(*src.value()->find_tensor("blk.1.attn_q.weight"), *t), 5e-3) << dtype_name(d);
  }
}

TEST(Quantize, RequantizingWarnsAndSameFormatIsCopied) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const fs::path in = write_synthetic_model(dir, DType::kQ8_0);
  std::string text;
  QuantizeOptions o;
  o.type = "Q8_0";
  o.on_message = [&](std::string_view l) { text += std::string(l) + "\n"; };
  ASSERT_TRUE(quantize_gguf(in.string(), (dir / "same.gguf").string(), o).is_ok());
  EXPECT_EQ(text.find("warning"), std::string::npos) << text;
  auto src = GgufFile::open(in.string());
  auto same = GgufFile::open((dir / "same.gguf").string());
  const auto* s = src.value()->find_tensor("blk.1.ffn_up.weight");
  const auto* t = same.value()->find_tensor("blk.1.ffn_up.weight");
  ASSERT_EQ(t->desc, s->desc);
  EXPECT_EQ(std::memcmp(t->data, s->data, s->desc.bytes()), 0);

  text.clear();
  o.type = "Q4_0";
  auto r = quantize_gguf(in.string(), (dir / "re.gguf").string(), o);
  ASSERT_TRUE(r.is_ok());
  EXPECT_GT(r->requantized, 0);
  EXPECT_NE(text.find("warning: "), std::string::npos) << text;
  EXPECT_NE(text.find("q8_0"), std::string::npos) << text;
}

TEST(Quantize, BadInputIsAClearErrorAndLeavesNoFile) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  QuantizeOptions o;
  o.type = "Q4_K_M";
  const fs::path out = dir / "out.gguf";
  auto missing = quantize_gguf((dir / "nope.gguf").string(), out.string(), o);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.gguf"), std::string::npos);

  const fs::path corrupt = dir / "corrupt.gguf";
  std::ofstream(corrupt, std::ios::binary) << "GGUF\x03\0\0\0garbage";
  EXPECT_EQ(quantize_gguf(corrupt.string(), out.string(), o).status().code(), StatusCode::kDataLoss);

  const fs::path in = write_synthetic_model(dir);
  // A truncated copy of a good file: its tensor data ends early.
  auto bytes = read_bytes(in);
  bytes.resize(bytes.size() - 100);
  const fs::path truncated = dir / "truncated.gguf";
  std::ofstream(truncated, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  EXPECT_EQ(quantize_gguf(truncated.string(), out.string(), o).status().code(), StatusCode::kDataLoss);

  o.type = "Q9_9";
  auto unknown = quantize_gguf(in.string(), out.string(), o);
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("Q9_9"), std::string::npos);

  o.type = "Q4_0";
  auto unwritable = quantize_gguf(in.string(), (dir / "no-such-dir" / "out.gguf").string(), o);
  EXPECT_EQ(unwritable.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(unwritable.status().message().find("no-such-dir"), std::string::npos);

  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out.string() + ".tmp"));
}

}  // namespace
}  // namespace halyard::runtime
