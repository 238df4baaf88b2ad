// Reads elements of a weight row in its GGUF encoding, straight from a uint[] buffer named by
// WBUF, with byte addressing (blocks of 18 to 210 bytes are not word aligned). One of DT_F32,
// DT_F16, DT_BF16, DT_Q8_0, DT_Q4_0, DT_Q4_1, DT_Q5_0, DT_Q5_1, DT_Q2_K, DT_Q3_K, DT_Q4_K,
// DT_Q5_K, DT_Q6_K must be defined (layouts: hal/blocks.h). `row` is the byte address of the
// row; `i` the element index in it. wload8 reads 8 elements from i0, a multiple of 8: they lie
// in one block of 32 or in one 16- or 32-element sub-block of a 256-element K-quant super-block,
// so each scale is decoded once. The products use `precise` so that no compiler fuses or
// reorders them: dequantization is bit-exact with the reference (hal/src/kquants.cpp), which
// computes the same operations in the same order.

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
#elif defined(DT_Q5_0) || defined(DT_Q5_1)
// f16 d (Q5_1: then f16 m), 4 bytes of fifth bits (bit j for element j), 16 bytes of nibbles
// (elements 0..15 low, 16..31 high).
#ifdef DT_Q5_0
#define Q5_BYTES 22u
#define Q5_QH 2u
#else
#define Q5_BYTES 24u
#define Q5_QH 4u
#endif
uint q5_code(uint b, uint j) {  // element j < 32 of the block at byte b: 0..31
  const uint byte = w_byte(b + Q5_QH + 4u + (j & 15u));
  const uint low = j < 16u ? (byte & 15u) : (byte >> 4);
  return low | (((w_byte(b + Q5_QH + (j >> 3)) >> (j & 7u)) & 1u) << 4);
}
float q5_value(uint b, uint j, float d, float m) {
#ifdef DT_Q5_0
  precise float r = float(int(q5_code(b, j)) - 16) * d;
  return r;
#else
  precise float r = float(q5_code(b, j)) * d;
  precise float s = r + m;
  return s;
#endif
}
float q5_min(uint b) {
#ifdef DT_Q5_0
  return 0.0;  // unused
#else
  return half_bits(w_u16(b + 2u));
#endif
}
float wload(uint row, uint i) {
  const uint b = row + (i >> 5) * Q5_BYTES;
  return q5_value(b, i & 31u, half_bits(w_u16(b)), q5_min(b));
}
void wload8(uint row, uint i0, out float v[8]) {
  const uint b = row + (i0 >> 5) * Q5_BYTES;
  const float d = half_bits(w_u16(b));
  const float m = q5_min(b);
  [[unroll]] for (uint j = 0; j < 8; ++j) v[j] = q5_value(b, (i0 & 31u) + j, d, m);
}
#elif defined(DT_Q2_K) || defined(DT_Q3_K) || defined(DT_Q4_K) || defined(DT_Q5_K) || defined(DT_Q6_K)
// Super-blocks of 256 elements: kq_scale gives the scale (and the minimum) of the sub-block
// holding element e, kq_code its integer code; x = dl * code (- ml), as in kquants.cpp.
int s8(uint byte) { return int(byte << 24) >> 24; }
#if defined(DT_Q4_K) || defined(DT_Q5_K)
// Sub-block j's 6-bit scale and minimum from the 12 packed bytes at p (k_scale_min in kquants.cpp).
void k_scale_min(uint p, uint j, out uint sc, out uint mn) {
  if (j < 4u) {
    sc = w_byte(p + j) & 63u;
    mn = w_byte(p + j + 4u) & 63u;
  } else {
    sc = (w_byte(p + j + 4u) & 15u) | ((w_byte(p + j - 4u) >> 6) << 4);
    mn = (w_byte(p + j + 4u) >> 4) | ((w_byte(p + j) >> 6) << 4);
  }
}
#endif
#if defined(DT_Q2_K)
#define KQ_BYTES 84u  // scales[16] (4-bit scale, 4-bit min), qs[64], f16 d, f16 dmin
#define KQ_MIN
void kq_scale(uint b, uint e, out float dl, out float ml) {
  const uint sc = w_byte(b + (e >> 4));
  precise float s = half_bits(w_u16(b + 80u)) * float(sc & 15u);
  precise float m = half_bits(w_u16(b + 82u)) * float(sc >> 4);
  dl = s;
  ml = m;
}
float kq_code(uint b, uint e) {  // e = 128 h + 32 j + l: bits 2j of qs[32 h + l]
  return float((w_byte(b + 16u + 32u * (e >> 7) + (e & 31u)) >> (2u * ((e >> 5) & 3u))) & 3u);
}
#elif defined(DT_Q3_K)
#define KQ_BYTES 110u  // hmask[32], qs[64], scales[12] (6-bit, packed), f16 d
void kq_scale(uint b, uint e, out float dl, out float ml) {
  const uint s = e >> 4;
  const uint low = s < 8u ? (w_byte(b + 96u + s) & 15u) : (w_byte(b + 88u + s) >> 4);
  const uint high = (w_byte(b + 104u + (s & 3u)) >> (2u * (s >> 2))) & 3u;
  precise float r = half_bits(w_u16(b + 108u)) * float(int(low | (high << 4)) - 32);
  dl = r;
  ml = 0.0;
}
float kq_code(uint b, uint e) {  // low bits as Q2_K's; bit 2 (set: no -4) in bit 4h + j of hmask[l]
  const uint l = e & 31u, j = (e >> 5) & 3u, h = e >> 7;
  const uint low = (w_byte(b + 32u + 32u * h + l) >> (2u * j)) & 3u;
  const uint high = (w_byte(b + l) >> (4u * h + j)) & 1u;
  return float(int(low) - (high != 0u ? 0 : 4));
}
#elif defined(DT_Q4_K) || defined(DT_Q5_K)
#ifdef DT_Q4_K
#define KQ_BYTES 144u  // f16 d, f16 dmin, scales[12], qs[128]
#define KQ_QS 16u
#else
#define KQ_BYTES 176u  // f16 d, f16 dmin, scales[12], qh[32], qs[128]
#define KQ_QS 48u
#endif
#define KQ_MIN
void kq_scale(uint b, uint e, out float dl, out float ml) {
  uint sc, mn;
  k_scale_min(b + 4u, e >> 5, sc, mn);
  precise float s = half_bits(w_u16(b)) * float(sc);
  precise float m = half_bits(w_u16(b + 2u)) * float(mn);
  dl = s;
  ml = m;
}
float kq_code(uint b, uint e) {  // chunk c = e / 64 of qs: sub-block 2c low nibbles, 2c + 1 high
  const uint byte = w_byte(b + KQ_QS + 32u * (e >> 6) + (e & 31u));
  uint q = (e & 32u) != 0u ? (byte >> 4) : (byte & 15u);
#ifdef DT_Q5_K
  q |= ((w_byte(b + 16u + (e & 31u)) >> (e >> 5)) & 1u) << 4;  // bit e / 32 of qh[l]
#endif
  return float(q);
}
#else  // DT_Q6_K
#define KQ_BYTES 210u  // ql[128], qh[64], int8 scales[16], f16 d
void kq_scale(uint b, uint e, out float dl, out float ml) {
  precise float r = half_bits(w_u16(b + 208u)) * float(s8(w_byte(b + 192u + (e >> 4))));
  dl = r;
  ml = 0.0;
}
float kq_code(uint b, uint e) {  // half h, e = 128 h + 32 i + l
  const uint h = e >> 7, i = (e >> 5) & 3u, l = e & 31u;
  const uint byte = w_byte(b + 64u * h + l + 32u * (i & 1u));
  const uint low = i < 2u ? (byte & 15u) : (byte >> 4);
  const uint high = (w_byte(b + 128u + 32u * h + l) >> (2u * i)) & 3u;
  return float(int(low | (high << 4)) - 32);
}
#endif
float kq_value(uint b, uint e, float dl, float ml) {
#ifdef KQ_MIN
  precise float r = dl * kq_code(b, e) - ml;
#else
  precise float r = dl * kq_code(b, e);
#endif
  return r;
}
float wload(uint row, uint i) {
  const uint b = row + (i >> 8) * KQ_BYTES;
  float dl, ml;
  kq_scale(b, i & 255u, dl, ml);
  return kq_value(b, i & 255u, dl, ml);
}
void wload8(uint row, uint i0, out float v[8]) {  // i0 % 8 == 0: one sub-block of 16 or 32
  const uint b = row + (i0 >> 8) * KQ_BYTES;
  const uint e = i0 & 255u;
  float dl, ml;
  kq_scale(b, e, dl, ml);
  [[unroll]] for (uint j = 0; j < 8; ++j) v[j] = kq_value(b, e + j, dl, ml);
}
#elif defined(DT_IQ4_NL) || defined(DT_IQ4_XS)
// 4-bit codes into ggml's 16 non-linear int8 levels (blocks.h's kIQ4Levels): IQ4_NL blocks of
// 32 (f16 d, 16 bytes of codes as Q4_0's), IQ4_XS super-blocks of 256 (f16 d, u16 scales_h,
// scales_l[4], qs[128]) whose sub-blocks of 32 scale by d * (6-bit code - 32).
const int IQ4_LEVELS[16] = int[16](-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
float iq4_level(uint qs, uint j) {  // element j < 32 of the 16 code bytes at qs
  const uint byte = w_byte(qs + (j & 15u));
  return float(IQ4_LEVELS[j < 16u ? (byte & 15u) : (byte >> 4)]);
}
#ifdef DT_IQ4_NL
#define IQ4_BYTES 18u
#define IQ4_SPAN 5u  // log2 of the elements per block
void iq4_scale(uint b, uint e, out float dl, out uint qs) {
  dl = half_bits(w_u16(b));
  qs = b + 2u;
}
#else
#define IQ4_BYTES 136u
#define IQ4_SPAN 8u
void iq4_scale(uint b, uint e, out float dl, out uint qs) {  // e < 256: sub-block e / 32
  const uint s = e >> 5;
  const uint code = ((w_byte(b + 4u + (s >> 1)) >> (4u * (s & 1u))) & 15u) | (((w_u16(b + 2u) >> (2u * s)) & 3u) << 4);
  precise float r = half_bits(w_u16(b)) * float(int(code) - 32);
  dl = r;
  qs = b + 8u + 16u * s;
}
#endif
float wload(uint row, uint i) {
  const uint b = row + (i >> IQ4_SPAN) * IQ4_BYTES;
  float dl;
  uint qs;
  iq4_scale(b, i & ((1u << IQ4_SPAN) - 1u), dl, qs);
  precise float r = dl * iq4_level(qs, i & 31u);
  return r;
}
void wload8(uint row, uint i0, out float v[8]) {  // i0 % 8 == 0: one block or sub-block of 32
  const uint b = row + (i0 >> IQ4_SPAN) * IQ4_BYTES;
  float dl;
  uint qs;
  iq4_scale(b, i0 & ((1u << IQ4_SPAN) - 1u), dl, qs);
  [[unroll]] for (uint j = 0; j < 8; ++j) {
    precise float r = dl * iq4_level(qs, (i0 & 31u) + j);
    v[j] = r;
  }
}
#else
#error "define one of DT_F32, DT_F16, DT_BF16, DT_Q8_0, DT_Q4_0, DT_Q4_1, DT_Q5_0, DT_Q5_1, DT_Q2_K .. DT_Q6_K, DT_IQ4_NL, DT_IQ4_XS"
#endif
