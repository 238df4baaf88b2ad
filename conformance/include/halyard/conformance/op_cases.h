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
// kBlockTable: ATTENTION's block table [max_blocks, slots], laid out as the case's KvTable says.
// kTies: rows whose maximum occurs more than once (ARGMAX's "first maximum wins"), in turn:
// integers in [-3, 3]; one constant; N(0, 1) with its maximum copied to a random later index
// and to the last; -1, -0 and +0 mixed (0 and -0 compare equal); N(0, 1) whose single maximum
// is the last element. kFreqFactors: ROPE's freq_factors [rope_dims / 2] as Llama 3.1 makes them
// from the case's rope_base and rope_dims (factor 8, low/high frequency factors 1 and 4, an
// original context of 8192): 1 for wavelengths under 2048, 8 over 8192, smooth in between.
enum class Fill { kRandom, kIds, kPositions, kSlots, kCache, kTinyRows, kBlockTable, kTies, kFreqFactors };

// How an ATTENTION case maps its sequences' logical blocks onto the pool of physical blocks.
// kIdentity: slot s owns blocks s * max_blocks... in order (an unpaged cache's layout);
// kPermuted: every (slot, block) gets a distinct block of a random permutation of the pool;
// kSharedPrefix: as kPermuted, but every slot's first shared_blocks entries are the same blocks
// (a common prefix; the case's tokens only write past it); kOutOfPool: as kIdentity with the
// last entry a token reads set to n_blocks (a case that must be rejected).
enum class KvTable { kIdentity, kPermuted, kSharedPrefix, kOutOfPool };

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
  int position_spread = 16;         // ATTENTION decode batch: positions prefill_start + [0, spread)
  KvTable kv_table = KvTable::kIdentity;
  int shared_blocks = 0;             // KvTable::kSharedPrefix
  bool expect_out_of_range = false;  // passes when the reference and the device both reject it
  // ATTENTION with a sliding window: every cache row of the case's sequences that no token's
  // window covers holds NaN (as a block recycled by the runtime may hold anything), so a kernel
  // that reads positions outside the window and masks them, rather than skipping them, fails.
  bool nan_outside_window = false;
};

// Every op x every weight dtype x edge-case shapes.
std::vector<OpCase> all_op_cases();

// Cases a backend that validates on the host must reject with out_of_range, leaving its state
// untouched (an ATTENTION block table entry outside the pool). Device kernels give the token NaN
// instead (ops.h), so these run on ref and cpu only.
std::vector<OpCase> out_of_range_op_cases();

struct CaseResult {
  bool passed = false;
  bool unsupported = false;
  double nmse = 0;
  std::string message;  // why it failed or is unsupported
};

// Runs one case on `device` and on the reference with inputs drawn from `seed`; the device's
// output buffer is poisoned with NaN first, and NaN never passes. State inputs (the K/V caches
// ATTENTION writes) are downloaded after the run and compared too: the rows written (each
// token's physical row through the block table) within the case's tolerance of the reference's,
// every other byte unchanged.
CaseResult run_op_case(Device& device, const OpCase& c, std::uint64_t seed);

}  // namespace halyard::conformance
