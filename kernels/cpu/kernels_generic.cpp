// Portable kernels: plain loops the compiler may vectorise for the baseline ISA.
#include <cmath>
#include <cstdlib>
#include <cstring>

#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "halyard/hal/dtype.h"
#include "kernels.h"
#include "kernels_common.h"
#include "kquant_scales.h"
#include "kquants.h"

namespace halyard::cpu {
namespace {

void quantize_activations(const float* x, ActBlock* out, int n_blocks) {
  for (int b = 0; b < n_blocks; ++b, x += kQuantBlock) {
    float sum = 0.f;
    for (int g = 0; g < kQuantBlock / kActGroup; ++g) {
      float amax = 0.f;
      for (int j = 0; j < kActGroup; ++j)
        amax = std::fmax(amax, std::fabs(x[g * kActGroup + j]));
      const float d = amax / 127.f;
      const float id = d != 0.f ? 127.f / amax : 0.f;
      int group_sum = 0;
      for (int j = 0; j < kActGroup; ++j) {
        const int q = static_cast<int>(std::nearbyint(x[g * kActGroup + j] * id));
        out[b].qs[g * kActGroup + j] = static_cast<std::int8_t>(q);
        group_sum += q;
      }
      out[b].d[g] = d;
      sum += d * static_cast<float>(group_sum);
    }
    out[b].sum = sum;
  }
}

// Sum over one block of w_q[j] * x.qs[j] * x.d[j / 4], weights given as integers.
inline float block_dot(const int* wq, const ActBlock& x) {
  float acc = 0.f;
  for (int g = 0; g < kQuantBlock / kActGroup; ++g) {
    int s = 0;
    for (int j = g * kActGroup; j < (g + 1) * kActGroup; ++j)
      s += wq[j] * x.qs[j];
    acc += x.d[g] * static_cast<float>(s);
  }
  return acc;
}

float dot_q8_0(const BlockQ8_0* w, const ActBlock* x, int n_blocks) {
  float acc = 0.f;
  int wq[kQuantBlock];
  for (int b = 0; b < n_blocks; ++b) {
    for (int j = 0; j < kQuantBlock; ++j)
      wq[j] = w[b].qs[j];
    acc += f16_to_f32(w[b].d) * block_dot(wq, x[b]);
  }
  return acc;
}

void unpack_nibbles(const std::uint8_t* qs, int* wq) {
  for (int j = 0; j < kQuantBlock / 2; ++j) {
    wq[j] = qs[j] & 0x0f;
    wq[j + kQuantBlock / 2] = qs[j] >> 4;
  }
}

float dot_q4_0(const BlockQ4_0* w, const ActBlock* x, int n_blocks) {
  float acc = 0.f;
  int wq[kQuantBlock];
  for (int b = 0; b < n_blocks; ++b) {
    unpack_nibbles(w[b].qs, wq);
    // sum (q - 8) * x = sum q * x - 8 * sum x
    acc += f16_to_f32(w[b].d) * (block_dot(wq, x[b]) - 8.f * x[b].sum);
  }
  return acc;
}

float dot_q4_1(const BlockQ4_1* w, const ActBlock* x, int n_blocks) {
  float acc = 0.f;
  int wq[kQuantBlock];
  for (int b = 0; b < n_blocks; ++b) {
    unpack_nibbles(w[b].qs, wq);
    acc += f16_to_f32(w[b].d) * block_dot(wq, x[b]) + f16_to_f32(w[b].m) * x[b].sum;
  }
  return acc;
}

#include "iq4_generic.inc"
#include "legacy_kquants_generic.inc"

float dot_f32(const float* w, const float* x, int n) {
  float acc = 0.f;
  for (int i = 0; i < n; ++i)
    acc += w[i] * x[i];
  return acc;
}

float dot_f16(const std::uint16_t* w, const float* x, int n) {
  float acc = 0.f;
  for (int i = 0; i < n; ++i)
    acc += f16_to_f32(w[i]) * x[i];
  return acc;
}

float dot_bf16(const std::uint16_t* w, const float* x, int n) {
  float acc = 0.f;
  for (int i = 0; i < n; ++i)
    acc += bf16_to_f32(w[i]) * x[i];
  return acc;
}

KernelTable make_generic() {
  KernelTable t{"generic",
                dot_many_by_dots<dot_f32>,
                weighted_sum_scalar,
                exp_sum_scalar,
                swiglu_scalar,
                geglu_scalar,
                nullptr,
                quantize_activations,
                dot_f32,
                dot_f16,
                dot_bf16,
                widen_f16_scalar};
  t.set(DType::kQ8_0, dot_kernels<BlockQ8_0, dot_q8_0>());
  t.set(DType::kQ4_0, dot_kernels<BlockQ4_0, dot_q4_0>());
  t.set(DType::kQ4_1, dot_kernels<BlockQ4_1, dot_q4_1>());
  t.set(DType::kQ5_0, dot_kernels<BlockQ5_0, dot_q5_0>());
  t.set(DType::kQ5_1, dot_kernels<BlockQ5_1, dot_q5_1>());
  t.set(DType::kQ2_K, dot_kernels<BlockQ2_K, dot_q2_k>());
  t.set(DType::kQ3_K, dot_kernels<BlockQ3_K, dot_q3_k>());
  t.set(DType::kQ4_K, dot_kernels<BlockQ4_K, dot_q4_k_generic>());
  t.set(DType::kQ5_K, dot_kernels<BlockQ5_K, dot_q5_k_generic>());
  t.set(DType::kQ6_K, dot_kernels<BlockQ6_K, dot_q6_k_generic>());
  t.set(DType::kIQ4_NL, dot_kernels<BlockIQ4_NL, dot_iq4_nl>());
  t.set(DType::kIQ4_XS, dot_kernels<BlockIQ4_XS, dot_iq4_xs>());
  return t;
}

}  // namespace

#if defined(__x86_64__)
bool cpu_has_avx512_bf16() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512bf16");
}
#endif

const KernelTable& generic_kernels() {
  static const KernelTable table = make_generic();
  return table;
}

namespace {

// Whether this CPU has the instruction sets of each SIMD table.
bool cpu_runs_avx512vnni() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}
bool cpu_runs_avx2() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}
bool cpu_runs_neon_dotprod() {
#if defined(__aarch64__) && defined(__linux__)
  return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
  return false;
#endif
}

}  // namespace

std::vector<const KernelTable*> runnable_kernel_tables() {
  std::vector<const KernelTable*> tables{&generic_kernels()};
  if (const KernelTable* t = neon_kernels(); t && cpu_runs_neon_dotprod())
    tables.push_back(t);
  if (const KernelTable* t = avx2_kernels(); t && cpu_runs_avx2())
    tables.push_back(t);
  if (const KernelTable* t = avx512vnni_kernels(); t && cpu_runs_avx512vnni())
    tables.push_back(t);
  return tables;
}

const KernelTable& select_kernels(const char* forced) {
  const KernelTable* avx512 = avx512vnni_kernels();
  const KernelTable* avx2 = avx2_kernels();
  const KernelTable* neon = neon_kernels();
  if (forced && *forced) {
    if (std::strcmp(forced, "generic") == 0)
      return generic_kernels();
    if (std::strcmp(forced, "neon-dotprod") == 0 && neon)
      return *neon;
    if (std::strcmp(forced, "avx2") == 0 && avx2)
      return *avx2;
    if (std::strcmp(forced, "avx512vnni") == 0 && avx512)
      return *avx512;
  }
  return *runnable_kernel_tables().back();
}

}  // namespace halyard::cpu
