// Builds GGUF images in memory for tests: valid ones, and malformed ones by editing the bytes.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "halyard/hal/tensor.h"

namespace halyard::testing {

class GgufWriter {
 public:
  void add_u32(const std::string& key, std::uint32_t v) { kv(key, 4, &v, 4); }
  void add_i32(const std::string& key, std::int32_t v) { kv(key, 5, &v, 4); }
  void add_f32(const std::string& key, float v) { kv(key, 6, &v, 4); }
  void add_bool(const std::string& key, bool v) {
    const std::uint8_t b = v ? 1 : 0;
    kv(key, 7, &b, 1);
  }
  void add_string(const std::string& key, const std::string& v) {
    put_string(meta_, key);
    put<std::uint32_t>(meta_, 8);
    put_string(meta_, v);
    ++n_kv_;
  }
  void add_string_array(const std::string& key, const std::vector<std::string>& v) {
    put_string(meta_, key);
    put<std::uint32_t>(meta_, 9);
    put<std::uint32_t>(meta_, 8);
    put<std::uint64_t>(meta_, v.size());
    for (const auto& s : v)
      put_string(meta_, s);
    ++n_kv_;
  }
  void add_i32_array(const std::string& key, const std::vector<std::int32_t>& v) {
    array(key, 5, v.data(), v.size(), 4);
  }
  void add_f32_array(const std::string& key, const std::vector<float>& v) { array(key, 6, v.data(), v.size(), 4); }

  // Writes general.alignment and lays out the tensor data by it (the default is GGUF's 32, and
  // then no key is written). Call it before adding tensors: their offsets are fixed as they are added.
  void set_alignment(std::uint32_t alignment) {
    add_u32("general.alignment", alignment);
    alignment_ = alignment;
  }

  // Adds a tensor; `data` must hold desc.bytes() bytes.
  void add_tensor(const std::string& name, const TensorDesc& desc, const void* data) {
    int dims = 4;
    while (dims > 1 && desc.ne[static_cast<std::size_t>(dims - 1)] == 1)
      --dims;
    put_string(infos_, name);
    put<std::uint32_t>(infos_, static_cast<std::uint32_t>(dims));
    for (int d = 0; d < dims; ++d)
      put<std::uint64_t>(infos_, static_cast<std::uint64_t>(desc.ne[static_cast<std::size_t>(d)]));
    put<std::uint32_t>(infos_, static_cast<std::uint32_t>(desc.dtype));
    put<std::uint64_t>(infos_, data_.size());
    const auto* p = static_cast<const std::uint8_t*>(data);
    data_.insert(data_.end(), p, p + desc.bytes());
    pad(data_);
    ++n_tensors_;
  }

  // Adds a tensor of any GGUF type id (also ones Halyard does not know) with the given raw data.
  void add_raw_tensor(const std::string& name, const std::vector<std::uint64_t>& ne, std::uint32_t type_id,
                      const std::vector<std::uint8_t>& raw) {
    put_string(infos_, name);
    put<std::uint32_t>(infos_, static_cast<std::uint32_t>(ne.size()));
    for (std::uint64_t n : ne)
      put<std::uint64_t>(infos_, n);
    put<std::uint32_t>(infos_, type_id);
    put<std::uint64_t>(infos_, data_.size());
    data_.insert(data_.end(), raw.begin(), raw.end());
    pad(data_);
    ++n_tensors_;
  }

  std::vector<std::uint8_t> bytes(std::uint32_t version = 3) const {
    std::vector<std::uint8_t> out;
    put<std::uint32_t>(out, 0x46554747);
    put<std::uint32_t>(out, version);
    put<std::uint64_t>(out, n_tensors_);
    put<std::uint64_t>(out, n_kv_);
    out.insert(out.end(), meta_.begin(), meta_.end());
    out.insert(out.end(), infos_.begin(), infos_.end());
    pad(out);
    out.insert(out.end(), data_.begin(), data_.end());
    return out;
  }
  // Offset of the first tensor info in bytes(): where a test can corrupt tensor fields.
  std::size_t tensor_infos_offset() const { return 24 + meta_.size(); }
  // Where the header (metadata and tensor infos) ends in bytes(), before the padding that
  // aligns the tensor data.
  std::size_t header_size() const { return tensor_infos_offset() + infos_.size(); }
  // Where the tensor data starts in bytes().
  std::size_t data_offset() const { return (header_size() + alignment_ - 1) / alignment_ * alignment_; }

  template <typename T>
  static void put(std::vector<std::uint8_t>& out, T v) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
    out.insert(out.end(), p, p + sizeof(T));
  }

 private:
  static void put_string(std::vector<std::uint8_t>& out, const std::string& s) {
    put<std::uint64_t>(out, s.size());
    out.insert(out.end(), s.begin(), s.end());
  }
  void pad(std::vector<std::uint8_t>& out) const {
    while (out.size() % alignment_)
      out.push_back(0);
  }
  void kv(const std::string& key, std::uint32_t type, const void* v, std::size_t n) {
    put_string(meta_, key);
    put<std::uint32_t>(meta_, type);
    const auto* p = static_cast<const std::uint8_t*>(v);
    meta_.insert(meta_.end(), p, p + n);
    ++n_kv_;
  }
  void array(const std::string& key, std::uint32_t type, const void* v, std::size_t count, std::size_t es) {
    put_string(meta_, key);
    put<std::uint32_t>(meta_, 9);
    put<std::uint32_t>(meta_, type);
    put<std::uint64_t>(meta_, count);
    const auto* p = static_cast<const std::uint8_t*>(v);
    meta_.insert(meta_.end(), p, p + count * es);
    ++n_kv_;
  }

  std::vector<std::uint8_t> meta_, infos_, data_;
  std::uint64_t n_kv_ = 0, n_tensors_ = 0;
  std::uint32_t alignment_ = 32;
};

}  // namespace halyard::testing
