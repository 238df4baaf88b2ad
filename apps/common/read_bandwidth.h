// The machine's read-bandwidth ceiling: a pure streaming read split over N threads. A decode
// step reads every weight once and writes almost nothing, so this, not the triad (two reads and
// a write per element), is the limit decode speed is judged against. Used by halyard-triad and
// by `halyard bench`, so both report the same ceiling.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

namespace halyard::apps {

struct ReadBandwidth {
  double median_gb_per_s = 0;
  double best_gb_per_s = 0;
};

// Reads `mib` MiB (well past any cache) `repeats` times with `threads` threads, each summing its
// contiguous share in 8 independent 64-bit lanes so that loads, not the additions' dependency
// chain, bound the loop. The sums are returned through `sink` so the reads cannot be removed.
inline ReadBandwidth measure_read_bandwidth(std::size_t mib, int threads, int repeats, std::uint64_t* sink) {
  threads = std::max(threads, 1);
  repeats = std::max(repeats, 1);
  const std::size_t n = std::max<std::size_t>(mib, 1) * (std::size_t{1} << 20) / sizeof(std::uint64_t) / 8 * 8;
  std::vector<std::uint64_t> data(n);
  for (std::size_t i = 0; i < n; ++i)
    data[i] = i;  // every page touched (and backed) before the timed reads
  std::vector<double> gbps;
  std::vector<std::uint64_t> sums(static_cast<std::size_t>(threads));
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        const std::size_t lo = n / 8 * static_cast<std::size_t>(t) / static_cast<std::size_t>(threads) * 8;
        const std::size_t hi = n / 8 * static_cast<std::size_t>(t + 1) / static_cast<std::size_t>(threads) * 8;
        std::uint64_t lane[8] = {};
        for (std::size_t i = lo; i < hi; i += 8) {
          for (int j = 0; j < 8; ++j)
            lane[j] += data[i + static_cast<std::size_t>(j)];
        }
        std::uint64_t s = 0;
        for (const std::uint64_t v : lane)
          s += v;
        sums[static_cast<std::size_t>(t)] = s;
      });
    }
    for (auto& th : pool)
      th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    gbps.push_back(static_cast<double>(n) * sizeof(std::uint64_t) / s / 1e9);
    for (const std::uint64_t v : sums)
      *sink += v;
  }
  std::sort(gbps.begin(), gbps.end());
  return {gbps[gbps.size() / 2], gbps.back()};
}

}  // namespace halyard::apps
