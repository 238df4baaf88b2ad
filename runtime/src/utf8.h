// Small UTF-8 helpers shared by the tokenizers and the streaming detokenizer.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace halyard::runtime {

// Length of the UTF-8 sequence a lead byte announces (1 for stray continuation bytes).
inline std::size_t utf8_sequence_length(unsigned char lead) {
  if (lead < 0x80)
    return 1;
  if ((lead & 0xe0) == 0xc0)
    return 2;
  if ((lead & 0xf0) == 0xe0)
    return 3;
  if ((lead & 0xf8) == 0xf0)
    return 4;
  return 1;
}

inline std::string utf8_encode(char32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xc0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xe0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    s += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    s += static_cast<char>(0xf0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    s += static_cast<char>(0x80 | (cp & 0x3f));
  }
  return s;
}

// Splits into characters; a truncated sequence at the end becomes one piece.
inline std::vector<std::string> utf8_chars(std::string_view s) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = std::min(utf8_sequence_length(static_cast<unsigned char>(s[i])), s.size() - i);
    out.emplace_back(s.substr(i, n));
    i += n;
  }
  return out;
}

// Length of the longest prefix that does not end inside a multi-byte sequence, so streamed
// output never splits a character.
inline std::size_t utf8_complete_prefix(std::string_view s) {
  std::size_t i = s.size();
  for (std::size_t back = 1; back <= 4 && back <= s.size(); ++back) {
    const auto c = static_cast<unsigned char>(s[s.size() - back]);
    if ((c & 0xc0) == 0x80)
      continue;  // continuation byte
    if (utf8_sequence_length(c) > back)
      i = s.size() - back;
    break;
  }
  return i;
}

}  // namespace halyard::runtime
