// The op-level conformance suite, written once for every backend: each case names an op, its
// input shapes and dtypes, and the tolerance its result must meet against the reference.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "halyard/hal/device.h"
#include "halyard/hal/ops.h"

namespace halyard::conformance {

// How a case fills an input. kTinyRows: rows of mean square far below or near a norm's epsilon
// (N(0, 1) scaled by 1e-4, 1e-3 and 1e-2 in turn) and every fourth row all zeros.
enum class Fill { kRandom, kIds, kPositions, kSlots, kCache, kTinyRows };

// A MATMUL case with more than two inputs is a group: one product per weight, all reading the
// last input; the outputs are compared end to end.
struct OpCase {
  std::string name;  // e.g. "MATMUL/q4_1/k96_m33_n1"
  OpKind op;
  std::vector<TensorDesc> inputs;
  std::vector<Fill> fills;
  OpParams params;
  std::int64_t id_limit = 0;        // kIds: ids in [0, id_limit)
  int prefill_start = 0;            // ATTENTION: first position of a prefill (history before it)
  double tolerance = 0;             // normalized MSE; 0 means exact
  bool one_slot_per_token = false;  // ATTENTION: a decode batch, each token its own sequence
  int prefill_slot = 0;             // ATTENTION: the sequence slot a prefill's tokens go to
};

// Every op x every weight dtype x edge-case shapes.
std::vector<OpCase> all_op_cases();

struct CaseResult {
  bool passed = false;
  bool unsupported = false;
  double nmse = 0;
  std::string message;  // why it failed or is unsupported
};

// Runs one case on `device` and on the reference with inputs drawn from `seed`; the device's
// output buffer is poisoned with NaN first, and NaN never passes. State inputs (the K/V caches
// ATTENTION writes) are downloaded after the run and compared too: the rows written (each
// token's slot and position) within the case's tolerance of the reference's, every other byte
// unchanged.
CaseResult run_op_case(Device& device, const OpCase& c, std::uint64_t seed);

}  // namespace halyard::conformance
