// The search behind the K-quant quantizers: for one super-block of 256 weights, the f16
// super-block scale(s), the integer sub-block scales (and minimums) and each weight's level
// that give the least squared error under the format's own dequantization. kquants.cpp packs
// the result into the format's bytes; nothing outside hal/src includes this header.
// Thread safety: pure functions.
#pragma once

#include <cstdint>

namespace halyard::detail {

// A super-block before packing. Asymmetric formats decode weight e of sub-block j as
// f16(d) * sc[j] * q[e] - f16(dmin) * mn[j]; symmetric ones as f16(d) * sc[j] * q[e].
struct SuperBlockFit {
  std::uint16_t d = 0;
  std::uint16_t dmin = 0;
  int sc[16] = {};
  int mn[16] = {};
  std::int8_t q[256] = {};
};

// Q2_K (16 x 16, levels 0..3, codes 0..15), Q4_K (8 x 32, 0..15, 0..63), Q5_K (8 x 32, 0..31,
// 0..63): `subs` sub-blocks of `len` weights, q in [0, levels], sc and mn in [0, max_code].
void fit_asymmetric(const float* x, int subs, int len, int levels, int max_code, SuperBlockFit* fit);

// Q3_K (nmax 4, codes -32..31) and Q6_K (nmax 32, codes -128..127): 16 sub-blocks of 16
// weights, q in [-nmax, nmax - 1], sc in [-code_neg, code_neg - 1]; mn and dmin stay 0.
void fit_symmetric(const float* x, int nmax, int code_neg, SuperBlockFit* fit);

}  // namespace halyard::detail
