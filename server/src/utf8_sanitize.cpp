#include "utf8_sanitize.h"

namespace halyard::server {
namespace {

struct SequenceShape {
  std::size_t length;        // 0: the byte cannot start a sequence
  unsigned char second_min;  // the second byte's range (Unicode Table 3-7): it excludes
  unsigned char second_max;  // overlong forms, surrogates and code points above U+10FFFF
};

SequenceShape shape_of(unsigned char lead) {
  if (lead < 0x80)
    return {1, 0, 0};
  if (lead >= 0xC2 && lead <= 0xDF)
    return {2, 0x80, 0xBF};
  if (lead == 0xE0)
    return {3, 0xA0, 0xBF};
  if (lead == 0xED)
    return {3, 0x80, 0x9F};
  if (lead >= 0xE1 && lead <= 0xEF)
    return {3, 0x80, 0xBF};
  if (lead == 0xF0)
    return {4, 0x90, 0xBF};
  if (lead >= 0xF1 && lead <= 0xF3)
    return {4, 0x80, 0xBF};
  if (lead == 0xF4)
    return {4, 0x80, 0x8F};
  return {0, 0, 0};  // 80..C1 (continuation bytes, overlong C0/C1) and F5..FF
}

}  // namespace

std::size_t append_well_formed_utf8(std::string_view bytes, bool final, std::string& out) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    const auto lead = static_cast<unsigned char>(bytes[i]);
    const SequenceShape shape = shape_of(lead);
    if (shape.length == 0) {
      out += kReplacementCharacter;
      ++i;
      continue;
    }
    std::size_t k = 1;
    bool ill_formed = false;
    for (; k < shape.length; ++k) {
      if (i + k >= bytes.size())
        break;  // cut off by the end of the chunk
      const auto c = static_cast<unsigned char>(bytes[i + k]);
      const unsigned char lo = k == 1 ? shape.second_min : 0x80;
      const unsigned char hi = k == 1 ? shape.second_max : 0xBF;
      if (c < lo || c > hi) {
        ill_formed = true;
        break;
      }
    }
    if (ill_formed) {
      // The bytes before the offending one are one maximal subpart; the offending byte starts
      // over (it may begin a sequence of its own).
      out += kReplacementCharacter;
      i += k;
      continue;
    }
    if (k < shape.length) {
      if (!final)
        return i;
      out += kReplacementCharacter;
      return bytes.size();
    }
    out.append(bytes.substr(i, shape.length));
    i += shape.length;
  }
  return i;
}

}  // namespace halyard::server
