// A GGUF v2/v3 reader. Maps the file read-only and validates every count, length, offset and
// size before anything uses it: a corrupt or truncated file is a DataLoss error, never a crash.
// Tensors of dtypes Halyard cannot run are recorded as unsupported (no data pointer) for the
// model loader to report. Spec: docs/gguf.md of the ggml repository.
// Ownership: string_views and tensor data pointers point into the mapping and live as long as
// the GgufFile. Thread safety: immutable after open; read from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "halyard/hal/status.h"
#include "halyard/hal/tensor.h"

namespace halyard::runtime {

enum class GgufType : std::uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

// Bytes of one value of a fixed-size type; 0 for strings, arrays and unknown ids.
std::size_t gguf_scalar_size(GgufType type);

struct GgufArray {
  GgufType type = GgufType::kU8;
  std::uint64_t count = 0;
  const std::uint8_t* data = nullptr;     // fixed-size element types: count elements, packed
  std::vector<std::string_view> strings;  // string arrays
};

struct GgufValue {
  GgufType type = GgufType::kU8;
  std::variant<std::uint64_t, std::int64_t, double, bool, std::string_view, GgufArray> value;

  std::optional<std::int64_t> as_int() const;
  std::optional<double> as_float() const;
  std::optional<std::string_view> as_string() const;
  const GgufArray* as_array() const { return std::get_if<GgufArray>(&value); }
};

struct GgufTensor {
  std::string name;
  TensorDesc desc;             // desc.dtype is meaningful only when `supported`
  std::uint64_t offset = 0;    // relative to the data section
  const void* data = nullptr;  // inside the mapping; nullptr when not `supported`
  std::uint32_t type_id = 0;   // the GGUF (ggml) type id the file gives
  // False for a dtype Halyard cannot run (a K-quant, i8, ...): the file still parses so the
  // model loader can say what is unsupported, but such a tensor's data must not be read (its
  // size is not validated).
  bool supported = true;
};

// GGUF's name of a tensor type id with the id, e.g. "q6_k (id 14)"; "unknown (id 99)" for an
// id ggml does not define.
std::string gguf_dtype_label(std::uint32_t id);

// Whether GgufFile insists that every tensor's data lies inside the file.
enum class GgufTensorData {
  // A model: a tensor whose data runs past the end is a data-loss error (truncated or corrupt).
  kRequired,
  // Only the header is wanted (the tokenizer, the chat template) from a file whose tensor data
  // may be cut off, such as the first part of a split download. Tensors past the end keep
  // data == nullptr and tensor_data_complete() is false. Model::load never opens a file so, so a
  // truncated file cannot become a model.
  kHeaderOnly,
};

class GgufFile {
 public:
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  static Result<std::unique_ptr<GgufFile>> open(const std::string& path,
                                                GgufTensorData data = GgufTensorData::kRequired);
  // Parses an in-memory image (copied); used by tests and fuzzers.
  static Result<std::unique_ptr<GgufFile>> from_bytes(std::vector<std::uint8_t> bytes,
                                                      GgufTensorData data = GgufTensorData::kRequired);

  std::uint32_t version() const { return version_; }
  const std::map<std::string, GgufValue, std::less<>>& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;
  std::optional<std::int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<std::string_view> get_string(std::string_view key) const;

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find_tensor(std::string_view name) const;
  std::size_t file_size() const { return size_; }
  // False when opened kHeaderOnly and some tensor's data lies past the end of the file.
  bool tensor_data_complete() const { return tensor_data_complete_; }

 private:
  GgufFile() = default;
  Status parse(GgufTensorData data);

  std::string path_;
  const std::uint8_t* base_ = nullptr;
  std::size_t size_ = 0;
  bool mapped_ = false;
  std::vector<std::uint8_t> owned_;
  std::uint32_t version_ = 0;
  bool tensor_data_complete_ = true;
  std::map<std::string, GgufValue, std::less<>> metadata_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, std::size_t, std::less<>> tensor_index_;
};

}  // namespace halyard::runtime
