#include "halyard/runtime/gguf.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>

#include "gguf_writer.h"
#include "test_paths.h"

namespace halyard::runtime {
namespace {

using testing::GgufWriter;

GgufWriter small_file() {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_u32("llama.block_count", 2);
  w.add_f32("llama.rope.freq_base", 10000.f);
  w.add_string_array("tokenizer.ggml.tokens", {"a", "b", "c"});
  static const float data[64] = {1, 2, 3};
  w.add_tensor("w1", TensorDesc::make(DType::kF32, 8, 2), data);
  w.add_tensor("w2", TensorDesc::make(DType::kF32, 16), data);
  return w;
}

TEST(Gguf, ParsesAFileItWrote) {
  auto f = GgufFile::from_bytes(small_file().bytes());
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ(f.value()->version(), 3u);
  EXPECT_EQ(f.value()->get_string("general.architecture"), "llama");
  EXPECT_EQ(f.value()->get_int("llama.block_count"), 2);
  EXPECT_EQ(f.value()->get_float("llama.rope.freq_base"), 10000.0);
  const auto* tokens = f.value()->find("tokenizer.ggml.tokens")->as_array();
  ASSERT_NE(tokens, nullptr);
  EXPECT_EQ(tokens->strings.size(), 3u);
  const GgufTensor* t = f.value()->find_tensor("w1");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->desc, TensorDesc::make(DType::kF32, 8, 2));
  EXPECT_EQ(static_cast<const float*>(t->data)[2], 3.f);
  EXPECT_EQ(f.value()->find_tensor("missing"), nullptr);
}

TEST(Gguf, AcceptsVersion2) {
  EXPECT_TRUE(GgufFile::from_bytes(small_file().bytes(2)).is_ok());
}

void expect_error(std::vector<std::uint8_t> bytes, StatusCode code, const std::string& fragment) {
  auto f = GgufFile::from_bytes(std::move(bytes));
  ASSERT_FALSE(f.is_ok());
  EXPECT_EQ(f.status().code(), code) << f.status().to_string();
  EXPECT_NE(f.status().message().find(fragment), std::string::npos) << f.status().to_string();
}

TEST(Gguf, BadMagic) {
  auto b = small_file().bytes();
  b[0] = 'X';
  expect_error(b, StatusCode::kDataLoss, "bad magic");
}

TEST(Gguf, UnsupportedVersion) {
  expect_error(small_file().bytes(1), StatusCode::kDataLoss, "version 1");
}

TEST(Gguf, TruncatedHeader) {
  auto b = small_file().bytes();
  b.resize(10);
  expect_error(b, StatusCode::kDataLoss, "truncated");
}

TEST(Gguf, TensorPastEndOfFile) {
  auto b = small_file().bytes();
  b.resize(b.size() - 40);  // cut into the tensor data
  expect_error(b, StatusCode::kDataLoss, "past the end of the file");
}

TEST(Gguf, AbsurdCounts) {
  auto b = small_file().bytes();
  const std::uint64_t huge = std::uint64_t{1} << 60;
  std::memcpy(b.data() + 16, &huge, 8);  // metadata count
  expect_error(b, StatusCode::kDataLoss, "metadata count");
  b = small_file().bytes();
  std::memcpy(b.data() + 8, &huge, 8);  // tensor count
  expect_error(b, StatusCode::kDataLoss, "tensor count");
}

TEST(Gguf, AbsurdStringLength) {
  GgufWriter w;
  w.add_string("general.name", "x");
  auto b = w.bytes();
  const std::uint64_t huge = std::uint64_t{1} << 62;
  std::memcpy(b.data() + 24, &huge, 8);  // length of the first key
  expect_error(b, StatusCode::kDataLoss, "claims");
}

// A dtype Halyard cannot run parses (the model loader reports it with the architecture known),
// but the tensor is marked unsupported and has no data pointer: its size cannot be validated.
TEST(Gguf, UnknownDtypeIsRecordedNotRead) {
  GgufWriter w;
  static const float data[8] = {};
  w.add_tensor("t", TensorDesc::make(DType::kF32, 8), data);
  auto b = w.bytes();
  // tensor info: name (8 + 1), n_dims (4), ne0 (8), then the type
  const std::size_t type_at = w.tensor_infos_offset() + 9 + 4 + 8;
  const std::uint32_t bogus = 99;
  std::memcpy(b.data() + type_at, &bogus, 4);
  auto f = GgufFile::from_bytes(b);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  const GgufTensor* t = f.value()->find_tensor("t");
  ASSERT_NE(t, nullptr);
  EXPECT_FALSE(t->supported);
  EXPECT_EQ(t->type_id, 99u);
  EXPECT_EQ(t->data, nullptr);
  EXPECT_TRUE(f.value()->find_tensor("t") == &f.value()->tensors()[0]);
}

TEST(Gguf, SupportedTensorsAreMarkedSo) {
  auto f = GgufFile::from_bytes(small_file().bytes());
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  for (const auto& t : f.value()->tensors()) {
    EXPECT_TRUE(t.supported) << t.name;
    EXPECT_EQ(t.type_id, 0u) << t.name;
    EXPECT_NE(t.data, nullptr) << t.name;
  }
}

// The offset of a tensor of unknown dtype is still checked: a corrupt file stays an error.
TEST(Gguf, UnsupportedTensorPastEndOfFileIsCorrupt) {
  GgufWriter w;
  w.add_raw_tensor("k", {256}, 14, std::vector<std::uint8_t>(210));
  auto b = w.bytes();
  const std::size_t offset_at = w.tensor_infos_offset() + 9 + 4 + 8 + 4;
  const std::uint64_t far = std::uint64_t{1} << 40;
  std::memcpy(b.data() + offset_at, &far, 8);
  expect_error(b, StatusCode::kDataLoss, "past the end of the file");
}

// A file aligned to `alignment` whose header ends where rounding up to GGUF's default 32 and to
// `alignment` give different data starts, so a reader that ignored general.alignment would read
// its tensors from the wrong place. w1 holds 1..8 and w2 holds 101..104.
GgufWriter aligned_file(std::uint32_t alignment) {
  for (std::size_t filler = 0; filler < alignment; ++filler) {
    GgufWriter w;
    w.set_alignment(alignment);
    w.add_string("general.name", std::string(filler, 'x'));
    static const float w1[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const float w2[4] = {101, 102, 103, 104};
    w.add_tensor("w1", TensorDesc::make(DType::kF32, 8), w1);
    w.add_tensor("w2", TensorDesc::make(DType::kF32, 4), w2);
    const std::size_t h = w.header_size();
    if ((h + 31) / 32 * 32 != w.data_offset())
      return w;
  }
  ADD_FAILURE() << "no filler gives a header that tells alignment " << alignment << " from 32";
  return GgufWriter{};
}

// Each tensor info in aligned_file(): name (8 + 2), n_dims (4), ne0 (8), type (4), offset (8).
constexpr std::size_t kAlignedInfoSize = 34;
constexpr std::size_t kAlignedOffsetField = 26;

TEST(Gguf, HonoursGeneralAlignment) {
  for (std::uint32_t alignment : {64u, 256u}) {
    const GgufWriter w = aligned_file(alignment);
    auto f = GgufFile::from_bytes(w.bytes());
    ASSERT_TRUE(f.is_ok()) << f.status().to_string();
    const GgufTensor* w1 = f.value()->find_tensor("w1");
    const GgufTensor* w2 = f.value()->find_tensor("w2");
    ASSERT_NE(w1, nullptr);
    ASSERT_NE(w2, nullptr);
    EXPECT_EQ(w2->offset, alignment);
    for (int i = 0; i < 8; ++i)
      EXPECT_EQ(static_cast<const float*>(w1->data)[i], static_cast<float>(i + 1)) << "alignment " << alignment;
    for (int i = 0; i < 4; ++i)
      EXPECT_EQ(static_cast<const float*>(w2->data)[i], static_cast<float>(101 + i)) << "alignment " << alignment;
  }
}

TEST(Gguf, AlignmentThatIsNotAPowerOfTwoIsRefused) {
  for (std::uint32_t bad : {0u, 48u, 96u}) {
    GgufWriter w;
    w.add_u32("general.alignment", bad);
    static const float data[8] = {};
    w.add_tensor("t", TensorDesc::make(DType::kF32, 8), data);
    expect_error(w.bytes(), StatusCode::kDataLoss, "general.alignment must be a power of two");
  }
}

TEST(Gguf, TensorOffsetNotAMultipleOfTheAlignmentIsRefused) {
  const GgufWriter w = aligned_file(64);
  auto b = w.bytes();
  // w2 at data offset 32: a multiple of the default 32, not of the file's 64, and inside the file.
  const std::uint64_t misaligned = 32;
  std::memcpy(b.data() + w.tensor_infos_offset() + kAlignedInfoSize + kAlignedOffsetField, &misaligned, 8);
  expect_error(b, StatusCode::kDataLoss, "tensor 'w2' offset is not aligned");
}

TEST(Gguf, DuplicateTensorNameIsRefused) {
  GgufWriter w;
  static const float data[8] = {};
  w.add_tensor("w", TensorDesc::make(DType::kF32, 8), data);
  w.add_tensor("w", TensorDesc::make(DType::kF32, 8), data);
  expect_error(w.bytes(), StatusCode::kDataLoss, "duplicate tensor name 'w'");
}

// The header is whole but the padding before the data section is cut off.
TEST(Gguf, FileThatEndsBeforeItsTensorDataIsRefused) {
  const GgufWriter w = aligned_file(64);
  ASSERT_LT(w.header_size(), w.data_offset());
  auto b = w.bytes();
  b.resize(w.header_size());
  expect_error(b, StatusCode::kDataLoss, "file ends before its tensor data");
}

// The last tensor may end the file (no trailing padding); one byte less is truncation.
TEST(Gguf, FileMayEndExactlyAtTheEndOfItsLastTensor) {
  const GgufWriter w = aligned_file(64);
  auto b = w.bytes();
  const std::size_t end = w.data_offset() + 64 + 4 * sizeof(float);  // w2: 4 floats at data offset 64
  ASSERT_LT(end, b.size());
  b.resize(end);
  auto f = GgufFile::from_bytes(b);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ(static_cast<const float*>(f.value()->find_tensor("w2")->data)[3], 104.f);
  b.resize(end - 1);
  expect_error(b, StatusCode::kDataLoss, "tensor 'w2' (16 bytes at data offset 64) lies past the end of the file");
}

// The first part of a split download: header whole, data cut off. As a model it is refused (the
// test above); header-only, its metadata reads, the whole tensors keep their data and the cut
// ones have none.
TEST(Gguf, HeaderOnlyOpensAFileWhoseTensorDataIsCutOff) {
  const GgufWriter w = aligned_file(64);
  auto b = w.bytes();
  b.resize(w.data_offset() + 64 + 4);  // w1 whole, w2 (4 floats at data offset 64) cut after 1
  auto f = GgufFile::from_bytes(b, GgufTensorData::kHeaderOnly);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_FALSE(f.value()->tensor_data_complete());
  EXPECT_EQ(f.value()->tensors().size(), 2u);
  EXPECT_NE(f.value()->find_tensor("w1")->data, nullptr);
  EXPECT_EQ(f.value()->find_tensor("w2")->data, nullptr);
  // Only the header: every tensor is past the end.
  b.resize(w.header_size());
  f = GgufFile::from_bytes(b, GgufTensorData::kHeaderOnly);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_FALSE(f.value()->tensor_data_complete());
  EXPECT_EQ(f.value()->find_tensor("w1")->data, nullptr);
  // A whole file opened header-only is complete.
  f = GgufFile::from_bytes(w.bytes(), GgufTensorData::kHeaderOnly);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_TRUE(f.value()->tensor_data_complete());
  EXPECT_NE(f.value()->find_tensor("w2")->data, nullptr);
}

TEST(Gguf, DtypeLabelsUseGgufNames) {
  EXPECT_EQ(gguf_dtype_label(0), "f32 (id 0)");
  EXPECT_EQ(gguf_dtype_label(12), "q4_k (id 12)");
  EXPECT_EQ(gguf_dtype_label(14), "q6_k (id 14)");
  EXPECT_EQ(gguf_dtype_label(23), "iq4_xs (id 23)");
  EXPECT_EQ(gguf_dtype_label(30), "bf16 (id 30)");
  EXPECT_EQ(gguf_dtype_label(39), "mxfp4 (id 39)");
  EXPECT_EQ(gguf_dtype_label(4), "unknown (id 4)");  // Q4_2, retired
  EXPECT_EQ(gguf_dtype_label(99), "unknown (id 99)");
}

TEST(Gguf, TooManyDimensions) {
  GgufWriter w;
  static const float data[8] = {};
  w.add_tensor("t", TensorDesc::make(DType::kF32, 8), data);
  auto b = w.bytes();
  const std::uint32_t dims = 7;
  std::memcpy(b.data() + w.tensor_infos_offset() + 9, &dims, 4);
  expect_error(b, StatusCode::kDataLoss, "dimensions");
}

TEST(Gguf, EveryTruncationIsAnErrorNotACrash) {
  const auto full = small_file().bytes();
  for (std::size_t n = 0; n < full.size(); ++n) {
    auto f =
        GgufFile::from_bytes(std::vector<std::uint8_t>(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n)));
    EXPECT_FALSE(f.is_ok()) << "a file cut at " << n << " bytes parsed";
  }
}

TEST(Gguf, MissingFileIsNotFound) {
  auto f = GgufFile::open("/nonexistent/model.gguf");
  ASSERT_FALSE(f.is_ok());
  EXPECT_EQ(f.status().code(), StatusCode::kNotFound);
}

// A FIFO as the model once blocked forever in open() (waiting for a writer). The load runs on
// a thread; should it block, the test opens the FIFO's write end so the thread can finish,
// then fails, rather than hanging the suite.
TEST(Gguf, FifoIsRefusedWithoutBlocking) {
  const std::string dir = ::testing::TempDir() + "/gguf_fifo_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/model.gguf";
  std::filesystem::remove(path);
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0) << std::strerror(errno);
  auto load = std::async(std::launch::async, [&] { return GgufFile::open(path); });
  const bool finished = load.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  if (!finished) {
    // Unblock the reader: a writer that opens and closes the FIFO lets its open() return.
    for (int i = 0; i < 100 && load.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready; ++i) {
      const int w = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);
      if (w >= 0)
        ::close(w);
    }
  }
  auto f = load.get();
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(finished) << "GgufFile::open blocked on a FIFO";
  ASSERT_FALSE(f.is_ok());
  EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument) << f.status().to_string();
  EXPECT_NE(f.status().message().find("not a regular file"), std::string::npos) << f.status().to_string();
}

TEST(Gguf, DirectoryIsAClearError) {
  auto f = GgufFile::open(::testing::TempDir());
  ASSERT_FALSE(f.is_ok());
  EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument) << f.status().to_string();
  EXPECT_NE(f.status().message().find("is a directory"), std::string::npos) << f.status().to_string();
}

TEST(Gguf, ParsesTheRealModel) {
  const std::string path = testing::default_model_path();
  HALYARD_REQUIRE_MODEL(path);
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  const GgufFile& g = *f.value();
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.tensors().size(), 272u);
  EXPECT_EQ(g.get_string("general.architecture"), "llama");
  EXPECT_EQ(g.get_int("llama.block_count"), 30);
  EXPECT_EQ(g.get_string("tokenizer.ggml.pre"), "smollm");
  const GgufTensor* embd = g.find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->desc, TensorDesc::make(DType::kQ8_0, 576, 49152));
  EXPECT_EQ(g.find_tensor("blk.0.ffn_down.weight")->desc, TensorDesc::make(DType::kQ4_1, 1536, 576));
}

}  // namespace
}  // namespace halyard::runtime
