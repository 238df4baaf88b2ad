// Portable K-quant dot products on the stored super-blocks: each sub-block's integer sum over one
// activation group of 4 meets that group's scale, then the sub-block's scale; the minimums
// (Q4_K, Q5_K) meet the activation block's float sum, the -32 offset of Q6_K is folded into its
// signed quants.
#include "halyard/hal/dtype.h"
#include "kquants.h"

namespace halyard::cpu {
namespace {

// Sum over elements [begin, end) of one activation block (group-aligned) of wq[j] * qs[j] * d[j / 4].
inline float groups_dot(const int* wq, const ActBlock& x, int begin, int end) {
  float acc = 0.f;
  for (int g = begin / kActGroup; g < end / kActGroup; ++g) {
    int s = 0;
    for (int j = g * kActGroup; j < (g + 1) * kActGroup; ++j)
      s += wq[j] * x.qs[j];
    acc += x.d[g] * static_cast<float>(s);
  }
  return acc;
}

// Q4_K and Q5_K: chunk c of 32 bytes holds sub-blocks 2c (low nibbles) and 2c + 1 (high), each
// one activation block; Q5_K adds bit 2c or 2c + 1 of qh[l] as 16.
template <typename Block, bool kHigh>
float dot_4_5_k(const Block* w, const ActBlock* x, int n_blocks) {
  float acc = 0.f;
  int wq[kQuantBlock];
  for (int i = 0; i < n_blocks / kActPerSuper; ++i, x += kActPerSuper) {
    const Block& b = w[i];
    std::uint8_t sm[16];
    unpack_k_scales(b.scales, sm);
    float sub = 0.f, mins = 0.f;
    for (int s = 0; s < kActPerSuper; ++s) {
      const std::uint8_t* q = b.qs + 32 * (s / 2);
      const int shift = 4 * (s & 1);
      for (int l = 0; l < kQuantBlock; ++l) {
        wq[l] = (q[l] >> shift) & 0x0f;
        if constexpr (kHigh)
          wq[l] |= ((b.qh[l] >> s) & 1) << 4;
      }
      sub += static_cast<float>(sm[s]) * groups_dot(wq, x[s], 0, kQuantBlock);
      mins += static_cast<float>(sm[8 + s]) * x[s].sum;
    }
    acc += f16_to_f32(b.d) * sub - f16_to_f32(b.dmin) * mins;
  }
  return acc;
}

}  // namespace

float dot_q4_k_generic(const BlockQ4_K* w, const ActBlock* x, int n_blocks) {
  return dot_4_5_k<BlockQ4_K, false>(w, x, n_blocks);
}

float dot_q5_k_generic(const BlockQ5_K* w, const ActBlock* x, int n_blocks) {
  return dot_4_5_k<BlockQ5_K, true>(w, x, n_blocks);
}

// Q6_K: in half h, activation block 4h + i (i < 4) holds weights 32 i + l of the half, low
// nibbles from ql[64 h + l + 32 (i & 1)] (i < 2 low, else high), top bits 2i of qh[32 h + l];
// its two sub-blocks of 16 take scales[8 h + 2 i] and [8 h + 2 i + 1].
float dot_q6_k_generic(const BlockQ6_K* w, const ActBlock* x, int n_blocks) {
  float acc = 0.f;
  int wq[kQuantBlock];
  for (int i = 0; i < n_blocks / kActPerSuper; ++i, x += kActPerSuper) {
    const BlockQ6_K& b = w[i];
    float sum = 0.f;
    for (int a = 0; a < kActPerSuper; ++a) {
      const int h = a / 4, sub = a % 4;
      const std::uint8_t* ql = b.ql + 64 * h + 32 * (sub & 1);
      const std::uint8_t* qh = b.qh + 32 * h;
      const int shift = 4 * (sub / 2);
      for (int l = 0; l < kQuantBlock; ++l)
        wq[l] = (((ql[l] >> shift) & 0x0f) | (((qh[l] >> (2 * sub)) & 3) << 4)) - 32;
      sum += static_cast<float>(b.scales[2 * a]) * groups_dot(wq, x[a], 0, 16) +
             static_cast<float>(b.scales[2 * a + 1]) * groups_dot(wq, x[a], 16, 32);
    }
    acc += f16_to_f32(b.d) * sum;
  }
  return acc;
}

}  // namespace halyard::cpu
