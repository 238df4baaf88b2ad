// FNV-1a, 64 bits: the model fingerprint's hash (model.cpp). Chosen for being a few lines with a
// published definition (so another implementation can recompute a fingerprint) over the ~2 MiB
// it reads per model; it is not a checksum for large data (the sequence state uses CRC-32).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

namespace halyard::runtime {

class Fnv1a64 {
 public:
  void bytes(const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n; ++i) {
      hash_ ^= p[i];
      hash_ *= 0x100000001b3ULL;
    }
  }
  // Fixed-size little-endian values (every host Halyard runs on is little-endian).
  template <typename T>
  requires std::is_arithmetic_v<T> || std::is_enum_v<T>
  void value(T v) { bytes(&v, sizeof v); }
  // The length first, so ("ab", "c") and ("a", "bc") differ.
  void text(std::string_view s) {
    value(static_cast<std::uint64_t>(s.size()));
    bytes(s.data(), s.size());
  }
  std::uint64_t digest() const { return hash_; }

 private:
  std::uint64_t hash_ = 0xcbf29ce484222325ULL;
};

}  // namespace halyard::runtime
