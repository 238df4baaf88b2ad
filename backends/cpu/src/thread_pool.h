// A fixed pool of worker threads for data-parallel loops. Workers spin briefly between jobs
// (a decode step runs hundreds of small ops, and waking a sleeping thread costs more than the
// op) and then sleep on a condition variable.
// Thread safety: parallel_for may be called from several threads; calls are serialised.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace halyard::cpu {

class ThreadPool {
 public:
  // `threads` counts the calling thread: 1 means no workers.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  // Runs task(i) for every i in [0, n_tasks), spread over all threads; returns when all ran.
  void parallel_for(int n_tasks, const std::function<void(int)>& task);

 private:
  void worker_loop();
  void run_tasks();

  std::vector<std::thread> workers_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<int> next_task_{0};
  std::atomic<int> busy_workers_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int)>* task_ = nullptr;
  int n_tasks_ = 0;
  std::mutex call_mutex_;  // one parallel_for at a time
  std::mutex mutex_;
  std::condition_variable wake_;
};

// Physical cores of this machine (logical CPUs when topology is unknown).
int physical_cores();

}  // namespace halyard::cpu
