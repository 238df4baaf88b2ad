// Weights used in place from the mapped GGUF file on host devices (ref, cpu): where they point,
// which tensors are copied instead (misaligned ones), that they cannot be written, and that the
// model computes the same logits as with copied weights.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "gguf_writer.h"
#include "halyard/hal/host.h"
#include "halyard/runtime/model.h"
#include "halyard/runtime/session.h"
#include "test_registry.h"

namespace halyard::runtime {
namespace {

using testing::GgufWriter;

constexpr int kD = 32, kVocab = 8;

// A one-layer llama of f32 weights with small random-looking values. With `alignment` 32 (the
// default) every tensor starts on a 32-byte boundary. With 4, a one-float tensor the model does
// not use sits after the layer's norms and shifts every later tensor 4 bytes off the boundary,
// and general.name's length is chosen so that the tensor data starts on one: the earlier tensors
// are aligned, the later ones not.
struct TinyFile {
  std::string path;
  std::map<std::string, std::uint64_t> file_offset;  // per tensor: where its data starts in the file
};

GgufWriter tiny_writer(std::uint32_t alignment, std::size_t name_length) {
  GgufWriter w;
  if (alignment != 32)
    w.set_alignment(alignment);
  w.add_string("general.architecture", "llama");
  w.add_string("general.name", std::string(name_length, 'x'));
  for (const auto& [key, value] : std::map<std::string, std::uint32_t>{{"llama.block_count", 1},
                                                                       {"llama.embedding_length", kD},
                                                                       {"llama.feed_forward_length", kD},
                                                                       {"llama.attention.head_count", 2},
                                                                       {"llama.context_length", 64}})
    w.add_u32(key, value);
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string_array("tokenizer.ggml.tokens", {"<unk>", "a", "b", "c", "d", "e", "f", "g"});
  auto values = [](std::size_t n, int seed) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i)
      v[i] = 0.05f * static_cast<float>(static_cast<int>((i * 7 + static_cast<std::size_t>(seed) * 13) % 17) - 8);
    return v;
  };
  const auto matrix = TensorDesc::make(DType::kF32, kD, kD);
  const auto vector = TensorDesc::make(DType::kF32, kD);
  const std::vector<float> ones(kD, 1.f), pad(1, 0.f);
  w.add_tensor("token_embd.weight", TensorDesc::make(DType::kF32, kD, kVocab), values(kD * kVocab, 1).data());
  w.add_tensor("output_norm.weight", vector, ones.data());
  w.add_tensor("blk.0.attn_norm.weight", vector, ones.data());
  w.add_tensor("blk.0.ffn_norm.weight", vector, ones.data());
  if (alignment != 32)
    w.add_tensor("unused.pad", TensorDesc::make(DType::kF32, 1), pad.data());
  int seed = 2;
  for (const char* name : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"})
    w.add_tensor(std::string("blk.0.") + name + ".weight", matrix, values(kD * kD, seed++).data());
  return w;
}

TinyFile write_tiny(std::uint32_t alignment) {
  std::size_t name_length = 1;
  while (tiny_writer(alignment, name_length).data_offset() % HostBuffer::kWrapAlignment != 0)
    ++name_length;
  const GgufWriter w = tiny_writer(alignment, name_length);
  const auto bytes = w.bytes();
  TinyFile out;
  auto parsed = GgufFile::from_bytes(bytes);
  EXPECT_TRUE(parsed.is_ok()) << parsed.status().to_string();
  if (!parsed.is_ok())
    return out;
  for (const auto& t : parsed.value()->tensors())
    out.file_offset[t.name] = w.data_offset() + t.offset;
  // One file per alignment and process: ctest runs the cases as parallel processes.
  out.path = ::testing::TempDir() + "/zero_copy_tiny_" + std::to_string(alignment) + "_" + std::to_string(::getpid()) +
             ".gguf";
  std::ofstream(out.path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return out;
}

// True when `p` lies in a mapping of the file at `path` in this process (/proc/self/maps).
bool inside_mapping_of(const void* p, const std::string& file) {
  const std::string path = std::filesystem::canonical(file).string();  // as the kernel names it
  std::ifstream maps("/proc/self/maps");
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  for (std::string line; std::getline(maps, line);) {
    std::uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) == 2 && lo <= address && address < hi)
      return line.size() >= path.size() && line.compare(line.size() - path.size(), path.size(), path) == 0;
  }
  return false;
}

std::unique_ptr<Model> load(BackendRegistry& registry, const std::string& path, const char* device, bool map_weights) {
  ModelOptions o;
  o.device = device;
  o.map_weights = map_weights;
  auto m = Model::load(path, o, registry);
  EXPECT_TRUE(m.is_ok()) << m.status().to_string();
  return m.is_ok() ? std::move(m).value() : nullptr;
}

std::vector<float> logits_of(Model& model) {
  auto session = Session::create(model);
  EXPECT_TRUE(session.is_ok()) << session.status().to_string();
  if (!session.is_ok())
    return {};
  const TokenId tokens[3] = {1, 5, 2};
  auto logits = session.value()->eval(tokens);
  EXPECT_TRUE(logits.is_ok()) << logits.status().to_string();
  return logits.is_ok() ? std::vector<float>(logits->begin(), logits->end()) : std::vector<float>{};
}

const char* const kHostDevices[] = {"ref", "cpu"};
const char* const kWeightNames[] = {"token_embd.weight",     "output_norm.weight",       "blk.0.attn_norm.weight",
                                    "blk.0.ffn_norm.weight", "blk.0.attn_q.weight",      "blk.0.attn_k.weight",
                                    "blk.0.attn_v.weight",   "blk.0.attn_output.weight", "blk.0.ffn_gate.weight",
                                    "blk.0.ffn_up.weight",   "blk.0.ffn_down.weight"};

// Every weight of a default-aligned file is read where the file is mapped, none is copied, and
// the logits are exactly those of the copied weights (same kernels, same bytes).
TEST(ModelZeroCopy, HostDeviceWeightsPointIntoTheMappedFile) {
  const TinyFile file = write_tiny(32);
  auto registry = testing::load_registry();  // outlives the models' devices
  ASSERT_NE(registry, nullptr);
  for (const char* device : kHostDevices) {
    SCOPED_TRACE(device);
    auto mapped = load(*registry, file.path, device, /*map_weights=*/true);
    auto copied = load(*registry, file.path, device, /*map_weights=*/false);
    ASSERT_TRUE(mapped && copied);
    EXPECT_EQ(mapped->mapped_weight_bytes(), mapped->weight_bytes());
    EXPECT_EQ(copied->mapped_weight_bytes(), 0u);
    EXPECT_EQ(mapped->weight_bytes(), copied->weight_bytes());
    for (const char* name : kWeightNames) {
      SCOPED_TRACE(name);
      auto* in_place = dynamic_cast<HostBuffer*>(mapped->weight(name)->buffer.get());
      auto* copy = dynamic_cast<HostBuffer*>(copied->weight(name)->buffer.get());
      ASSERT_TRUE(in_place && copy);
      EXPECT_TRUE(in_place->read_only());
      EXPECT_TRUE(inside_mapping_of(in_place->data(), file.path));
      EXPECT_FALSE(copy->read_only());
      EXPECT_FALSE(inside_mapping_of(copy->data(), file.path));
    }
    const std::vector<float> a = logits_of(*mapped), b = logits_of(*copied);
    ASSERT_EQ(a.size(), static_cast<std::size_t>(kVocab));
    EXPECT_EQ(a, b);
  }
  std::remove(file.path.c_str());
}

// In a file with 4-byte alignment, the tensors off a 32-byte boundary are copied, the others
// used in place, and the model computes the same logits as one whose weights are all copied.
TEST(ModelZeroCopy, MisalignedTensorsAreCopied) {
  const TinyFile file = write_tiny(4);
  int aligned = 0, misaligned = 0;
  for (const char* name : kWeightNames)
    ++(file.file_offset.at(name) % HostBuffer::kWrapAlignment == 0 ? aligned : misaligned);
  ASSERT_GT(aligned, 0) << "the file should mix aligned and misaligned tensors";
  ASSERT_GT(misaligned, 0) << "the file should mix aligned and misaligned tensors";
  auto registry = testing::load_registry();  // outlives the models' devices
  ASSERT_NE(registry, nullptr);
  for (const char* device : kHostDevices) {
    SCOPED_TRACE(device);
    auto mapped = load(*registry, file.path, device, /*map_weights=*/true);
    auto copied = load(*registry, file.path, device, /*map_weights=*/false);
    ASSERT_TRUE(mapped && copied);
    std::size_t expected_mapped = 0;
    for (const char* name : kWeightNames) {
      SCOPED_TRACE(name);
      const Weight* w = mapped->weight(name);
      auto* buffer = dynamic_cast<HostBuffer*>(w->buffer.get());
      ASSERT_NE(buffer, nullptr);
      const bool on_boundary = file.file_offset.at(name) % HostBuffer::kWrapAlignment == 0;
      EXPECT_EQ(buffer->read_only(), on_boundary);
      EXPECT_EQ(inside_mapping_of(buffer->data(), file.path), on_boundary);
      if (on_boundary)
        expected_mapped += w->desc.bytes();
    }
    EXPECT_EQ(mapped->mapped_weight_bytes(), expected_mapped);
    EXPECT_GT(mapped->mapped_weight_bytes(), 0u);
    EXPECT_LT(mapped->mapped_weight_bytes(), mapped->weight_bytes());
    const std::vector<float> a = logits_of(*mapped), b = logits_of(*copied);
    ASSERT_EQ(a.size(), static_cast<std::size_t>(kVocab));
    EXPECT_EQ(a, b);
  }
  std::remove(file.path.c_str());
}

// A weight used in place cannot be written (the mapping is PROT_READ: a write would fault), and
// the file's bytes stay as they were.
TEST(ModelZeroCopy, WritesIntoAMappedWeightAreRefused) {
  const TinyFile file = write_tiny(32);
  auto registry = testing::load_registry();  // outlives the models' devices
  ASSERT_NE(registry, nullptr);
  for (const char* device : kHostDevices) {
    SCOPED_TRACE(device);
    auto model = load(*registry, file.path, device, /*map_weights=*/true);
    ASSERT_TRUE(model);
    const Weight* w = model->weight("blk.0.ffn_down.weight");
    std::vector<float> before(kD * kD), zeros(kD * kD, 0.f), after(kD * kD);
    ASSERT_TRUE(w->buffer->download(0, before.data(), before.size() * 4).is_ok());
    const Status s = w->buffer->upload(0, zeros.data(), zeros.size() * 4);
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.to_string();
    ASSERT_TRUE(w->buffer->download(0, after.data(), after.size() * 4).is_ok());
    EXPECT_EQ(before, after);
  }
  std::remove(file.path.c_str());
}

}  // namespace
}  // namespace halyard::runtime
