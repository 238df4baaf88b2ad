// The peak dot-product rates of one core, for judging prefill: f32 FMA, bf16 pairs
// (vdpbf16ps) and int8 (vpdpbusd), each as 16 independent accumulators fed from registers, so
// that only the core's issue rate bounds them (no loads, no dependency chain shorter than the
// 16 accumulators cover). A prefill GEMM's rate over these says how near the core's limit it
// runs, and which path (bf16 or int8) can go further on this core. Counts: FMA 2 ops per lane,
// vdpbf16ps 4 ops per 32-bit lane (two products, two sums), vpdpbusd 8 (four products, four
// sums). Registered in halyard-kernel-bench as peak_f32_fma_*, peak_bf16_dot_*, peak_int8_dot_*;
// a form this CPU lacks is reported as skipped with its reason.
#include <benchmark/benchmark.h>

#include <cstdint>

#if defined(__x86_64__)
#include <immintrin.h>
// GCC 12's AVX-512 headers build set1/reduce from _mm512_undefined_*, which it then warns about.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace {

constexpr int kInner = 256;  // instructions per accumulator between checks of the state

#if defined(__x86_64__)

// One pass of kInner x 16 instructions; `acc` carries the chains across passes. A macro, not
// a template: the body must be compiled inside each function's target attribute.
#define HALYARD_PEAK_PASS(STEP)                                          \
  for (int i = 0; i < kInner; ++i) {                                     \
    _Pragma("GCC unroll 16") for (int j = 0; j < 16; ++j) acc[j] = STEP; \
  }

__attribute__((target("avx2,fma"))) void peak_f32_fma_avx2(benchmark::State& state) {
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    state.SkipWithError("this CPU has no AVX2 FMA");
    return;
  }
  __m256 acc[16];
  for (auto& v : acc)
    v = _mm256_set1_ps(0.f);
  const __m256 a = _mm256_set1_ps(1.0000001f), b = _mm256_set1_ps(0.9999999f);
  for (auto _ : state)
    HALYARD_PEAK_PASS(_mm256_fmadd_ps(a, b, acc[j]));
  float sink = 0;
  for (auto& v : acc)
    sink += _mm256_cvtss_f32(v);
  benchmark::DoNotOptimize(sink);
  state.SetItemsProcessed(state.iterations() * kInner * 16 * 8 * 2);  // items = FLOP
}

__attribute__((target("avx512f"))) void peak_f32_fma_avx512(benchmark::State& state) {
  if (!__builtin_cpu_supports("avx512f")) {
    state.SkipWithError("this CPU has no AVX-512");
    return;
  }
  __m512 acc[16];
  for (auto& v : acc)
    v = _mm512_set1_ps(0.f);
  const __m512 a = _mm512_set1_ps(1.0000001f), b = _mm512_set1_ps(0.9999999f);
  for (auto _ : state)
    HALYARD_PEAK_PASS(_mm512_fmadd_ps(a, b, acc[j]));
  float sink = 0;
  for (auto& v : acc)
    sink += _mm512_reduce_add_ps(v);
  benchmark::DoNotOptimize(sink);
  state.SetItemsProcessed(state.iterations() * kInner * 16 * 16 * 2);
}

__attribute__((target("avx512f,avx512bf16"))) void peak_bf16_dot_avx512(benchmark::State& state) {
  if (!__builtin_cpu_supports("avx512bf16")) {
    state.SkipWithError("this CPU has no AVX512_BF16 (vdpbf16ps)");
    return;
  }
  __m512 acc[16];
  for (auto& v : acc)
    v = _mm512_set1_ps(0.f);
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3f80);  // 1.0
  for (auto _ : state)
    HALYARD_PEAK_PASS(_mm512_dpbf16_ps(acc[j], a, b));
  float sink = 0;
  for (auto& v : acc)
    sink += _mm512_reduce_add_ps(v);
  benchmark::DoNotOptimize(sink);
  state.SetItemsProcessed(state.iterations() * kInner * 16 * 16 * 4);
}

__attribute__((target("avx512f,avx512vnni"))) void peak_int8_dot_avx512(benchmark::State& state) {
  if (!__builtin_cpu_supports("avx512vnni")) {
    state.SkipWithError("this CPU has no AVX512_VNNI (vpdpbusd)");
    return;
  }
  __m512i acc[16];
  for (auto& v : acc)
    v = _mm512_setzero_si512();
  const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(1);
  for (auto _ : state)
    HALYARD_PEAK_PASS(_mm512_dpbusd_epi32(acc[j], a, b));
  long long sink = 0;
  for (auto& v : acc)
    sink += _mm512_reduce_add_epi32(v);
  benchmark::DoNotOptimize(sink);
  state.SetItemsProcessed(state.iterations() * kInner * 16 * 16 * 8);
}

BENCHMARK(peak_f32_fma_avx2);
BENCHMARK(peak_f32_fma_avx512);
BENCHMARK(peak_bf16_dot_avx512);
BENCHMARK(peak_int8_dot_avx512);

#undef HALYARD_PEAK_PASS
#endif

}  // namespace
