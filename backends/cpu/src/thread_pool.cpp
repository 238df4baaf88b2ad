#include "thread_pool.h"

#include <fstream>
#include <set>
#include <string>
#include <utility>

#if defined(__x86_64__)
#include <immintrin.h>
#define HALYARD_PAUSE() _mm_pause()
#else
#define HALYARD_PAUSE() std::this_thread::yield()
#endif

namespace halyard::cpu {

namespace {
// Waiting goes from cheap to polite: pause-spin (the next op usually comes within
// microseconds), then yield (another thread may need this core: on an oversubscribed machine a
// spinning waiter starves the very worker it waits for), then sleep.
constexpr int kPauseSpins = 2048;
constexpr int kYieldSpins = kPauseSpins + 4096;

inline void backoff(int spin) {
  if (spin < kPauseSpins) {
    HALYARD_PAUSE();
  } else {
    std::this_thread::yield();
  }
}
}  // namespace

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i)
    workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  {
    std::lock_guard lock(mutex_);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& t : workers_)
    t.join();
}

void ThreadPool::run_tasks() {
  for (int i = next_task_.fetch_add(1); i < n_tasks_; i = next_task_.fetch_add(1))
    (*task_)(i);
}

void ThreadPool::worker_loop() {
  std::uint64_t seen = 0;
  while (true) {
    int spins = 0;
    while (generation_.load() == seen) {
      if (++spins < kYieldSpins) {
        backoff(spins);
        continue;
      }
      std::unique_lock lock(mutex_);
      sleepers_.fetch_add(1);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
      sleepers_.fetch_sub(1);
    }
    seen = generation_.load();
    if (stop_.load())
      return;
    run_tasks();
    busy_workers_.fetch_sub(1);
  }
}

void ThreadPool::parallel_for(int n_tasks, const std::function<void(int)>& task) {
  if (n_tasks <= 0)
    return;
  if (workers_.empty() || n_tasks == 1) {
    for (int i = 0; i < n_tasks; ++i)
      task(i);
    return;
  }
  std::lock_guard call(call_mutex_);
  task_ = &task;
  n_tasks_ = n_tasks;
  next_task_.store(0);
  busy_workers_.store(static_cast<int>(workers_.size()));
  generation_.fetch_add(1);
  if (sleepers_.load() > 0) {
    std::lock_guard lock(mutex_);
    wake_.notify_all();
  }
  run_tasks();
  for (int spin = 0; busy_workers_.load() > 0; ++spin)
    backoff(spin);
}

int physical_cores() {
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, physical = "0";
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos)
      continue;
    const std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "physical id")
      physical = value;
    if (key == "core id")
      cores.emplace(physical, value);
  }
  const int logical = static_cast<int>(std::thread::hardware_concurrency());
  if (cores.empty())
    return logical > 0 ? logical : 1;
  return static_cast<int>(cores.size());
}

}  // namespace halyard::cpu
