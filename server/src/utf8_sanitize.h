// Well-formed UTF-8 out of arbitrary bytes, a chunk at a time. A model can emit any byte
// sequence (byte-fallback and byte-level tokens), but what the server sends (JSON strings)
// must be well-formed UTF-8: nlohmann::json's dump() throws on anything else.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace halyard::server {

// The replacement character U+FFFD in UTF-8.
inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";

// Appends to `out` the characters of `bytes`, each ill-formed subsequence replaced by one U+FFFD
// (the "maximal subpart" practice of Unicode 15, section 3.9, which Python's and ICU's decoders
// follow). A sequence that is well-formed so far but cut off by the end of `bytes` is left
// unconsumed, as it may be completed by the next chunk, unless `final`, when it becomes one
// U+FFFD. Returns how many bytes of `bytes` were consumed.
std::size_t append_well_formed_utf8(std::string_view bytes, bool final, std::string& out);

}  // namespace halyard::server
