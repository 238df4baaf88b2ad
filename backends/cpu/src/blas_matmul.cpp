#include "blas_matmul.h"

#include <algorithm>

#if HALYARD_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace halyard::cpu {

#if HALYARD_HAVE_OPENBLAS

bool blas_available() {
  return true;
}

void blas_set_threads(int threads) {
  openblas_set_num_threads(threads);
}

Status blas_matmul(CpuContext& ctx, const HostTensor& w, const HostTensor& x, const HostTensor& out) {
  const std::int64_t k = w.desc.ne[0], m = w.desc.ne[1], n = x.desc.ne[1];
  // Bands of about 2M weights (8 MB of f32) stay in the last-level cache between the
  // dequantization and sgemm.
  const std::int64_t band = std::max<std::int64_t>(16, (std::int64_t{1} << 21) / k / 16 * 16);
  auto& buf = ctx.scratch.dequantized;
  buf.resize(static_cast<std::size_t>(std::min(band, m) * k));
  const auto* wb = static_cast<const std::uint8_t*>(w.data);
  const std::size_t row_size = w.desc.row_size();
  for (std::int64_t j0 = 0; j0 < m; j0 += band) {
    const std::int64_t rows = std::min(band, m - j0);
    const int chunk = 16;
    ctx.pool.parallel_for(static_cast<int>((rows + chunk - 1) / chunk), [&](int c) {
      for (std::int64_t r = std::int64_t{c} * chunk; r < std::min(rows, std::int64_t{c + 1} * chunk); ++r) {
        dequantize_row(w.desc.dtype, wb + static_cast<std::size_t>(j0 + r) * row_size, buf.data() + r * k, k);
      }
    });
    // out[t, j0 + r] = sum_i x[t, i] * band[r, i]: C (n x rows, ld m) = X (n x k) * B^T
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(rows),
                static_cast<int>(k), 1.f, static_cast<const float*>(x.data), static_cast<int>(k), buf.data(),
                static_cast<int>(k), 0.f, static_cast<float*>(out.data) + j0, static_cast<int>(m));
  }
  return Status::ok();
}

#else

bool blas_available() {
  return false;
}
void blas_set_threads(int) {}
Status blas_matmul(CpuContext&, const HostTensor&, const HostTensor&, const HostTensor&) {
  return unimplemented("this build has no OpenBLAS");
}

#endif

}  // namespace halyard::cpu
