// STREAM-like triad, a[i] = b[i] + s * c[i], to measure this machine's memory bandwidth, counted
// as 3 x 4 bytes per element (two reads, one write); and beside it a pure streaming read of
// the same size (read_bandwidth.h), the ceiling of decode, which reads weights and writes
// almost nothing. Both in one JSON object.
//   halyard-triad [--mib N] [--threads T] [--repeats R]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "read_bandwidth.h"

int main(int argc, char** argv) {
  std::size_t mib = 1024;
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  int repeats = 7;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--mib")
      mib = std::strtoull(argv[i + 1], nullptr, 10);
    if (k == "--threads")
      threads = std::atoi(argv[i + 1]);
    if (k == "--repeats")
      repeats = std::atoi(argv[i + 1]);
  }
  const std::size_t n = mib * (1u << 20) / sizeof(float);
  std::vector<float> a(n), b(n, 1.f), c(n, 2.f);
  std::vector<double> gbps;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        const std::size_t lo = n * static_cast<std::size_t>(t) / static_cast<std::size_t>(threads);
        const std::size_t hi = n * static_cast<std::size_t>(t + 1) / static_cast<std::size_t>(threads);
        for (std::size_t i = lo; i < hi; ++i)
          a[i] = b[i] + 3.f * c[i];
      });
    }
    for (auto& th : pool)
      th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    gbps.push_back(3.0 * static_cast<double>(n) * sizeof(float) / s / 1e9);
  }
  std::sort(gbps.begin(), gbps.end());
  std::uint64_t sink = 0;
  const auto read = halyard::apps::measure_read_bandwidth(mib, threads, repeats, &sink);
  std::printf(
      "{\"test\": \"triad\", \"mib_per_array\": %zu, \"threads\": %d, \"repeats\": %d, \"median_gb_per_s\": %.1f, "
      "\"best_gb_per_s\": %.1f, \"read_median_gb_per_s\": %.1f, \"read_best_gb_per_s\": %.1f, \"check\": %.1f, "
      "\"read_check\": %llu}\n",
      mib, threads, repeats, gbps[gbps.size() / 2], gbps.back(), read.median_gb_per_s, read.best_gb_per_s,
      static_cast<double>(a[n / 2]), static_cast<unsigned long long>(sink % 1000));
  return 0;
}
