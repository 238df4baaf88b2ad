#include "halyard/runtime/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

namespace halyard::runtime {
namespace {

constexpr std::uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr std::uint64_t kDefaultAlignment = 32;
constexpr int kMaxArrayDepth = 4;

// Bounds-checked little-endian cursor over the file image.
class Cursor {
 public:
  Cursor(const std::uint8_t* base, std::size_t size) : base_(base), size_(size) {}
  std::size_t pos() const { return pos_; }
  std::size_t remaining() const { return size_ - pos_; }

  template <typename T>
  Result<T> read(const char* what) {
    if (remaining() < sizeof(T))
      return truncated(what);
    T v;
    std::memcpy(&v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  Result<std::string_view> read_string(const char* what) {
    HALYARD_ASSIGN_OR_RETURN(std::uint64_t len, read<std::uint64_t>(what));
    if (len > remaining()) {
      return data_loss(std::string("GGUF: ") + what + " claims " + std::to_string(len) + " bytes at offset " +
                       std::to_string(pos_) + " but only " + std::to_string(remaining()) + " remain");
    }
    std::string_view s(reinterpret_cast<const char*>(base_ + pos_), static_cast<std::size_t>(len));
    pos_ += static_cast<std::size_t>(len);
    return s;
  }
  Status skip(std::uint64_t n, const char* what) {
    if (n > remaining())
      return truncated(what);
    pos_ += static_cast<std::size_t>(n);
    return Status::ok();
  }
  const std::uint8_t* here() const { return base_ + pos_; }

 private:
  Status truncated(const char* what) const {
    return data_loss(std::string("GGUF: file truncated while reading ") + what + " at offset " + std::to_string(pos_));
  }
  const std::uint8_t* base_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

Result<GgufValue> read_value(Cursor& c, GgufType type, int depth, const std::string& key) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufType::kU8: {
      HALYARD_ASSIGN_OR_RETURN(auto x, c.read<std::uint8_t>("a u8 value"));
      v.value = std::uint64_t{x};
      break;
    }
    case GgufType::kI8: {
      HALYARD_ASSIGN_OR_RETURN(auto x, c.read<std::int8_t>("an i8 value"));
      v.value = std::int64_t{x};
      break;
    }
    case GgufType::kU16: {
      HALYARD_ASSIGN_OR_RETURN(auto x, c.read<std::uint16_t>("a u16 value"));
      v.value = std::uint64_t{x};
      break;
    }
    case GgufType::kI16: {
      HALYARD_ASSIGN_OR_RETURN(auto x, c.read<std::int16_t>("an i16 value"));
      v.value = std::int64_t{x};
      break;
    }
    case GgufType::kU32: {
      HALYARD_ASSIGN_OR_RETURN(auto x, c.read<std::uint32_t>("a u32 value"));
      v.value = std::uint64_t{x};
      break;
    }
    case GgufType::kI32: {
      HALYARD_ASSIGN_OR_RETURN(auto x, c.read<std::int32_t>("an i32 value"));
      v.value = std::int64_t{x};
      break;
    }
    case GgufType::kU64: {
      HALYARD_ASSIGN_OR_RETURN(auto x, c.read<std::uint64_t>("a u64 value"));
      v.value = x;
      break;
    }
    case GgufType::kI64: {
      HALYARD_ASSIGN_OR_RETURN(auto x, c.read<std::int64_t>("an i64 value"));
      v.value = x;
      break;
    }
    case GgufType::kF32: {
      HALYARD_ASSIGN_OR_RETURN(auto x, c.read<float>("an f32 value"));
      v.value = double{x};
      break;
    }
    case GgufType::kF64: {
      HALYARD_ASSIGN_OR_RETURN(auto x, c.read<double>("an f64 value"));
      v.value = x;
      break;
    }
    case GgufType::kBool: {
      HALYARD_ASSIGN_OR_RETURN(auto x, c.read<std::uint8_t>("a bool value"));
      if (x > 1)
        return data_loss("GGUF: metadata '" + key + "' holds a bool that is neither 0 nor 1");
      v.value = x == 1;
      break;
    }
    case GgufType::kString: {
      HALYARD_ASSIGN_OR_RETURN(auto s, c.read_string("a string value"));
      v.value = s;
      break;
    }
    case GgufType::kArray: {
      if (depth >= kMaxArrayDepth)
        return data_loss("GGUF: metadata '" + key + "' nests arrays too deeply");
      HALYARD_ASSIGN_OR_RETURN(auto raw_type, c.read<std::uint32_t>("an array element type"));
      HALYARD_ASSIGN_OR_RETURN(auto count, c.read<std::uint64_t>("an array length"));
      GgufArray arr;
      arr.type = static_cast<GgufType>(raw_type);
      arr.count = count;
      if (raw_type > static_cast<std::uint32_t>(GgufType::kF64)) {
        return data_loss("GGUF: metadata '" + key + "' has unknown array element type " + std::to_string(raw_type));
      }
      if (const std::size_t es = gguf_scalar_size(arr.type)) {
        if (count > c.remaining() / es) {
          return data_loss("GGUF: array '" + key + "' claims " + std::to_string(count) +
                           " elements, more than the file holds");
        }
        arr.data = c.here();
        HALYARD_RETURN_IF_ERROR(c.skip(count * es, "array data"));
      } else if (arr.type == GgufType::kString) {
        if (count > c.remaining() / 8) {
          return data_loss("GGUF: string array '" + key + "' claims " + std::to_string(count) +
                           " elements, more than the file holds");
        }
        arr.strings.reserve(static_cast<std::size_t>(count));
        for (std::uint64_t i = 0; i < count; ++i) {
          HALYARD_ASSIGN_OR_RETURN(auto s, c.read_string("a string array element"));
          arr.strings.push_back(s);
        }
      } else {  // nested arrays: validated and skipped; no Halyard key uses them
        if (count > c.remaining() / 12)
          return data_loss("GGUF: nested array '" + key + "' is larger than the file");
        for (std::uint64_t i = 0; i < count; ++i) {
          HALYARD_ASSIGN_OR_RETURN(auto inner, read_value(c, GgufType::kArray, depth + 1, key));
          (void)inner;
        }
      }
      v.value = std::move(arr);
      break;
    }
    default:
      return data_loss("GGUF: metadata '" + key + "' has unknown value type " +
                       std::to_string(static_cast<std::uint32_t>(type)));
  }
  return v;
}

}  // namespace

std::size_t gguf_scalar_size(GgufType t) {
  switch (t) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kBool:
      return 1;
    case GgufType::kU16:
    case GgufType::kI16:
      return 2;
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kF32:
      return 4;
    case GgufType::kU64:
    case GgufType::kI64:
    case GgufType::kF64:
      return 8;
    default:
      return 0;
  }
}

std::optional<std::int64_t> GgufValue::as_int() const {
  if (auto* u = std::get_if<std::uint64_t>(&value)) {
    if (*u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return std::nullopt;
    return static_cast<std::int64_t>(*u);
  }
  if (auto* i = std::get_if<std::int64_t>(&value))
    return *i;
  if (auto* b = std::get_if<bool>(&value))
    return *b ? 1 : 0;
  return std::nullopt;
}

std::optional<double> GgufValue::as_float() const {
  if (auto* d = std::get_if<double>(&value))
    return *d;
  if (auto i = as_int())
    return static_cast<double>(*i);
  return std::nullopt;
}

std::optional<std::string_view> GgufValue::as_string() const {
  if (auto* s = std::get_if<std::string_view>(&value))
    return *s;
  return std::nullopt;
}

GgufFile::~GgufFile() {
  if (mapped_)
    ::munmap(const_cast<std::uint8_t*>(base_), size_);
}

Result<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path, GgufTensorData data) {
  // The file type is checked before open(): opening a FIFO for reading blocks until a writer
  // comes, and opening a device may have side effects. O_NONBLOCK covers the race where the path
  // is replaced by a FIFO between stat() and open(); fstat() then checks what was opened.
  const std::string not_regular =
      "'" + path +
      "' is not a regular file (a FIFO, socket or device cannot be a model): give the path of a .gguf file";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return not_found("cannot open model file '" + path + "': " + std::strerror(errno));
  if (S_ISDIR(st.st_mode))
    return invalid_argument("'" + path + "' is a directory, not a model file: give the path of a .gguf file");
  if (!S_ISREG(st.st_mode))
    return invalid_argument(not_regular);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return not_found("cannot open model file '" + path + "': " + std::strerror(errno));
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return invalid_argument(not_regular);
  }
  // Reads of regular files ignore O_NONBLOCK; cleared all the same so the descriptor is ordinary.
  if (const int flags = ::fcntl(fd, F_GETFL); flags >= 0)
    (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  auto file = std::unique_ptr<GgufFile>(new GgufFile());
  file->path_ = path;
  file->size_ = static_cast<std::size_t>(st.st_size);
  if (file->size_ == 0) {
    ::close(fd);
    return data_loss("GGUF: '" + path + "' is empty");
  }
  void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED)
    return resource_exhausted("cannot map '" + path + "': " + std::strerror(errno));
  file->base_ = static_cast<const std::uint8_t*>(p);
  file->mapped_ = true;
  if (Status s = file->parse(data); !s.is_ok())
    return Status(s.code(), s.message() + " (in " + path + ")");
  return file;
}

Result<std::unique_ptr<GgufFile>> GgufFile::from_bytes(std::vector<std::uint8_t> bytes, GgufTensorData data) {
  auto file = std::unique_ptr<GgufFile>(new GgufFile());
  file->owned_ = std::move(bytes);
  file->base_ = file->owned_.data();
  file->size_ = file->owned_.size();
  HALYARD_RETURN_IF_ERROR(file->parse(data));
  return file;
}

Status GgufFile::parse(GgufTensorData data) {
  Cursor c(base_, size_);
  HALYARD_ASSIGN_OR_RETURN(auto magic, c.read<std::uint32_t>("the magic"));
  if (magic != kMagic)
    return data_loss("GGUF: bad magic: this is not a GGUF file");
  HALYARD_ASSIGN_OR_RETURN(version_, c.read<std::uint32_t>("the version"));
  if (version_ != 2 && version_ != 3) {
    return data_loss("GGUF: version " + std::to_string(version_) + " is not supported (2 and 3 are)");
  }
  HALYARD_ASSIGN_OR_RETURN(auto n_tensors, c.read<std::uint64_t>("the tensor count"));
  HALYARD_ASSIGN_OR_RETURN(auto n_kv, c.read<std::uint64_t>("the metadata count"));
  // Each metadata entry takes at least 13 bytes and each tensor info at least 24: absurd counts
  // are caught before any allocation.
  if (n_kv > c.remaining() / 13)
    return data_loss("GGUF: metadata count " + std::to_string(n_kv) + " is larger than the file can hold");
  if (n_tensors > c.remaining() / 24)
    return data_loss("GGUF: tensor count " + std::to_string(n_tensors) + " is larger than the file can hold");

  for (std::uint64_t i = 0; i < n_kv; ++i) {
    HALYARD_ASSIGN_OR_RETURN(auto key, c.read_string("a metadata key"));
    HALYARD_ASSIGN_OR_RETURN(auto type, c.read<std::uint32_t>("a metadata type"));
    HALYARD_ASSIGN_OR_RETURN(auto value, read_value(c, static_cast<GgufType>(type), 0, std::string(key)));
    if (!metadata_.emplace(std::string(key), std::move(value)).second) {
      return data_loss("GGUF: duplicate metadata key '" + std::string(key) + "'");
    }
  }

  std::uint64_t alignment = kDefaultAlignment;
  if (const auto* a = find("general.alignment")) {
    const auto v = a->as_int();
    if (!v || *v <= 0 || (*v & (*v - 1)) != 0 || *v > 65536) {
      return data_loss("GGUF: general.alignment must be a power of two");
    }
    alignment = static_cast<std::uint64_t>(*v);
  }

  tensors_.reserve(static_cast<std::size_t>(n_tensors));
  for (std::uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    HALYARD_ASSIGN_OR_RETURN(auto name, c.read_string("a tensor name"));
    t.name = std::string(name);
    HALYARD_ASSIGN_OR_RETURN(auto n_dims, c.read<std::uint32_t>("tensor dimensions"));
    if (n_dims == 0 || n_dims > static_cast<std::uint32_t>(kMaxDims)) {
      return data_loss("GGUF: tensor '" + t.name + "' has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    }
    std::uint64_t elements = 1;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      HALYARD_ASSIGN_OR_RETURN(auto ne, c.read<std::uint64_t>("a tensor dimension"));
      if (ne == 0 || ne > (std::uint64_t{1} << 40) || elements > (std::uint64_t{1} << 50) / ne) {
        return data_loss("GGUF: tensor '" + t.name + "' has an absurd dimension " + std::to_string(ne));
      }
      elements *= ne;
      t.desc.ne[d] = static_cast<std::int64_t>(ne);
    }
    HALYARD_ASSIGN_OR_RETURN(auto type, c.read<std::uint32_t>("a tensor type"));
    // A dtype Halyard cannot run is recorded, not refused here: the model loader checks the
    // architecture first and then names every unsupported dtype in one message. Its block size
    // may be unknown, so its data size cannot be validated and its data pointer stays null.
    t.type_id = type;
    const auto info = dtype_info(type);
    t.supported = info && info->dtype != DType::kI32;
    if (t.supported) {
      t.desc.dtype = info->dtype;
      if (t.desc.ne[0] % info->block_elements != 0) {
        return data_loss("GGUF: tensor '" + t.name + "' row length is not a multiple of its " +
                         std::string(info->name) + " block");
      }
    }
    HALYARD_ASSIGN_OR_RETURN(t.offset, c.read<std::uint64_t>("a tensor offset"));
    if (t.offset % alignment != 0)
      return data_loss("GGUF: tensor '" + t.name + "' offset is not aligned");
    if (!tensor_index_.emplace(t.name, tensors_.size()).second) {
      return data_loss("GGUF: duplicate tensor name '" + t.name + "'");
    }
    tensors_.push_back(std::move(t));
  }

  const std::uint64_t data_start = (c.pos() + alignment - 1) / alignment * alignment;
  const bool header_only = data == GgufTensorData::kHeaderOnly;
  if (data_start > size_ && !tensors_.empty() && !header_only)
    return data_loss("GGUF: file ends before its tensor data");
  const std::uint64_t data_size = size_ > data_start ? size_ - data_start : 0;
  for (auto& t : tensors_) {
    if (header_only && (t.offset > data_size || (t.supported && t.desc.bytes() > data_size - t.offset))) {
      tensor_data_complete_ = false;
      continue;
    }
    if (!t.supported) {
      if (t.offset > data_size) {
        return data_loss("GGUF: tensor '" + t.name + "' starts at data offset " + std::to_string(t.offset) +
                         ", past the end of the file; the file is truncated or corrupt");
      }
      continue;
    }
    const std::uint64_t bytes = t.desc.bytes();
    if (t.offset > data_size || bytes > data_size - t.offset) {
      return data_loss("GGUF: tensor '" + t.name + "' (" + std::to_string(bytes) + " bytes at data offset " +
                       std::to_string(t.offset) + ") lies past the end of the file; the file is truncated or corrupt");
    }
    t.data = base_ + data_start + t.offset;
  }
  return Status::ok();
}

std::string gguf_dtype_label(std::uint32_t id) {
  // ggml's type ids (ggml.h, enum ggml_type); the gaps are ids ggml has retired.
  static constexpr std::pair<std::uint32_t, std::string_view> kNames[] = {
      {0, "f32"},      {1, "f16"},     {2, "q4_0"},     {3, "q4_1"},   {6, "q5_0"},    {7, "q5_1"},   {8, "q8_0"},
      {9, "q8_1"},     {10, "q2_k"},   {11, "q3_k"},    {12, "q4_k"},  {13, "q5_k"},   {14, "q6_k"},  {15, "q8_k"},
      {16, "iq2_xxs"}, {17, "iq2_xs"}, {18, "iq3_xxs"}, {19, "iq1_s"}, {20, "iq4_nl"}, {21, "iq3_s"}, {22, "iq2_s"},
      {23, "iq4_xs"},  {24, "i8"},     {25, "i16"},     {26, "i32"},   {27, "i64"},    {28, "f64"},   {29, "iq1_m"},
      {30, "bf16"},    {34, "tq1_0"},  {35, "tq2_0"},   {39, "mxfp4"}, {40, "nvfp4"},  {41, "q1_0"},
  };
  std::string_view name = "unknown";
  for (const auto& [known, n] : kNames) {
    if (known == id)
      name = n;
  }
  return std::string(name) + " (id " + std::to_string(id) + ")";
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}
std::optional<std::int64_t> GgufFile::get_int(std::string_view key) const {
  const auto* v = find(key);
  return v ? v->as_int() : std::nullopt;
}
std::optional<double> GgufFile::get_float(std::string_view key) const {
  const auto* v = find(key);
  return v ? v->as_float() : std::nullopt;
}
std::optional<std::string_view> GgufFile::get_string(std::string_view key) const {
  const auto* v = find(key);
  return v ? v->as_string() : std::nullopt;
}
const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace halyard::runtime
