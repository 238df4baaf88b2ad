// Reads elements of a weight row in its GGUF encoding, straight from a uint[] buffer named by
// WBUF, with byte addressing (blocks of 18, 20 or 34 bytes are not word aligned). One of
// DT_F32, DT_F16, DT_BF16, DT_Q8_0, DT_Q4_0, DT_Q4_1 must be defined. `row` is the byte
// address of the row; `i` the element index in it. The products use `precise` so that no
// compiler fuses them: dequantization is bit-exact with the reference.

uint w_byte(uint a) { return (WBUF[a >> 2] >> ((a & 3u) * 8u)) & 0xffu; }
uint w_u16(uint a) { return (WBUF[a >> 2] >> ((a & 2u) * 8u)) & 0xffffu; }  // a is even
float half_bits(uint h) { return unpackHalf2x16(h).x; }

#if defined(DT_F32)
float wload(uint row, uint i) { return uintBitsToFloat(WBUF[(row >> 2) + i]); }
void wload8(uint row, uint i0, out float v[8]) {
  [[unroll]] for (uint j = 0; j < 8; ++j) v[j] = uintBitsToFloat(WBUF[(row >> 2) + i0 + j]);
}
#elif defined(DT_F16)
float wload(uint row, uint i) { return half_bits(w_u16(row + 2u * i)); }
void wload8(uint row, uint i0, out float v[8]) {
  [[unroll]] for (uint j = 0; j < 8; ++j) v[j] = wload(row, i0 + j);
}
#elif defined(DT_BF16)
float wload(uint row, uint i) { return uintBitsToFloat(w_u16(row + 2u * i) << 16); }
void wload8(uint row, uint i0, out float v[8]) {
  [[unroll]] for (uint j = 0; j < 8; ++j) v[j] = wload(row, i0 + j);
}
#elif defined(DT_Q8_0)
float q8(uint a) { return float(int(w_byte(a) << 24) >> 24); }
float wload(uint row, uint i) {
  const uint b = row + (i >> 5) * 34u;
  precise float r = q8(b + 2u + (i & 31u)) * half_bits(w_u16(b));
  return r;
}
void wload8(uint row, uint i0, out float v[8]) {  // i0 % 8 == 0: one block
  const uint b = row + (i0 >> 5) * 34u;
  const float d = half_bits(w_u16(b));
  const uint q = b + 2u + (i0 & 31u);
  [[unroll]] for (uint j = 0; j < 8; ++j) {
    precise float r = q8(q + j) * d;
    v[j] = r;
  }
}
#elif defined(DT_Q4_0)
float q4_nibble(uint qs, uint j) {
  const uint byte = w_byte(qs + (j & 15u));
  return float(int(j < 16u ? (byte & 15u) : (byte >> 4)) - 8);
}
float wload(uint row, uint i) {
  const uint b = row + (i >> 5) * 18u;
  precise float r = q4_nibble(b + 2u, i & 31u) * half_bits(w_u16(b));
  return r;
}
void wload8(uint row, uint i0, out float v[8]) {
  const uint b = row + (i0 >> 5) * 18u;
  const float d = half_bits(w_u16(b));
  [[unroll]] for (uint j = 0; j < 8; ++j) {
    precise float r = q4_nibble(b + 2u, (i0 & 31u) + j) * d;
    v[j] = r;
  }
}
#elif defined(DT_Q4_1)
float q4_nibble(uint qs, uint j) {
  const uint byte = w_byte(qs + (j & 15u));
  return float(j < 16u ? (byte & 15u) : (byte >> 4));
}
float wload(uint row, uint i) {
  const uint b = row + (i >> 5) * 20u;
  precise float r = q4_nibble(b + 4u, i & 31u) * half_bits(w_u16(b));
  precise float s = r + half_bits(w_u16(b + 2u));
  return s;
}
void wload8(uint row, uint i0, out float v[8]) {
  const uint b = row + (i0 >> 5) * 20u;
  const float d = half_bits(w_u16(b));
  const float m = half_bits(w_u16(b + 2u));
  [[unroll]] for (uint j = 0; j < 8; ++j) {
    precise float r = q4_nibble(b + 4u, (i0 & 31u) + j) * d;
    precise float s = r + m;
    v[j] = s;
  }
}
#else
#error "define one of DT_F32, DT_F16, DT_BF16, DT_Q8_0, DT_Q4_0, DT_Q4_1"
#endif
