#include "halyard/runtime/gguf_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace halyard::runtime {
namespace {

constexpr std::uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr std::uint32_t kGgufVersion = 3;
constexpr std::size_t kBufferBytes = std::size_t{1} << 20;

// Unavailable, as for any output that cannot be written; a full disk (or a file-size limit)
// gets advice, since it is the user's to fix, not a bug.
Status io_error(const std::string& what, const std::string& path, int err) {
  std::string msg = what + " '" + path + "': " + std::strerror(err);
  if (err == ENOSPC || err == EFBIG || err == EDQUOT)
    msg += " (free some disk space or choose another output path)";
  return unavailable(msg);
}

int dims_of(const TensorDesc& d) {
  int n = kMaxDims;
  while (n > 1 && d.ne[static_cast<std::size_t>(n - 1)] == 1)
    --n;
  return n;
}

}  // namespace

GgufStreamWriter::~GgufStreamWriter() {
  if (!finished_)
    discard();
}

void GgufStreamWriter::discard() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!tmp_path_.empty()) {
    ::unlink(tmp_path_.c_str());
    tmp_path_.clear();
  }
}

Status GgufStreamWriter::add_metadata(std::string key, GgufValue value) {
  if (begun_)
    return failed_precondition("GGUF writer: metadata '" + key + "' added after begin()");
  for (const auto& [k, v] : metadata_) {
    if (k == key)
      return invalid_argument("GGUF writer: duplicate metadata key '" + key + "'");
  }
  if (const auto* arr = value.as_array(); arr && arr->type == GgufType::kArray)
    return unimplemented("GGUF writer: metadata '" + key + "' is a nested array, which Halyard does not copy");
  if (key == "general.alignment") {
    const auto a = value.as_int();
    if (!a || *a <= 0 || (*a & (*a - 1)) != 0)
      return invalid_argument("GGUF writer: general.alignment must be a power of two");
    if (!tensors_.empty())
      return failed_precondition("GGUF writer: general.alignment must be set before any tensor");
    alignment_ = static_cast<std::uint64_t>(*a);
  }
  metadata_.emplace_back(std::move(key), std::move(value));
  return Status::ok();
}

Status GgufStreamWriter::add_tensor(std::string name, const TensorDesc& desc) {
  if (begun_)
    return failed_precondition("GGUF writer: tensor '" + name + "' added after begin()");
  const auto& info = dtype_info(desc.dtype);
  if (desc.ne[0] <= 0 || desc.ne[0] % info.block_elements != 0) {
    return invalid_argument("GGUF writer: tensor '" + name + "' has rows of " + std::to_string(desc.ne[0]) +
                            " elements, not a multiple of " + std::string(info.name) + "'s block of " +
                            std::to_string(info.block_elements));
  }
  for (std::int64_t n : desc.ne) {
    if (n <= 0)
      return invalid_argument("GGUF writer: tensor '" + name + "' has a dimension <= 0");
  }
  for (const auto& t : tensors_) {
    if (t.name == name)
      return invalid_argument("GGUF writer: duplicate tensor name '" + name + "'");
  }
  Tensor t;
  t.name = std::move(name);
  t.desc = desc;
  t.offset = data_bytes_;
  t.bytes = desc.bytes();
  data_bytes_ += (t.bytes + alignment_ - 1) / alignment_ * alignment_;
  tensors_.push_back(std::move(t));
  return Status::ok();
}

Status GgufStreamWriter::flush_buffer() {
  std::size_t done = 0;
  while (done < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return io_error("writing", tmp_path_, errno);
    }
    done += static_cast<std::size_t>(n);
  }
  buffer_.clear();
  return Status::ok();
}

Status GgufStreamWriter::put(const void* data, std::size_t n) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  while (n > 0) {
    const std::size_t room = kBufferBytes - buffer_.size();
    const std::size_t take = n < room ? n : room;
    buffer_.insert(buffer_.end(), p, p + take);
    p += take;
    n -= take;
    written_ += take;
    if (buffer_.size() == kBufferBytes)
      HALYARD_RETURN_IF_ERROR(flush_buffer());
  }
  return Status::ok();
}

Status GgufStreamWriter::put_string(std::string_view s) {
  const std::uint64_t n = s.size();
  HALYARD_RETURN_IF_ERROR(put(&n, sizeof n));
  return put(s.data(), s.size());
}

Status GgufStreamWriter::put_value(const GgufValue& v) {
  auto as_u = [&]() -> std::uint64_t {
    if (const auto* u = std::get_if<std::uint64_t>(&v.value))
      return *u;
    if (const auto* i = std::get_if<std::int64_t>(&v.value))
      return static_cast<std::uint64_t>(*i);
    if (const auto* b = std::get_if<bool>(&v.value))
      return *b ? 1 : 0;
    return 0;
  };
  auto as_f = [&]() -> double {
    if (const auto* d = std::get_if<double>(&v.value))
      return *d;
    return 0;
  };
  switch (v.type) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kBool: {
      const auto x = static_cast<std::uint8_t>(as_u());
      return put(&x, 1);
    }
    case GgufType::kU16:
    case GgufType::kI16: {
      const auto x = static_cast<std::uint16_t>(as_u());
      return put(&x, 2);
    }
    case GgufType::kU32:
    case GgufType::kI32: {
      const auto x = static_cast<std::uint32_t>(as_u());
      return put(&x, 4);
    }
    case GgufType::kU64:
    case GgufType::kI64: {
      const std::uint64_t x = as_u();
      return put(&x, 8);
    }
    case GgufType::kF32: {
      const auto x = static_cast<float>(as_f());
      return put(&x, 4);
    }
    case GgufType::kF64: {
      const double x = as_f();
      return put(&x, 8);
    }
    case GgufType::kString: {
      const auto s = v.as_string();
      return put_string(s ? *s : std::string_view{});
    }
    case GgufType::kArray: {
      const auto* arr = v.as_array();
      if (!arr)
        return internal_error("GGUF writer: array value without array data");
      const auto et = static_cast<std::uint32_t>(arr->type);
      HALYARD_RETURN_IF_ERROR(put(&et, 4));
      HALYARD_RETURN_IF_ERROR(put(&arr->count, 8));
      if (arr->type == GgufType::kString) {
        if (arr->strings.size() != arr->count)
          return invalid_argument("GGUF writer: string array count differs from its strings");
        for (auto s : arr->strings)
          HALYARD_RETURN_IF_ERROR(put_string(s));
        return Status::ok();
      }
      const std::size_t es = gguf_scalar_size(arr->type);
      if (es == 0)
        return unimplemented("GGUF writer: arrays of this element type are not written");
      if (arr->count > 0 && arr->data == nullptr)
        return invalid_argument("GGUF writer: array without data");
      return put(arr->data, static_cast<std::size_t>(arr->count) * es);
    }
  }
  return invalid_argument("GGUF writer: unknown value type " + std::to_string(static_cast<std::uint32_t>(v.type)));
}

Status GgufStreamWriter::pad_to_alignment() {
  static const std::uint8_t kZeros[256] = {};
  std::uint64_t pad = (alignment_ - written_ % alignment_) % alignment_;
  while (pad > 0) {
    const std::size_t n = pad < sizeof kZeros ? static_cast<std::size_t>(pad) : sizeof kZeros;
    HALYARD_RETURN_IF_ERROR(put(kZeros, n));
    pad -= n;
  }
  return Status::ok();
}

Status GgufStreamWriter::begin(const std::string& path) {
  if (begun_)
    return failed_precondition("GGUF writer: begin() called twice");
  begun_ = true;
  path_ = path;
  tmp_path_ = path + ".tmp";
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    const int err = errno;
    tmp_path_.clear();  // not ours: nothing to remove
    return io_error("cannot create", path + ".tmp", err);
  }
  buffer_.reserve(kBufferBytes);
  HALYARD_RETURN_IF_ERROR(put(&kGgufMagic, 4));
  HALYARD_RETURN_IF_ERROR(put(&kGgufVersion, 4));
  const std::uint64_t n_tensors = tensors_.size();
  const std::uint64_t n_kv = metadata_.size();
  HALYARD_RETURN_IF_ERROR(put(&n_tensors, 8));
  HALYARD_RETURN_IF_ERROR(put(&n_kv, 8));
  for (const auto& [key, value] : metadata_) {
    HALYARD_RETURN_IF_ERROR(put_string(key));
    const auto type = static_cast<std::uint32_t>(value.type);
    HALYARD_RETURN_IF_ERROR(put(&type, 4));
    HALYARD_RETURN_IF_ERROR(put_value(value));
  }
  for (const auto& t : tensors_) {
    HALYARD_RETURN_IF_ERROR(put_string(t.name));
    const auto dims = static_cast<std::uint32_t>(dims_of(t.desc));
    HALYARD_RETURN_IF_ERROR(put(&dims, 4));
    for (std::uint32_t d = 0; d < dims; ++d) {
      const auto n = static_cast<std::uint64_t>(t.desc.ne[d]);
      HALYARD_RETURN_IF_ERROR(put(&n, 8));
    }
    const auto type = static_cast<std::uint32_t>(t.desc.dtype);
    HALYARD_RETURN_IF_ERROR(put(&type, 4));
    HALYARD_RETURN_IF_ERROR(put(&t.offset, 8));
  }
  return pad_to_alignment();
}

Status GgufStreamWriter::write_tensor_data(const void* data, std::size_t bytes) {
  if (!begun_ || fd_ < 0)
    return failed_precondition("GGUF writer: write_tensor_data() before begin()");
  if (next_tensor_ >= tensors_.size())
    return failed_precondition("GGUF writer: more tensor data than tensors declared");
  const Tensor& t = tensors_[next_tensor_];
  if (bytes != t.bytes) {
    return invalid_argument("GGUF writer: tensor '" + t.name + "' needs " + std::to_string(t.bytes) + " bytes, got " +
                            std::to_string(bytes));
  }
  HALYARD_RETURN_IF_ERROR(put(data, bytes));
  HALYARD_RETURN_IF_ERROR(pad_to_alignment());
  ++next_tensor_;
  return Status::ok();
}

Status GgufStreamWriter::finish() {
  if (!begun_ || fd_ < 0)
    return failed_precondition("GGUF writer: finish() before begin()");
  if (next_tensor_ != tensors_.size()) {
    return failed_precondition("GGUF writer: finish() after " + std::to_string(next_tensor_) + " of " +
                               std::to_string(tensors_.size()) + " tensors");
  }
  HALYARD_RETURN_IF_ERROR(flush_buffer());
  if (::fsync(fd_) != 0)
    return io_error("syncing", tmp_path_, errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0)
    return io_error("closing", tmp_path_, errno);
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0)
    return io_error("cannot rename " + tmp_path_ + " to", path_, errno);
  tmp_path_.clear();
  finished_ = true;
  return Status::ok();
}

}  // namespace halyard::runtime
