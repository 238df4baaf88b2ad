// The cpu backend's implementation of every op: multi-threaded where it pays (matrix products,
// attention), SIMD through the dispatched kernel table.
#pragma once

#include <span>
#include <vector>

#include "halyard/hal/graph.h"
#include "halyard/hal/host.h"
#include "kernels.h"
#include "thread_pool.h"

namespace halyard::cpu {

// Per-executable scratch memory (quantized activations), reused across runs.
struct Scratch {
  std::vector<ActBlock> activations;
};

struct CpuContext {
  ThreadPool& pool;
  const KernelTable& kernels;
  Scratch& scratch;
};

Status run_cpu_op(CpuContext& ctx, const GraphNode& node, std::span<const HostTensor> in, const HostTensor& out);

}  // namespace halyard::cpu
