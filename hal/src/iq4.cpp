#include "iq4.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "halyard/hal/dtype.h"

namespace halyard::detail {
namespace {

constexpr int kLevels = 16;
// Scales tried on each side of the one that puts a group's largest magnitude on an end level:
// llama.cpp's quantizer tries 7 either way as well; more buys almost nothing on N(0, 1) data.
constexpr int kTries = 7;

// The code whose level is nearest t (in level units); the lower one on a tie.
int nearest_code(float t) {
  if (t <= kIQ4Levels[0])
    return 0;
  if (t >= kIQ4Levels[kLevels - 1])
    return kLevels - 1;
  int lo = 0, hi = kLevels - 1;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (t < kIQ4Levels[mid])
      hi = mid;
    else
      lo = mid;
  }
  return t - static_cast<float>(kIQ4Levels[lo]) <= static_cast<float>(kIQ4Levels[hi]) - t ? lo : hi;
}

// The weighted squared error of n weights decoded as dl * level (dl as dequantize_row forms it),
// each taking its nearest level; the codes go to q when it is not null.
float group_error(const float* x, const float* w, int n, float dl, std::uint8_t* q) {
  float err = 0.f;
  if (dl == 0.f) {
    for (int j = 0; j < n; ++j) {
      err += w[j] * x[j] * x[j];
      if (q)
        q[j] = 8;  // any code decodes to 0 under a zero scale
    }
    return err;
  }
  const float inv = 1.f / dl;
  for (int j = 0; j < n; ++j) {
    const int c = nearest_code(x[j] * inv);
    const float e = x[j] - dl * static_cast<float>(kIQ4Levels[c]);
    err += w[j] * e * e;
    if (q)
      q[j] = static_cast<std::uint8_t>(c);
  }
  return err;
}

// The scale of a group of n weights with the least weighted squared error, searched as
// llama.cpp's quantizer does in spirit: put the largest magnitude near either end level (the
// levels are not symmetric, so both signs are tried), take each weight's nearest level, refit
// the scale by weighted least squares for those levels, and keep the best. `round` says whether
// the scale is stored as f16 (IQ4_NL), so candidates are judged at the rounded value.
float search_scale(const float* x, const float* w, int n, bool round) {
  float amax = 0.f, max = 0.f;
  for (int j = 0; j < n; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  if (amax == 0.f)
    return 0.f;
  float best = std::numeric_limits<float>::infinity(), best_d = 0.f;
  const float ends[2] = {static_cast<float>(kIQ4Levels[0]), static_cast<float>(kIQ4Levels[kLevels - 1])};
  for (float end : ends) {
    for (int t = -kTries; t <= kTries; ++t) {
      const float id = (end + static_cast<float>(t)) / max;
      float sumqx = 0.f, sumq2 = 0.f;
      for (int j = 0; j < n; ++j) {
        const auto v = static_cast<float>(kIQ4Levels[nearest_code(x[j] * id)]);
        sumqx += w[j] * v * x[j];
        sumq2 += w[j] * v * v;
      }
      if (sumq2 <= 0.f)
        continue;
      float d = sumqx / sumq2;
      if (round)
        d = f16_to_f32(f32_to_f16(d));
      const float err = group_error(x, w, n, d, nullptr);
      if (err < best) {
        best = err;
        best_d = d;
      }
    }
  }
  return best_d;
}

// Weights of the squared error: the group's mean square plus the weight's own square, so large
// weights count more (as llama.cpp's x^2 weighting does) without letting small ones go free.
void error_weights(const float* x, int n, float* w) {
  float sum = 0.f;
  for (int j = 0; j < n; ++j)
    sum += x[j] * x[j];
  const float sigma2 = sum / static_cast<float>(n);
  for (int j = 0; j < n; ++j)
    w[j] = sigma2 + x[j] * x[j];
}

void pack_codes(const std::uint8_t* q, std::uint8_t* qs) {
  for (int j = 0; j < kQuantBlock / 2; ++j)
    qs[j] = static_cast<std::uint8_t>(q[j] | (q[j + kQuantBlock / 2] << 4));
}

}  // namespace

int iq4_xs_scale_code(const BlockIQ4_XS& b, int j) {
  return ((b.scales_l[j / 2] >> (4 * (j % 2))) & 15) | (((b.scales_h >> (2 * j)) & 3) << 4);
}

void dequantize_iq4_nl(const BlockIQ4_NL* b, float* y, std::int64_t nblocks) {
  for (std::int64_t i = 0; i < nblocks; ++i, y += kQuantBlock) {
    const float d = f16_to_f32(b[i].d);
    for (int j = 0; j < kQuantBlock / 2; ++j) {
      y[j] = d * static_cast<float>(kIQ4Levels[b[i].qs[j] & 15]);
      y[j + kQuantBlock / 2] = d * static_cast<float>(kIQ4Levels[b[i].qs[j] >> 4]);
    }
  }
}

void dequantize_iq4_xs(const BlockIQ4_XS* b, float* y, std::int64_t nblocks) {
  for (std::int64_t i = 0; i < nblocks; ++i) {
    const float d = f16_to_f32(b[i].d);
    for (int s = 0; s < kSuperBlock / kQuantBlock; ++s, y += kQuantBlock) {
      // (d * scale) first, then times the level: gguf-py and ggml round in this order.
      const float dl = d * static_cast<float>(iq4_xs_scale_code(b[i], s) - 32);
      const std::uint8_t* qs = b[i].qs + 16 * s;
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * static_cast<float>(kIQ4Levels[qs[j] & 15]);
        y[j + 16] = dl * static_cast<float>(kIQ4Levels[qs[j] >> 4]);
      }
    }
  }
}

void quantize_iq4_nl(const float* x, BlockIQ4_NL* b, std::int64_t nblocks) {
  float w[kQuantBlock];
  std::uint8_t q[kQuantBlock];
  for (std::int64_t i = 0; i < nblocks; ++i, x += kQuantBlock) {
    error_weights(x, kQuantBlock, w);
    const float d = search_scale(x, w, kQuantBlock, /*round=*/true);
    b[i].d = f32_to_f16(d);
    group_error(x, w, kQuantBlock, f16_to_f32(b[i].d), q);
    pack_codes(q, b[i].qs);
  }
}

void quantize_iq4_xs(const float* x, BlockIQ4_XS* b, std::int64_t nblocks) {
  constexpr int kSubs = kSuperBlock / kQuantBlock;
  float w[kSuperBlock];
  std::uint8_t q[kQuantBlock];
  for (std::int64_t i = 0; i < nblocks; ++i, x += kSuperBlock) {
    error_weights(x, kSuperBlock, w);
    float s[kSubs];
    float amax = 0.f, max = 0.f;
    for (int j = 0; j < kSubs; ++j) {
      s[j] = search_scale(x + kQuantBlock * j, w + kQuantBlock * j, kQuantBlock, /*round=*/false);
      if (std::fabs(s[j]) > amax) {
        amax = std::fabs(s[j]);
        max = s[j];
      }
    }
    std::memset(&b[i], 0, sizeof(BlockIQ4_XS));
    int best_code[kSubs];
    std::fill(best_code, best_code + kSubs, 32);  // scale 0: an all-zero super-block
    float best = std::numeric_limits<float>::infinity();
    if (amax > 0.f) {
      // The super-block scale d puts the largest sub-block scale on code k - 32 for k near
      // either end of -32..31; each sub-block then takes the code (nearest or one either side)
      // with the least error at that d, judged with d as stored (f16).
      for (int k = -32; k <= 31; ++k) {
        if (k > -25 && k < 24)
          continue;
        const float d = f16_to_f32(f32_to_f16(max / static_cast<float>(k)));
        if (d == 0.f || !std::isfinite(d))
          continue;
        float total = 0.f;
        int code[kSubs];
        for (int j = 0; j < kSubs; ++j) {
          const auto l0 = static_cast<int>(std::lround(s[j] / d));
          float sub_best = std::numeric_limits<float>::infinity();
          for (int l = l0 - 1; l <= l0 + 1; ++l) {
            const int lc = std::clamp(l, -32, 31);
            if (lc != l)
              continue;
            const float err =
                group_error(x + kQuantBlock * j, w + kQuantBlock * j, kQuantBlock, d * static_cast<float>(lc), nullptr);
            if (err < sub_best) {
              sub_best = err;
              code[j] = lc + 32;
            }
          }
          if (!(sub_best < std::numeric_limits<float>::infinity())) {  // l0 far outside the range
            const int lc = std::clamp(l0, -32, 31);
            sub_best =
                group_error(x + kQuantBlock * j, w + kQuantBlock * j, kQuantBlock, d * static_cast<float>(lc), nullptr);
            code[j] = lc + 32;
          }
          total += sub_best;
        }
        if (total < best) {
          best = total;
          b[i].d = f32_to_f16(d);
          std::copy(code, code + kSubs, best_code);
        }
      }
    }
    const float d = f16_to_f32(b[i].d);
    for (int j = 0; j < kSubs; ++j) {
      const int c = best_code[j];
      b[i].scales_l[j / 2] = static_cast<std::uint8_t>(b[i].scales_l[j / 2] | ((c & 15) << (4 * (j % 2))));
      b[i].scales_h = static_cast<std::uint16_t>(b[i].scales_h | ((c >> 4) << (2 * j)));
      group_error(x + kQuantBlock * j, w + kQuantBlock * j, kQuantBlock, d * static_cast<float>(c - 32), q);
      pack_codes(q, b[i].qs + 16 * j);
    }
  }
}

}  // namespace halyard::detail
