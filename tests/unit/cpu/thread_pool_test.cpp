// The cpu backend's thread pool: every index of a parallel_for runs exactly once, whether there
// are fewer tasks than threads or many more, call after call (a lost or doubled index would be
// a silently wrong row of a matrix product).
#include "thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace halyard::cpu {
namespace {

void expect_each_index_once(ThreadPool& pool, int n_tasks) {
  std::vector<std::atomic<int>> runs(static_cast<std::size_t>(n_tasks));
  for (auto& r : runs)
    r.store(0);
  pool.parallel_for(n_tasks, [&](int i) {
    ASSERT_GE(i, 0);
    ASSERT_LT(i, n_tasks);
    runs[static_cast<std::size_t>(i)].fetch_add(1);
  });
  // parallel_for returns only when every task has run: no waiting here.
  for (int i = 0; i < n_tasks; ++i)
    ASSERT_EQ(runs[static_cast<std::size_t>(i)].load(), 1) << "index " << i << " of " << n_tasks;
}

class ThreadPoolSizes : public ::testing::TestWithParam<int> {};

TEST_P(ThreadPoolSizes, EveryIndexRunsExactlyOnceRepeatedly) {
  const int threads = GetParam();
  ThreadPool pool(threads);
  EXPECT_EQ(pool.size(), threads);
  // Fewer tasks than threads, as many, and many more; each repeated so that workers which slept
  // between calls and workers still spinning from the last one are both exercised.
  for (int round = 0; round < 50; ++round) {
    for (int n : {1, 2, threads - 1, threads, threads + 1, 3 * threads + 2, 1000}) {
      if (n <= 0)
        continue;
      expect_each_index_once(pool, n);
    }
  }
}

TEST_P(ThreadPoolSizes, AfterWorkersSleepTheyStillRunEverything) {
  ThreadPool pool(GetParam());
  for (int round = 0; round < 3; ++round) {
    // Long enough for a worker to go past spinning into its condition-variable wait.
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    expect_each_index_once(pool, 257);
  }
}

TEST_P(ThreadPoolSizes, ReturnsOnlyWhenEveryTaskHasFinished) {
  // Tasks slow enough that workers are still inside theirs when the caller runs out of work: a
  // parallel_for that returned then would leave some unfinished.
  ThreadPool pool(GetParam());
  for (int round = 0; round < 5; ++round) {
    const int n = 2 * pool.size() + 1;
    std::vector<std::atomic<int>> done(static_cast<std::size_t>(n));
    for (auto& d : done)
      d.store(0);
    pool.parallel_for(n, [&](int i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      done[static_cast<std::size_t>(i)].store(1);
    });
    for (int i = 0; i < n; ++i)
      ASSERT_EQ(done[static_cast<std::size_t>(i)].load(), 1) << "task " << i << " had not finished";
  }
}

TEST_P(ThreadPoolSizes, NoTasksRunsNothing) {
  ThreadPool pool(GetParam());
  std::atomic<int> runs{0};
  pool.parallel_for(0, [&](int) { runs.fetch_add(1); });
  pool.parallel_for(-3, [&](int) { runs.fetch_add(1); });
  EXPECT_EQ(runs.load(), 0);
}

TEST(ThreadPool, ConcurrentCallersAreSerialisedAndComplete) {
  ThreadPool pool(4);
  std::vector<std::thread> callers;
  std::atomic<bool> ok{true};
  for (int c = 0; c < 3; ++c) {
    callers.emplace_back([&, c] {
      for (int round = 0; round < 30; ++round) {
        const int n = 17 + 13 * c + round;
        std::vector<std::atomic<int>> runs(static_cast<std::size_t>(n));
        for (auto& r : runs)
          r.store(0);
        pool.parallel_for(n, [&](int i) { runs[static_cast<std::size_t>(i)].fetch_add(1); });
        for (auto& r : runs) {
          if (r.load() != 1)
            ok.store(false);
        }
      }
    });
  }
  for (auto& t : callers)
    t.join();
  EXPECT_TRUE(ok.load());
}

INSTANTIATE_TEST_SUITE_P(Threads, ThreadPoolSizes, ::testing::Values(1, 2, 3, 8),
                         [](const auto& info) { return std::to_string(info.param) + "threads"; });

}  // namespace
}  // namespace halyard::cpu
