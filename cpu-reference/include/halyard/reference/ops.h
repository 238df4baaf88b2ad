// The scalar reference implementation of every op in hal/ops.h: the oracle the conformance
// suite compares every backend with. Plain loops, F32 storage, F64 accumulation in every
// reduction, single-threaded, no SIMD. Readable first; fast never.
// Thread safety: pure functions of their arguments.
#pragma once

#include <span>

#include "halyard/hal/host.h"
#include "halyard/hal/ops.h"
#include "halyard/hal/status.h"
#include "halyard/hal/tensor.h"

namespace halyard::reference {

using halyard::HostTensor;

// Runs one op. Validates shapes with infer_output and index inputs (ids, positions, slots)
// against their ranges; a bad index is an out_of_range error, never a wild access.
Status run_op(OpKind op, std::span<const HostTensor> inputs, const HostTensor& output, const OpParams& params);

}  // namespace halyard::reference
