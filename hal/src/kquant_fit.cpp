// The K-quant search. Plain squared error is what it minimises (the RMSE of the weights is how
// the quantizer is judged), in three steps per super-block:
//
//  1. Each sub-block on its own, with unquantized scale and minimum: a handful of candidate
//     grids, from the sub-block's range stretched or shrunk a little (clipping the extremes
//     can pay: it gives the bulk finer steps), each followed by the least-squares scale (and
//     minimum) for the levels it assigned; the best then alternates re-assigning the nearest
//     levels and re-fitting until the error stops falling.
//  2. The super-block scale(s) from the largest sub-block scale (and minimum), rounded to f16;
//     each sub-block's integer scale code one of the two nearest steps, and its minimum's code
//     one of the two nearest to the minimum re-fitted to that rounded scale (up to four pairs),
//     whichever gives the least error with the weights re-assigned to the nearest levels under
//     the decoded values.
//  3. The super-block scale(s) re-fitted by least squares to the codes and levels of step 2,
//     then step 2 again; the best of these rounds is kept, so the result is never worse than
//     step 2's first round.
//
// Every error that chooses between results is computed with the dequantizer's own float
// operations, and nothing here depends on the platform (no libm beyond exact operations, no
// fused multiply-add: the build turns contraction off), so a given input gives the same bytes
// everywhere.
#include "kquant_fit.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "halyard/hal/dtype.h"

namespace halyard::detail {
namespace {

constexpr int kRounds = 3;       // step 2 runs this often, with step 3 between
constexpr int kRefinements = 4;  // the most re-assign / re-fit passes in step 1

// Clamp to [lo, hi] then round to the nearest integer (ties to even): adding and subtracting
// 1.5 * 2^23 leaves the rounded value for any |v| < 2^22, which the clamp guarantees, without a
// libm call. A NaN clamps to lo.
float level(float v, float lo, float hi) {
  constexpr float kMagic = 12582912.f;
  v = std::min(hi, std::max(lo, v));
  return (v + kMagic) - kMagic;
}

// Sums over a sub-block are taken in kLanes interleaved partial sums, added in a fixed order at
// the end: the compiler can then keep the lanes in vector registers (it may not reorder one
// float sum), and the result does not depend on whether it does.
constexpr int kLanes = 8;
using Lanes = float[kLanes];
float sum(const Lanes& a) {
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// y = s * q + b for one sub-block, with its squared error, and the sums of the levels and the
// weights it was fitted to (step 2 re-fits b to a rounded s with them).
struct Line {
  float s;
  float b;
  double err;
  float sq;
  float sx;
};

// The least-squares line through the points (q, x), given the sums over them, under the
// formats' constraints: the minimum is subtracted (b <= 0) and the scale is unsigned (s >= 0).
Line fit_line(double n, double sx, double sxx, double sq, double sqq, double sxq) {
  double s = 0, b = 0;
  const double det = n * sqq - sq * sq;
  if (det > 0) {
    s = (n * sxq - sq * sx) / det;
    b = (sx - s * sq) / n;
  }
  if (det <= 0 || b > 0) {  // all levels equal, or the best line would add: b = 0
    b = 0;
    s = sqq > 0 ? sxq / sqq : 0;
  }
  if (s < 0) {
    s = 0;
    b = std::min(0.0, sx / n);
  }
  const double err = sxx - 2 * s * sxq - 2 * b * sx + s * s * sqq + 2 * s * b * sq + n * b * b;
  return {static_cast<float>(s), static_cast<float>(b), err, static_cast<float>(sq), static_cast<float>(sx)};
}

// Step 1, asymmetric: the levels 0..levels over [lo, hi] with lo = min(0, lowest).
struct GridSearch {
  int steps;   // candidate grids
  float step;  // levels added per candidate: from -step * (steps / 2) on
};

Line fit_sub_asymmetric(const float* v, int len, float levels, GridSearch grid) {
  float lo = 0.f, hi = v[0];
  double sx = 0, sxx = 0;
  for (int i = 0; i < len; ++i) {
    lo = std::min(lo, v[i]);
    hi = std::max(hi, v[i]);
    sx += v[i];
    sxx += static_cast<double>(v[i]) * v[i];
  }
  const double n = len;
  const double b0 = std::min(0.0, sx / n);
  Line best{0.f, static_cast<float>(b0), sxx - 2 * b0 * sx + n * b0 * b0, 0.f, static_cast<float>(sx)};
  const float range = hi - lo;
  if (!(range > 0.f))
    return best;
  auto try_grid = [&](float offset, float inv_scale) {
    Lanes sq{}, sqq{}, sxq{};
    for (int i = 0; i < len; i += kLanes) {
      for (int l = 0; l < kLanes; ++l) {
        const float q = level((v[i + l] - offset) * inv_scale, 0.f, levels);
        sq[l] += q;
        sqq[l] += q * q;
        sxq[l] += q * v[i + l];
      }
    }
    return fit_line(n, sx, sxx, sum(sq), sum(sqq), sum(sxq));
  };
  for (int k = 0; k < grid.steps; ++k) {
    const float inv_scale = (levels + grid.step * static_cast<float>(k - grid.steps / 2)) / range;
    const Line f = try_grid(lo, inv_scale);
    if (f.err < best.err)
      best = f;
  }
  for (int r = 0; r < kRefinements && best.s > 0.f; ++r) {
    const Line f = try_grid(best.b, 1.f / best.s);
    if (!(f.err < best.err))
      break;
    best = f;
  }
  return best;
}

// Step 1, symmetric: the least-squares scale for the levels a grid assigns, y = s * q; its
// error is sxx - gain with gain = sxq^2 / sqq.
struct Scale {
  float s;
  double gain;
};

Scale fit_sub_symmetric(const float* v, int len, float nmax, GridSearch grid) {
  float amax = 0.f, vmax = 0.f;
  for (int i = 0; i < len; ++i) {
    if (std::fabs(v[i]) > amax) {
      amax = std::fabs(v[i]);
      vmax = v[i];
    }
  }
  Scale best{0.f, 0.0};
  if (!(amax > 0.f))
    return best;
  auto try_grid = [&](float inv_scale) {
    Lanes lqq{}, lxq{};
    for (int i = 0; i < len; i += kLanes) {
      for (int l = 0; l < kLanes; ++l) {
        const float q = level(v[i + l] * inv_scale, -nmax, nmax - 1.f);
        lqq[l] += q * q;
        lxq[l] += q * v[i + l];
      }
    }
    const float sqq = sum(lqq), sxq = sum(lxq);
    return sqq > 0.f ? Scale{sxq / sqq, static_cast<double>(sxq) * sxq / sqq} : Scale{0.f, 0.0};
  };
  // The value of largest magnitude towards -nmax (the side with one level more) or towards
  // nmax - 1: with few levels (Q3_K) which side it takes matters.
  for (const float side : {-nmax, nmax - 1.f}) {
    const float dir = side < 0.f ? -1.f : 1.f;
    for (int k = 0; k < grid.steps; ++k) {
      const float target = side + dir * grid.step * static_cast<float>(k - grid.steps / 2);
      const Scale f = try_grid(target / vmax);
      if (f.gain > best.gain)
        best = f;
    }
  }
  for (int r = 0; r < kRefinements && best.s != 0.f; ++r) {
    const Scale f = try_grid(1.f / best.s);
    if (!(f.gain > best.gain))
      break;
    best = f;
  }
  return best;
}

// The candidates for an integer code of `value` in steps of `unit`: the two nearest in [lo, hi]
// (one when unit is 0 or they coincide after clamping). Returns how many.
int code_candidates(float value, float unit, int lo, int hi, int* out) {
  if (!(unit != 0.f)) {
    out[0] = std::clamp(0, lo, hi);
    return 1;
  }
  const float f = std::floor(std::min(static_cast<float>(hi), std::max(static_cast<float>(lo), value / unit)));
  out[0] = static_cast<int>(f);
  if (out[0] >= hi)
    return 1;
  out[1] = out[0] + 1;
  return 2;
}

// Step 2, asymmetric, for one sub-block: the codes and levels with the least error under the
// decoded d and dmin. Writes the levels to q and returns the error.
double choose_asymmetric(const float* v, int len, float levels, int max_code, float d, float dmin, const Line& line,
                         int* sc, int* mn, std::int8_t* q) {
  int scs[2], mns[2];
  const int n_sc = code_candidates(line.s, d, 0, max_code, scs);
  double best = std::numeric_limits<double>::infinity();
  // The best candidate's levels and the current one's, by turns; zero if none is finite.
  float levels_of[2][32];
  std::fill(levels_of[0], levels_of[0] + len, 0.f);
  int kept = 0;
  for (int a = 0; a < n_sc; ++a) {
    // The minimum that best goes with this rounded scale, for the levels step 1 chose.
    const float dl = d * static_cast<float>(scs[a]);
    const float m = -std::min(0.f, (line.sx - dl * line.sq) / static_cast<float>(len));
    const int n_mn = code_candidates(m, dmin, 0, max_code, mns);
    for (int c = 0; c < n_mn; ++c) {
      const float ml = dmin * static_cast<float>(mns[c]);
      const float inv = dl > 0.f ? 1.f / dl : 0.f;
      Lanes lerr{};
      for (int i = 0; i < len; i += kLanes) {
        for (int l = 0; l < kLanes; ++l) {
          const float qf = level((v[i + l] + ml) * inv, 0.f, levels);
          const float e = v[i + l] - (dl * qf - ml);
          lerr[l] += e * e;
          levels_of[1 - kept][i + l] = qf;
        }
      }
      const float err = sum(lerr);
      if (err < best) {
        best = err;
        *sc = scs[a];
        *mn = mns[c];
        kept = 1 - kept;
      }
    }
  }
  for (int i = 0; i < len; ++i)
    q[i] = static_cast<std::int8_t>(levels_of[kept][i]);
  return best;
}

// Step 2, symmetric, for one sub-block of 16.
double choose_symmetric(const float* v, float nmax, int code_neg, float d, const Scale& scale, int* sc,
                        std::int8_t* q) {
  int codes[2];
  const int n = code_candidates(scale.s, d, -code_neg, code_neg - 1, codes);
  double best = std::numeric_limits<double>::infinity();
  float levels_of[2][16];  // as in choose_asymmetric
  std::fill(levels_of[0], levels_of[0] + 16, 0.f);
  int kept = 0;
  for (int a = 0; a < n; ++a) {
    const float dl = d * static_cast<float>(codes[a]);
    const float inv = dl != 0.f ? 1.f / dl : 0.f;
    Lanes lerr{};
    for (int i = 0; i < 16; i += kLanes) {
      for (int l = 0; l < kLanes; ++l) {
        const float qf = level(v[i + l] * inv, -nmax, nmax - 1.f);
        const float e = v[i + l] - dl * qf;
        lerr[l] += e * e;
        levels_of[1 - kept][i + l] = qf;
      }
    }
    const float err = sum(lerr);
    if (err < best) {
      best = err;
      *sc = codes[a];
      kept = 1 - kept;
    }
  }
  for (int i = 0; i < 16; ++i)
    q[i] = static_cast<std::int8_t>(levels_of[kept][i]);
  return best;
}

// Chosen by measurement (N(0, 1), Student-t with 3 degrees of freedom, SmolLM2's weights): a
// finer or wider grid gains under 1% of squared error at several times the time.
GridSearch asymmetric_grid(int levels) {
  switch (levels) {
    case 3:  // Q2_K
      return {8, 0.2f};
    case 15:  // Q4_K
      return {10, 0.2f};
    default:  // Q5_K
      return {6, 0.5f};
  }
}

GridSearch symmetric_grid(int nmax) {
  return nmax <= 4 ? GridSearch{5, 0.2f} : GridSearch{4, 1.f};  // Q3_K, Q6_K
}

}  // namespace

void fit_asymmetric(const float* x, int subs, int len, int levels, int max_code, SuperBlockFit* fit) {
  const GridSearch grid = asymmetric_grid(levels);
  const float top = static_cast<float>(levels);
  Line line[16];
  float smax = 0.f, mmax = 0.f;
  for (int j = 0; j < subs; ++j) {
    line[j] = fit_sub_asymmetric(x + j * len, len, top, grid);
    smax = std::max(smax, line[j].s);
    mmax = std::max(mmax, -line[j].b);
  }
  float d = smax / static_cast<float>(max_code), dmin = mmax / static_cast<float>(max_code);
  double best = std::numeric_limits<double>::infinity();
  SuperBlockFit trial;
  for (int round = 0; round < kRounds; ++round) {
    trial.d = f32_to_f16(d);
    trial.dmin = f32_to_f16(dmin);
    const float df = f16_to_f32(trial.d), dmf = f16_to_f32(trial.dmin);
    double total = 0;
    for (int j = 0; j < subs; ++j)
      total += choose_asymmetric(x + j * len, len, top, max_code, df, dmf, line[j], &trial.sc[j], &trial.mn[j],
                                 trial.q + j * len);
    if (total < best) {
      best = total;
      *fit = trial;
    }
    if (round + 1 == kRounds)
      break;
    // Step 3: minimise sum (d * u - dmin * w - x)^2 over d and dmin, u = sc * q, w = mn.
    double suu = 0, suw = 0, sww = 0, sux = 0, swx = 0;
    for (int j = 0; j < subs; ++j) {
      const double w = trial.mn[j];
      double su = 0, sx = 0;
      for (int i = 0; i < len; ++i) {
        const double u = static_cast<double>(trial.sc[j]) * trial.q[j * len + i];
        const double xv = x[j * len + i];
        suu += u * u;
        sux += u * xv;
        su += u;
        sx += xv;
      }
      suw += w * su;
      sww += w * w * len;
      swx += w * sx;
    }
    if (!(suu > 0))
      break;
    double nd = 0, nm = dmin;
    const double det = suu * sww - suw * suw;
    if (sww > 0 && det > 1e-12 * suu * sww) {
      nd = (sux * sww - suw * swx) / det;
      nm = (suw * sux - suu * swx) / det;
    } else {
      nd = (sux + nm * suw) / suu;
    }
    if (nm < 0) {
      nm = 0;
      nd = sux / suu;
    }
    if (!(nd > 0))
      break;
    d = static_cast<float>(nd);
    dmin = static_cast<float>(nm);
  }
}

void fit_symmetric(const float* x, int nmax, int code_neg, SuperBlockFit* fit) {
  const GridSearch grid = symmetric_grid(nmax);
  const float top = static_cast<float>(nmax);
  Scale scale[16];
  float sbig = 0.f;
  for (int j = 0; j < 16; ++j) {
    scale[j] = fit_sub_symmetric(x + j * 16, 16, top, grid);
    if (std::fabs(scale[j].s) > std::fabs(sbig))
      sbig = scale[j].s;
  }
  // The largest scale maps to code -code_neg, the side with one code more.
  float d = sbig / static_cast<float>(-code_neg);
  double best = std::numeric_limits<double>::infinity();
  SuperBlockFit trial;
  for (int round = 0; round < kRounds; ++round) {
    trial.d = f32_to_f16(d);
    const float df = f16_to_f32(trial.d);
    double total = 0;
    for (int j = 0; j < 16; ++j)
      total += choose_symmetric(x + j * 16, top, code_neg, df, scale[j], &trial.sc[j], trial.q + j * 16);
    if (total < best) {
      best = total;
      *fit = trial;
    }
    if (round + 1 == kRounds)
      break;
    // Step 3: minimise sum (d * u - x)^2, u = sc * q.
    double suu = 0, sux = 0;
    for (int j = 0; j < 16; ++j) {
      for (int i = 0; i < 16; ++i) {
        const double u = static_cast<double>(trial.sc[j]) * trial.q[j * 16 + i];
        suu += u * u;
        sux += u * x[j * 16 + i];
      }
    }
    if (!(suu > 0))
      break;
    d = static_cast<float>(sux / suu);
  }
}

}  // namespace halyard::detail
