// f32 -> f16 bits, round to nearest even, bit-exact with hal's f32_to_f16 (hal/src/dtype.cpp):
// integer arithmetic only, so no device rounding mode or 16-bit storage is involved. Shared by
// COPY to f16 and the f16 KV cache store.
uint f32_to_f16_bits(float value) {
  const uint v = floatBitsToUint(value);
  const uint sign = (v >> 16) & 0x8000u;
  const uint e8 = (v >> 23) & 0xffu;
  uint mant = v & 0x7fffffu;
  if (e8 == 0xffu) return sign | 0x7c00u | (mant != 0u ? (0x200u | (mant >> 13)) : 0u);
  const int e = int(e8) - 127 + 15;
  if (e >= 31) return sign | 0x7c00u;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000u;
    const uint shift = uint(14 - e);
    uint h = mant >> shift;
    const uint rem = mant & ((1u << shift) - 1u);
    const uint half_ulp = 1u << (shift - 1u);
    if (rem > half_ulp || (rem == half_ulp && (h & 1u) != 0u)) ++h;
    return sign | h;
  }
  uint h = (uint(e) << 10) | (mant >> 13);
  const uint rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) != 0u)) ++h;
  return sign | h;
}
