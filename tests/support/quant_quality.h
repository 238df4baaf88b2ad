// Quantizer quality checks shared by the block-format tests: random weights (normal, or with
// heavy tails as trained weights have) and the NMSE of a quantize/dequantize round trip.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "halyard/hal/dtype.h"

namespace halyard::testing {

// n weights from N(0, 1), or with heavy_tailed a Student t with 3 degrees of freedom
// (N(0, 1) / sqrt(chi^2_3 / 3)): a block's range is then set by a few outliers, and a
// quantizer that only follows the range wastes most of its levels.
inline std::vector<float> random_weights(std::int64_t n, std::uint32_t seed, bool heavy_tailed = false) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::chi_squared_distribution<float> chi2(3.f);
  std::vector<float> x(static_cast<std::size_t>(n));
  for (auto& v : x)
    v = heavy_tailed ? normal(rng) / std::sqrt(chi2(rng) / 3.f) : normal(rng);
  return x;
}

// sum (x - dequantize(quantize(x)))^2 / sum x^2 for one row of dtype.
inline double round_trip_nmse(DType dtype, const std::vector<float>& x) {
  const auto n = static_cast<std::int64_t>(x.size());
  std::vector<std::uint8_t> q(row_bytes(dtype, n));
  quantize_row(dtype, x.data(), q.data(), n);
  std::vector<float> y(x.size());
  dequantize_row(dtype, q.data(), y.data(), n);
  double err = 0, norm = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    err += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
    norm += static_cast<double>(x[i]) * x[i];
  }
  return err / norm;
}

}  // namespace halyard::testing
