// Portable kernels: plain loops the compiler may vectorise for the baseline ISA.
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "halyard/hal/dtype.h"
#include "kernels.h"

namespace halyard::cpu {
namespace {

void quantize_activations(const float* x, ActBlock* out, int n_blocks) {
  for (int b = 0; b < n_blocks; ++b, x += kQuantBlock) {
    float amax = 0.f;
    for (int j = 0; j < kQuantBlock; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    int sum = 0;
    for (int j = 0; j < kQuantBlock; ++j) {
      const int q = static_cast<int>(std::nearbyint(x[j] * id));
      out[b].qs[j] = static_cast<std::int8_t>(q);
      sum += q;
    }
    out[b].d = d;
    out[b].sum = d * static_cast<float>(sum);
  }
}

float dot_q8_0(const BlockQ8_0* w, const ActBlock* x, int n_blocks) {
  float acc = 0.f;
  for (int b = 0; b < n_blocks; ++b) {
    int s = 0;
    for (int j = 0; j < kQuantBlock; ++j) s += w[b].qs[j] * x[b].qs[j];
    acc += f16_to_f32(w[b].d) * x[b].d * static_cast<float>(s);
  }
  return acc;
}

float dot_q4_0(const BlockQ4_0* w, const ActBlock* x, int n_blocks) {
  float acc = 0.f;
  for (int b = 0; b < n_blocks; ++b) {
    int s = 0;
    for (int j = 0; j < kQuantBlock / 2; ++j) {
      s += (w[b].qs[j] & 0x0f) * x[b].qs[j] + (w[b].qs[j] >> 4) * x[b].qs[j + kQuantBlock / 2];
    }
    // sum (q - 8) * xq * dx = dx * s - 8 * sum
    acc += f16_to_f32(w[b].d) * (x[b].d * static_cast<float>(s) - 8.f * x[b].sum);
  }
  return acc;
}

float dot_q4_1(const BlockQ4_1* w, const ActBlock* x, int n_blocks) {
  float acc = 0.f;
  for (int b = 0; b < n_blocks; ++b) {
    int s = 0;
    for (int j = 0; j < kQuantBlock / 2; ++j) {
      s += (w[b].qs[j] & 0x0f) * x[b].qs[j] + (w[b].qs[j] >> 4) * x[b].qs[j + kQuantBlock / 2];
    }
    acc += f16_to_f32(w[b].d) * x[b].d * static_cast<float>(s) + f16_to_f32(w[b].m) * x[b].sum;
  }
  return acc;
}

float dot_f32(const float* w, const float* x, int n) {
  float acc = 0.f;
  for (int i = 0; i < n; ++i) acc += w[i] * x[i];
  return acc;
}

float dot_f16(const std::uint16_t* w, const float* x, int n) {
  float acc = 0.f;
  for (int i = 0; i < n; ++i) acc += f16_to_f32(w[i]) * x[i];
  return acc;
}

float dot_bf16(const std::uint16_t* w, const float* x, int n) {
  float acc = 0.f;
  for (int i = 0; i < n; ++i) acc += bf16_to_f32(w[i]) * x[i];
  return acc;
}

const KernelTable kGeneric{"generic", quantize_activations, dot_q8_0, dot_q4_0, dot_q4_1, dot_f32, dot_f16, dot_bf16};

}  // namespace

const KernelTable& generic_kernels() { return kGeneric; }

const KernelTable& select_kernels(const char* forced) {
  const KernelTable* avx512 = avx512vnni_kernels();
  const KernelTable* avx2 = avx2_kernels();
  if (forced && *forced) {
    if (std::strcmp(forced, "generic") == 0) return kGeneric;
    if (std::strcmp(forced, "avx2") == 0 && avx2) return *avx2;
    if (std::strcmp(forced, "avx512vnni") == 0 && avx512) return *avx512;
  }
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (avx512 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni")) {
    return *avx512;
  }
  if (avx2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
    return *avx2;
  }
#endif
  return kGeneric;
}

}  // namespace halyard::cpu
