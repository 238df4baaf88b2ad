// A streaming GGUF v3 writer: metadata and tensor infos are declared first, then each tensor's
// data is written in declaration order, so only one tensor need be in memory at a time. The
// file is written to PATH.tmp and renamed to PATH by finish(); a writer destroyed before
// finish() (an error on the way, or out of disk) removes PATH.tmp, so no partial file is left.
// A file that cannot be created or written (a full disk included) is an Unavailable error.
// Layout per the GGUF spec (docs/gguf.md of the ggml repository): tensor data starts at the next
// multiple of general.alignment (default 32) after the tensor infos and every tensor's offset
// is a multiple of it.
// Values reuse the reader's types (gguf.h): string_views and array data they point to must stay
// alive until finish() returns. Thread safety: none; use one writer from one thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "halyard/hal/status.h"
#include "halyard/runtime/gguf.h"

namespace halyard::runtime {

class GgufStreamWriter {
 public:
  GgufStreamWriter() = default;
  ~GgufStreamWriter();  // removes PATH.tmp unless finish() succeeded
  GgufStreamWriter(const GgufStreamWriter&) = delete;
  GgufStreamWriter& operator=(const GgufStreamWriter&) = delete;

  // Declares a metadata entry; entries are written in the order added. A duplicate key is an
  // error. "general.alignment" must be an integer power of two; it sets the data alignment.
  // Nested arrays (which the reader does not keep) are refused.
  Status add_metadata(std::string key, GgufValue value);
  // Declares a tensor of a dtype Halyard knows. ne[0] must be a multiple of the dtype's block.
  // n_dims is taken from ne (trailing dims of 1 dropped, at least 1).
  Status add_tensor(std::string name, const TensorDesc& desc);

  // Creates PATH.tmp and writes the header, metadata and tensor infos. After it, no more
  // metadata or tensors can be declared.
  Status begin(const std::string& path);
  // Writes the next tensor's data (declaration order); `bytes` must equal its size.
  Status write_tensor_data(const void* data, std::size_t bytes);
  // After every tensor's data: flushes, syncs, closes and renames PATH.tmp to PATH.
  Status finish();

  std::uint64_t alignment() const { return alignment_; }
  // Bytes written so far; after finish(), the file's size.
  std::uint64_t bytes_written() const { return written_; }

 private:
  struct Tensor {
    std::string name;
    TensorDesc desc;
    std::uint64_t offset = 0;
    std::uint64_t bytes = 0;
  };
  Status put(const void* data, std::size_t n);
  Status flush_buffer();
  Status put_string(std::string_view s);
  Status put_value(const GgufValue& v);
  Status pad_to_alignment();
  void discard();

  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<Tensor> tensors_;
  std::uint64_t alignment_ = 32;
  std::uint64_t data_bytes_ = 0;  // data section size so far (tensor offsets, padded)

  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
  bool begun_ = false;
  bool finished_ = false;
  std::size_t next_tensor_ = 0;
  std::uint64_t written_ = 0;  // bytes handed to put() so far
  std::vector<std::uint8_t> buffer_;
};

}  // namespace halyard::runtime
