// Per-sequence state as host bytes: a sequence's tokens and K/V rows in a device-neutral layout
// (docs/architecture.md, "Sequence state"), so a sequence saved from one context loads into an
// empty sequence of any context of the same model (same fingerprint), on any device and with
// either KV dtype. Rows move through the KvCache pools' Buffer download/upload: a block's rows
// are one contiguous range of each pool, so a sequence of n positions takes
// 2 x layers x ceil(n / block_size) copies, straight into or out of the caller's bytes unless the
// dtype converts.
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <string>

#include "halyard/runtime/context.h"

namespace halyard::runtime {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the state layout is little-endian and is copied as is: a big-endian host would need byte swaps");

constexpr char kMagic[4] = {'H', 'L', 'S', 'Q'};
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kHeaderBytes = 32;
constexpr std::size_t kTrailerBytes = 4;  // CRC-32

// The layout's dtype codes are the C API's HALYARD_KV_F16 / HALYARD_KV_F32.
std::uint32_t dtype_code(DType d) {
  return d == DType::kF32 ? 1 : 0;
}
std::size_t element_bytes(std::uint32_t code) {
  return code == 1 ? 4 : 2;
}

struct Header {
  std::uint64_t fingerprint = 0;
  std::uint32_t dtype = 0, n_layers = 0, kv_dim = 0, n_positions = 0;
};

template <typename T>
T read_le(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T>
void write_le(std::byte* p, T v) {
  std::memcpy(p, &v, sizeof v);
}

std::uint32_t crc32_of(const std::byte* p, std::size_t n) {
  // zlib's crc32 takes uInt lengths: feed it in chunks below 4 GiB.
  uLong crc = crc32(0L, Z_NULL, 0);
  while (n > 0) {
    const std::size_t chunk = std::min<std::size_t>(n, std::size_t{1} << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(p), static_cast<uInt>(chunk));
    p += chunk;
    n -= chunk;
  }
  return static_cast<std::uint32_t>(crc);
}

std::size_t state_bytes(std::size_t n_positions, std::size_t n_layers, std::size_t kv_dim, std::size_t elem) {
  return kHeaderBytes + 4 * n_positions + 2 * n_layers * n_positions * kv_dim * elem + kTrailerBytes;
}

std::string hex(std::uint64_t v) {
  static const char* digits = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4)
    s[static_cast<std::size_t>(i)] = digits[v & 15];
  return s;
}

// Converts `count` elements from one encoding to the other (f32 -> f16 rounds to nearest even).
void convert_rows(const std::byte* src, std::uint32_t src_code, std::byte* dst, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    if (src_code == 1)
      write_le(dst + 2 * i, f32_to_f16(read_le<float>(src + 4 * i)));
    else
      write_le(dst + 4 * i, f16_to_f32(read_le<std::uint16_t>(src + 2 * i)));
  }
}

}  // namespace

Result<std::size_t> Context::state_size(int seq) const {
  HALYARD_RETURN_IF_ERROR(check_seq(seq));
  const KvCacheOptions& ko = kv_->options();
  return state_bytes(tokens_[static_cast<std::size_t>(seq)].size(), static_cast<std::size_t>(ko.n_layers),
                     static_cast<std::size_t>(ko.kv_dim), element_bytes(dtype_code(ko.dtype)));
}

Result<std::size_t> Context::save_state(int seq, std::span<std::byte> out) const {
  HALYARD_ASSIGN_OR_RETURN(const std::size_t size, state_size(seq));
  if (out.size() < size) {
    return invalid_argument("save_state: sequence " + std::to_string(seq) + " needs " + std::to_string(size) +
                            " bytes and the buffer has " + std::to_string(out.size()));
  }
  const KvCacheOptions& ko = kv_->options();
  const auto& toks = tokens_[static_cast<std::size_t>(seq)];
  const std::size_t n = toks.size();
  std::byte* p = out.data();
  std::memcpy(p, kMagic, 4);
  write_le(p + 4, kVersion);
  write_le(p + 8, model_.fingerprint());
  write_le(p + 16, dtype_code(ko.dtype));
  write_le(p + 20, static_cast<std::uint32_t>(ko.n_layers));
  write_le(p + 24, static_cast<std::uint32_t>(ko.kv_dim));
  write_le(p + 28, static_cast<std::uint32_t>(n));
  p += kHeaderBytes;
  for (const TokenId t : toks) {
    write_le(p, static_cast<std::int32_t>(t));
    p += 4;
  }
  HALYARD_ASSIGN_OR_RETURN(const auto blocks, kv_->blocks(seq));
  const std::size_t row = row_bytes(ko.dtype, ko.kv_dim);
  const auto bs = static_cast<std::size_t>(ko.block_size);
  const std::size_t block_bytes = row * bs;
  for (int l = 0; l < ko.n_layers; ++l) {
    for (const Buffer* pool : {&kv_->k(l), &kv_->v(l)}) {
      for (std::size_t b = 0; b * bs < n; ++b) {
        const std::size_t rows = std::min(bs, n - b * bs);
        HALYARD_RETURN_IF_ERROR(pool->download(static_cast<std::size_t>(blocks[b]) * block_bytes, p, rows * row));
        p += rows * row;
      }
    }
  }
  write_le(p, crc32_of(out.data(), size - kTrailerBytes));
  return size;
}

Status Context::load_state(int seq, std::span<const std::byte> in) {
  HALYARD_RETURN_IF_ERROR(check_seq(seq));
  const auto s = static_cast<std::size_t>(seq);
  if (!tokens_[s].empty()) {
    return invalid_argument("load_state: sequence " + std::to_string(seq) + " holds " +
                            std::to_string(tokens_[s].size()) +
                            " positions; a state loads only into an empty sequence (release it first)");
  }
  // Every check comes before the first change, so a refused state changes nothing.
  const std::string what = "load_state: ";
  if (in.size() < kHeaderBytes + kTrailerBytes) {
    return data_loss(what + "truncated: " + std::to_string(in.size()) + " bytes, less than the " +
                     std::to_string(kHeaderBytes + kTrailerBytes) + " of an empty sequence's state");
  }
  const std::byte* p = in.data();
  if (std::memcmp(p, kMagic, 4) != 0)
    return data_loss(what + "not a Halyard sequence state (its first 4 bytes are not \"HLSQ\")");
  if (const auto v = read_le<std::uint32_t>(p + 4); v != kVersion) {
    return data_loss(what + "state layout version " + std::to_string(v) + "; this library reads version " +
                     std::to_string(kVersion));
  }
  Header h;
  h.fingerprint = read_le<std::uint64_t>(p + 8);
  h.dtype = read_le<std::uint32_t>(p + 16);
  h.n_layers = read_le<std::uint32_t>(p + 20);
  h.kv_dim = read_le<std::uint32_t>(p + 24);
  h.n_positions = read_le<std::uint32_t>(p + 28);
  const KvCacheOptions& ko = kv_->options();
  if (h.fingerprint != model_.fingerprint()) {
    return invalid_argument(what + "the state is of another model (fingerprint " + hex(h.fingerprint) +
                            ", this model's is " + hex(model_.fingerprint()) + ")");
  }
  if (h.n_layers != static_cast<std::uint32_t>(ko.n_layers)) {
    return invalid_argument(what + "the state has " + std::to_string(h.n_layers) + " layers and this model " +
                            std::to_string(ko.n_layers));
  }
  if (h.kv_dim != static_cast<std::uint64_t>(ko.kv_dim)) {
    return invalid_argument(what + "the state's kv_dim is " + std::to_string(h.kv_dim) + " and this model's " +
                            std::to_string(ko.kv_dim));
  }
  if (h.dtype > 1) {
    return data_loss(what + "KV dtype code " + std::to_string(h.dtype) + " is neither 0 (f16) nor 1 (f32)");
  }
  const std::size_t n = h.n_positions;
  const std::size_t elem = element_bytes(h.dtype);
  const std::size_t want = state_bytes(n, h.n_layers, h.kv_dim, elem);
  if (in.size() != want) {
    return data_loss(what + std::string(in.size() < want ? "truncated" : "trailing bytes") + ": " +
                     std::to_string(in.size()) + " bytes, and a state of " + std::to_string(n) + " positions has " +
                     std::to_string(want));
  }
  if (const auto crc = read_le<std::uint32_t>(p + want - kTrailerBytes); crc != crc32_of(p, want - kTrailerBytes)) {
    return data_loss(what + "corrupt: the CRC-32 of its bytes does not match the one it carries");
  }
  if (static_cast<int>(n) > model_.context_length() || n > static_cast<std::size_t>(ko.max_positions)) {
    return out_of_range(what + "the state holds " + std::to_string(n) + " positions and the context " +
                        std::to_string(model_.context_length()));
  }
  std::vector<TokenId> toks(n);
  const int vocab = model_.config().vocab_size;
  for (std::size_t i = 0; i < n; ++i) {
    toks[i] = read_le<std::int32_t>(p + kHeaderBytes + 4 * i);
    if (toks[i] < 0 || toks[i] >= vocab) {
      return data_loss(what + "token " + std::to_string(i) + " is " + std::to_string(toks[i]) +
                       ", outside the vocabulary");
    }
  }
  const int needed = kv_->blocks_needed(seq, 0, static_cast<int>(n));
  if (needed > kv_->blocks_free()) {
    return cache_full(what + "the state's " + std::to_string(n) + " positions need " + std::to_string(needed) +
                      " KV blocks and " + std::to_string(kv_->blocks_free()) + " are free; nothing was changed");
  }
  if (n == 0)
    return Status::ok();

  HALYARD_RETURN_IF_ERROR(kv_->prepare_write(seq, 0, static_cast<int>(n)));
  HALYARD_ASSIGN_OR_RETURN(const auto blocks, kv_->blocks(seq));
  const std::uint32_t code = dtype_code(ko.dtype);
  const std::size_t src_row = h.kv_dim * elem;
  const std::size_t dst_row = row_bytes(ko.dtype, ko.kv_dim);
  const auto bs = static_cast<std::size_t>(ko.block_size);
  const std::size_t block_bytes = dst_row * bs;
  std::vector<std::byte> converted(h.dtype == code ? 0 : dst_row * bs);
  const std::byte* src = p + kHeaderBytes + 4 * n;
  auto write = [&]() -> Status {
    for (int l = 0; l < ko.n_layers; ++l) {
      for (Buffer* pool : {&kv_->k(l), &kv_->v(l)}) {
        for (std::size_t b = 0; b * bs < n; ++b) {
          const std::size_t rows = std::min(bs, n - b * bs);
          const std::byte* data = src;
          if (!converted.empty()) {
            convert_rows(src, h.dtype, converted.data(), rows * h.kv_dim);
            data = converted.data();
          }
          HALYARD_RETURN_IF_ERROR(
              pool->upload(static_cast<std::size_t>(blocks[b]) * block_bytes, data, rows * dst_row));
          src += rows * src_row;
        }
      }
    }
    return Status::ok();
  };
  if (Status st = write(); !st.is_ok()) {
    (void)kv_->remove(seq, 0, -1);
    return st;
  }
  tokens_[s] = std::move(toks);
  return Status::ok();
}

}  // namespace halyard::runtime
