#include "halyard/conformance/op_cases.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>

#include "halyard/reference/ops.h"

namespace halyard::conformance {
namespace {

// Tolerances from the architecture: elementwise and norms 1e-7, MATMUL and ATTENTION 5e-4,
// ARGMAX and COPY exact. ROPE follows the elementwise default.
constexpr double kElementwise = 1e-7;
constexpr double kReduction = 5e-4;

const DType kWeightDtypes[] = {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kQ4_1};
// The GGUF block formats added after the first six: Q5_0 and Q5_1 (blocks of 32) and the
// K-quants (super-blocks of 256), IQ4_NL (blocks of 32) and IQ4_XS (super-blocks of 256), the
// codebook formats. Backends without kernels for them report their cases as unsupported
// through Device::supports.
const DType kBlockDtypes[] = {DType::kQ5_0, DType::kQ5_1, DType::kQ2_K,   DType::kQ3_K,  DType::kQ4_K,
                              DType::kQ5_K, DType::kQ6_K, DType::kIQ4_NL, DType::kIQ4_XS};

std::string shape_name(std::initializer_list<std::pair<const char*, std::int64_t>> dims) {
  std::string s;
  for (const auto& [k, v] : dims)
    s += (s.empty() ? "" : "_") + std::string(k) + std::to_string(v);
  return s;
}

void add_elementwise(std::vector<OpCase>& out) {
  for (const auto& [d, n] : {std::pair<std::int64_t, std::int64_t>{1, 1}, {33, 1}, {576, 7}, {100, 512}}) {
    const auto x = TensorDesc::make(DType::kF32, d, n);
    const auto row = TensorDesc::make(DType::kF32, d);
    const std::string sh = shape_name({{"d", d}, {"n", n}});
    OpParams norm;
    norm.eps = 1e-5f;
    out.push_back(
        {"RMS_NORM/f32/" + sh, OpKind::kRmsNorm, {x, row}, {Fill::kRandom, Fill::kRandom}, norm, 0, 0, kElementwise});
    out.push_back(
        {"SWIGLU/f32/" + sh, OpKind::kSwiglu, {x, x}, {Fill::kRandom, Fill::kRandom}, {}, 0, 0, kElementwise});
    out.push_back({"GEGLU/f32/" + sh, OpKind::kGeglu, {x, x}, {Fill::kRandom, Fill::kRandom}, {}, 0, 0, kElementwise});
    out.push_back({"ADD/f32/" + sh, OpKind::kAdd, {x, x}, {Fill::kRandom, Fill::kRandom}, {}, 0, 0, kElementwise});
    out.push_back(
        {"ADD/f32/broadcast_" + sh, OpKind::kAdd, {x, row}, {Fill::kRandom, Fill::kRandom}, {}, 0, 0, kElementwise});
    out.push_back({"MUL/f32/" + sh, OpKind::kMul, {x, x}, {Fill::kRandom, Fill::kRandom}, {}, 0, 0, kElementwise});
    out.push_back(
        {"MUL/f32/broadcast_" + sh, OpKind::kMul, {x, row}, {Fill::kRandom, Fill::kRandom}, {}, 0, 0, kElementwise});
    out.push_back({"SOFTMAX/f32/" + sh, OpKind::kSoftmax, {x}, {Fill::kRandom}, {}, 0, 0, kElementwise});
    out.push_back({"ARGMAX/f32/" + sh, OpKind::kArgmax, {x}, {Fill::kRandom}, {}, 0, 0, 0});
  }
  // Rows whose mean square is below or near epsilon (1e-8 to 1e-4 against 1e-5 or 1e-6) and all
  // zero rows (0, not NaN): random N(0, 1) inputs would pass a kernel that ignores epsilon.
  for (const auto& [d, n, eps] : {std::tuple<std::int64_t, std::int64_t, float>{576, 8, 1e-5f}, {100, 12, 1e-6f}}) {
    OpParams norm;
    norm.eps = eps;
    out.push_back(
        {"RMS_NORM/f32/tiny_rows_" + shape_name({{"d", d}, {"n", n}}) + (eps < 5e-6f ? "_eps1e-6" : "_eps1e-5"),
         OpKind::kRmsNorm,
         {TensorDesc::make(DType::kF32, d, n), TensorDesc::make(DType::kF32, d)},
         {Fill::kTinyRows, Fill::kRandom},
         norm,
         0,
         0,
         kElementwise});
  }
}

// ARGMAX as the greedy step uses it: rows of a vocabulary (SmolLM2's 49152), sizes that are no
// multiple of any workgroup or vector width, and rows with repeated maxima, where only the
// first may win (random N(0, 1) rows almost never tie).
void add_argmax(std::vector<OpCase>& out) {
  for (const auto& [d, n] : {std::pair<std::int64_t, std::int64_t>{49152, 3},
                             {49153, 2},
                             {3, 5},
                             {127, 4},
                             {129, 3},
                             {1023, 2},
                             {4097, 6}}) {
    const std::string sh = shape_name({{"d", d}, {"n", n}});
    const auto x = TensorDesc::make(DType::kF32, d, n);
    out.push_back({"ARGMAX/f32/" + sh, OpKind::kArgmax, {x}, {Fill::kRandom}, {}, 0, 0, 0});
    out.push_back({"ARGMAX/f32/ties_" + sh, OpKind::kArgmax, {x}, {Fill::kTies}, {}, 0, 0, 0});
  }
  // Every tie pattern (5 rows) twice at vocabulary size.
  out.push_back({"ARGMAX/f32/ties_d49152_n10",
                 OpKind::kArgmax,
                 {TensorDesc::make(DType::kF32, 49152, 10)},
                 {Fill::kTies},
                 {},
                 0,
                 0,
                 0});
}

void add_weight_ops(std::vector<OpCase>& out) {
  for (DType dt : kWeightDtypes) {
    const std::string dn(dtype_name(dt));
    for (const auto& [k, m, n] :
         {std::tuple<std::int64_t, std::int64_t, std::int64_t>{32, 1, 1}, {96, 33, 1}, {256, 64, 7}, {160, 17, 512}}) {
      out.push_back({"MATMUL/" + dn + "/" + shape_name({{"k", k}, {"m", m}, {"n", n}}),
                     OpKind::kMatmul,
                     {TensorDesc::make(dt, k, m), TensorDesc::make(DType::kF32, k, n)},
                     {Fill::kRandom, Fill::kRandom},
                     {},
                     0,
                     0,
                     kReduction});
    }
    for (const auto& [d, rows, n] : {std::tuple<std::int64_t, std::int64_t, std::int64_t>{32, 5, 1}, {96, 100, 9}}) {
      out.push_back({"EMBED/" + dn + "/" + shape_name({{"d", d}, {"rows", rows}, {"n", n}}),
                     OpKind::kEmbed,
                     {TensorDesc::make(dt, d, rows), TensorDesc::make(DType::kI32, n)},
                     {Fill::kRandom, Fill::kIds},
                     {},
                     rows,
                     0,
                     kElementwise});
    }
    OpParams to;
    to.out_dtype = dt;
    out.push_back({"COPY/f32_to_" + dn + "/d64_n3",
                   OpKind::kCopy,
                   {TensorDesc::make(DType::kF32, 64, 3)},
                   {Fill::kRandom},
                   to,
                   0,
                   0,
                   0});
    if (dt == DType::kF32)
      continue;  // f32 -> f32 is the case above
    OpParams back;
    back.out_dtype = DType::kF32;
    out.push_back({"COPY/" + dn + "_to_f32/d64_n3",
                   OpKind::kCopy,
                   {TensorDesc::make(dt, 64, 3)},
                   {Fill::kRandom},
                   back,
                   0,
                   0,
                   0});
  }
}

// Every op that takes a weight, on each of kBlockDtypes: k = 768 (a multiple of the 256-weight
// super-block but not of 512, so a kernel that walks pairs of super-blocks must handle the
// odd one) and 256 (a single super-block), row counts that are no multiple of any tile, a
// 1-token decode, a small batch and a 40-token prompt (n >= 32 takes the prefill paths).
void add_block_format_ops(std::vector<OpCase>& out) {
  for (DType dt : kBlockDtypes) {
    const std::string dn(dtype_name(dt));
    for (const auto& [k, m, n] : {std::tuple<std::int64_t, std::int64_t, std::int64_t>{768, 33, 1},
                                  {768, 33, 40},
                                  {256, 17, 7},
                                  {768, 301, 1},
                                  {256, 5, 40}}) {
      out.push_back({"MATMUL/" + dn + "/" + shape_name({{"k", k}, {"m", m}, {"n", n}}),
                     OpKind::kMatmul,
                     {TensorDesc::make(dt, k, m), TensorDesc::make(DType::kF32, k, n)},
                     {Fill::kRandom, Fill::kRandom},
                     {},
                     0,
                     0,
                     kReduction});
    }
    for (const auto& [d, rows, n] :
         {std::tuple<std::int64_t, std::int64_t, std::int64_t>{768, 33, 1}, {256, 101, 40}}) {
      out.push_back({"EMBED/" + dn + "/" + shape_name({{"d", d}, {"rows", rows}, {"n", n}}),
                     OpKind::kEmbed,
                     {TensorDesc::make(dt, d, rows), TensorDesc::make(DType::kI32, n)},
                     {Fill::kRandom, Fill::kIds},
                     {},
                     rows,
                     0,
                     kElementwise});
    }
    OpParams to;
    to.out_dtype = dt;
    out.push_back({"COPY/f32_to_" + dn + "/d768_n3",
                   OpKind::kCopy,
                   {TensorDesc::make(DType::kF32, 768, 3)},
                   {Fill::kRandom},
                   to,
                   0,
                   0,
                   0});
    OpParams back;
    back.out_dtype = DType::kF32;
    out.push_back({"COPY/" + dn + "_to_f32/d768_n3",
                   OpKind::kCopy,
                   {TensorDesc::make(dt, 768, 3)},
                   {Fill::kRandom},
                   back,
                   0,
                   0,
                   0});
  }
  // A 512-token prompt on the K-quants a Q4_K_M / Q5_K_M / Q6_K model is made of: many token
  // blocks of every prefill path (the GEMM's 64-token blocks, the tiles' 32-token blocks) and
  // 37 rows, no multiple of any band or tile.
  for (DType dt : {DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    const std::int64_t k = 512, m = 37, n = 512;
    out.push_back({"MATMUL/" + std::string(dtype_name(dt)) + "/" + shape_name({{"k", k}, {"m", m}, {"n", n}}),
                   OpKind::kMatmul,
                   {TensorDesc::make(dt, k, m), TensorDesc::make(DType::kF32, k, n)},
                   {Fill::kRandom, Fill::kRandom},
                   {},
                   0,
                   0,
                   kReduction});
  }
  // A 512-token prompt on IQ4_NL and IQ4_XS with k = 768 (a multiple of 256, not of 512: three
  // IQ4_XS super-blocks, 24 IQ4_NL blocks) and 37 rows, and their decode over the same shape.
  for (DType dt : {DType::kIQ4_NL, DType::kIQ4_XS}) {
    for (std::int64_t n : {1, 512}) {
      const std::int64_t k = 768, m = 37;
      out.push_back({"MATMUL/" + std::string(dtype_name(dt)) + "/" + shape_name({{"k", k}, {"m", m}, {"n", n}}),
                     OpKind::kMatmul,
                     {TensorDesc::make(dt, k, m), TensorDesc::make(DType::kF32, k, n)},
                     {Fill::kRandom, Fill::kRandom},
                     {},
                     0,
                     0,
                     kReduction});
    }
  }
  // A group as a K-quant model has it (Q4_K_M: Q4_K for most products, Q6_K for some, with
  // the same activations), decode and prompt.
  for (std::int64_t n : {1, 40}) {
    const std::int64_t k = 768;
    out.push_back({"MATMUL/group_q4_k+q6_k+q5_0/" + shape_name({{"k", k}, {"m", 64}, {"m", 33}, {"m", 17}, {"n", n}}),
                   OpKind::kMatmul,
                   {TensorDesc::make(DType::kQ4_K, k, 64), TensorDesc::make(DType::kQ6_K, k, 33),
                    TensorDesc::make(DType::kQ5_0, k, 17), TensorDesc::make(DType::kF32, k, n)},
                   {Fill::kRandom, Fill::kRandom, Fill::kRandom, Fill::kRandom},
                   {},
                   0,
                   0,
                   kReduction});
  }
}

// Products large enough to be split into several bands of rows (the cpu backend's bands are at
// least 16 KiB of weights, so most smaller cases are one band): 300 rows of k = 512 are 84 KiB
// (q4_0) to 300 KiB (f16, bf16; f32 at k = 256), with a row count that is no multiple of any tile; decode, a small
// batch and a prompt (n >= 32 takes the prefill paths). Small enough for lavapipe.
void add_banded_matmuls(std::vector<OpCase>& out) {
  for (DType dt : kWeightDtypes) {
    for (std::int64_t n : {1, 5, 40}) {
      // f32 rows of k = 512 (2 KiB) would not fit the 2 KiB weight ranges of the Vulkan chunked
      // variant, which refuses such a graph with a clear error: k = 256 there.
      const std::int64_t k = dt == DType::kF32 ? 256 : 512, m = 300;
      out.push_back({"MATMUL/" + std::string(dtype_name(dt)) + "/banded_" + shape_name({{"k", k}, {"m", m}, {"n", n}}),
                     OpKind::kMatmul,
                     {TensorDesc::make(dt, k, m), TensorDesc::make(DType::kF32, k, n)},
                     {Fill::kRandom, Fill::kRandom},
                     {},
                     0,
                     0,
                     kReduction});
    }
  }
}

// Matrix products that share their activations, as a model's Q, K and V or gate and up: one
// graph of several MATMUL nodes (backends may run them together), mixed weight dtypes and row
// counts that are not multiples of any tile; decode, a small batch, and a prompt.
void add_matmul_groups(std::vector<OpCase>& out) {
  for (std::int64_t n : {1, 7, 64}) {
    const std::int64_t k = 256;
    out.push_back({"MATMUL/group_q8_0+q4_1+f16/" + shape_name({{"k", k}, {"m", 64}, {"m", 33}, {"m", 17}, {"n", n}}),
                   OpKind::kMatmul,
                   {TensorDesc::make(DType::kQ8_0, k, 64), TensorDesc::make(DType::kQ4_1, k, 33),
                    TensorDesc::make(DType::kF16, k, 17), TensorDesc::make(DType::kF32, k, n)},
                   {Fill::kRandom, Fill::kRandom, Fill::kRandom, Fill::kRandom},
                   {},
                   0,
                   0,
                   kReduction});
  }
}

void add_rope(std::vector<OpCase>& out) {
  for (RopeLayout layout : {RopeLayout::kNormal, RopeLayout::kNeox}) {
    for (const auto& [hd, heads, n, dims] :
         {std::tuple<int, int, int, int>{64, 3, 1, 64}, {128, 2, 17, 128}, {64, 4, 5, 32}, {64, 4, 100, 64}}) {
      OpParams p;
      p.head_dim = hd;
      p.rope_dims = dims;
      p.rope_base = 10000.f;
      p.rope_layout = layout;
      out.push_back({std::string("ROPE/") + (layout == RopeLayout::kNormal ? "normal" : "neox") + "/" +
                         shape_name({{"hd", hd}, {"heads", heads}, {"n", n}, {"rot", dims}}),
                     OpKind::kRope,
                     {TensorDesc::make(DType::kF32, std::int64_t{hd} * heads, n), TensorDesc::make(DType::kI32, n)},
                     {Fill::kRandom, Fill::kPositions},
                     p,
                     0,
                     0,
                     kElementwise});
    }
  }
}

struct AttentionShape {
  int hd, heads, kv_heads, n, block_size, max_blocks, slots, start, slot = 0;
  KvTable table = KvTable::kIdentity;
  int spread = 16;         // a decode batch's positions: start + [0, spread)
  int shared = 0;          // kSharedPrefix: blocks every slot shares
  int spare_blocks = 0;    // pool blocks no table names (they must stay untouched)
  DType kv = DType::kF32;  // the caches' dtype (F32 or F16)
  int window = 0;          // the sliding window (0: none); named "window_w<w>_..."
};

OpCase attention_case(const AttentionShape& s) {
  OpParams p;
  p.head_dim = s.hd;
  p.n_heads = s.heads;
  p.n_kv_heads = s.kv_heads;
  p.sliding_window = s.window;
  const std::int64_t qd = std::int64_t{s.hd} * s.heads, kvd = std::int64_t{s.hd} * s.kv_heads;
  const std::int64_t owned = s.max_blocks - s.shared;
  const std::int64_t n_blocks = s.shared + std::int64_t{s.slots} * owned + s.spare_blocks;
  const auto cache = TensorDesc::make(s.kv, kvd, s.block_size, n_blocks);
  const char* table_names[] = {"identity", "permuted", "shared", "out_of_pool"};
  OpCase c{std::string("ATTENTION/") + (s.kv == DType::kF16 ? "f16" : "f32") + "/" +
               (s.window ? "window_w" + std::to_string(s.window) + "_" : "") +
               shape_name({{"hd", s.hd},
                           {"h", s.heads},
                           {"kvh", s.kv_heads},
                           {"n", s.n},
                           {"bs", s.block_size},
                           {"blocks", s.max_blocks},
                           {"slots", s.slots},
                           {"start", s.start}}) +
               (s.slot ? "_slot" + std::to_string(s.slot) : "") + "_" + table_names[static_cast<int>(s.table)] +
               (s.shared ? std::to_string(s.shared) : "") +
               (s.spread != 16 ? "_spread" + std::to_string(s.spread) : ""),
           OpKind::kAttention,
           {TensorDesc::make(DType::kF32, qd, s.n), TensorDesc::make(DType::kF32, kvd, s.n),
            TensorDesc::make(DType::kF32, kvd, s.n), cache, cache, TensorDesc::make(DType::kI32, s.n),
            TensorDesc::make(DType::kI32, s.n), TensorDesc::make(DType::kI32, s.max_blocks, s.slots)},
           {Fill::kRandom, Fill::kRandom, Fill::kRandom, Fill::kCache, Fill::kCache, Fill::kPositions, Fill::kSlots,
            Fill::kBlockTable},
           p,
           0,
           s.start,
           kReduction};
  c.one_slot_per_token = s.slots > 1 && s.slots == s.n;
  c.prefill_slot = s.slot;
  c.position_spread = s.spread;
  c.kv_table = s.table;
  c.shared_blocks = s.shared;
  return c;
}

void add_attention(std::vector<OpCase>& out) {
  using T = KvTable;
  const AttentionShape shapes[] = {
      // Identity tables: the unpaged layouts.
      {64, 8, 8, 1, 16, 4, 1, 10},      // decode, GQA ratio 1
      {64, 9, 3, 1, 16, 4, 1, 40},      // decode, ratio 3 (SmolLM2)
      {128, 8, 2, 1, 16, 69, 1, 1050},  // long KV, ratio 4, head 128
      {64, 16, 2, 3, 16, 2, 3, 0},      // a decode batch of 3 sequences, ratio 8
      {64, 4, 1, 33, 16, 4, 1, 5},      // prefill after history, ratio 4
      {128, 2, 2, 128, 32, 5, 2, 0},    // prefill from scratch
      {64, 4, 2, 40, 16, 6, 3, 20, 2},  // prefill after history into the last of 3 sequence slots
      // Permuted tables over a pool with spare blocks.
      {64, 9, 3, 1, 16, 8, 1, 77, 0, T::kPermuted, 16, 0, 3},     // 1-token decode, ratio 3
      {128, 8, 2, 1, 32, 4, 1, 100, 0, T::kPermuted, 16, 0, 2},   // 1-token decode, head 128, ratio 4
      {64, 8, 2, 4, 16, 8, 4, 0, 0, T::kPermuted, 128, 0, 5},     // ragged decode batch: lengths 1 to 128
      {128, 4, 4, 3, 16, 4, 3, 0, 0, T::kPermuted, 64, 0, 1},     // ragged decode batch, head 128, ratio 1
      {64, 4, 1, 100, 16, 8, 2, 0, 1, T::kPermuted, 16, 0, 4},    // a 100-token prompt over 7 blocks
      {128, 4, 2, 100, 16, 9, 1, 30, 0, T::kPermuted, 16, 0, 2},  // 100 tokens after history, head 128
      // Sequences sharing their first blocks (a common prefix); tokens write past it.
      {64, 9, 3, 3, 16, 6, 3, 32, 0, T::kSharedPrefix, 60, 2, 1},   // decode batch reading a shared prefix
      {128, 8, 2, 2, 32, 3, 2, 64, 0, T::kSharedPrefix, 32, 2, 0},  // the same, head 128, ratio 4
      {64, 4, 2, 40, 16, 6, 2, 48, 1, T::kSharedPrefix, 16, 3, 1},  // a prompt after a shared prefix
  };
  for (const auto& s : shapes)
    out.push_back(attention_case(s));
  // Every shape again with f16 caches (lavapipe runs them all in a few seconds).
  for (AttentionShape s : shapes) {
    s.kv = DType::kF16;
    out.push_back(attention_case(s));
  }
}

// The ops and parameters newer model families need (ops.h), in one place so that a backend that
// implements them can run them by the prefixes: GEGLU is with the elementwise cases;
// RMS_NORM/f32/group_* (per-head Q/K norm, Qwen3 and Gemma 3), ROPE/<layout>/freq_factors_*
// (Llama 3.1's rope_freqs), ATTENTION/<kv>/window_* (Gemma 3's sliding window) and
// EMBED/<dtype>/scale_* (Gemma's scaled embeddings).
void add_model_family_cases(std::vector<OpCase>& out) {
  // Per-head norms: head sizes 64 to 256, 1 to 16 heads, decode, a small batch and a prompt.
  for (int hd : {64, 128, 256}) {
    for (int heads : {1, 3, 16}) {
      for (int n : {1, 7, 512}) {
        OpParams p;
        p.eps = 1e-6f;
        p.norm_group = hd;
        out.push_back({"RMS_NORM/f32/group_" + shape_name({{"hd", hd}, {"heads", heads}, {"n", n}}),
                       OpKind::kRmsNorm,
                       {TensorDesc::make(DType::kF32, std::int64_t{hd} * heads, n), TensorDesc::make(DType::kF32, hd)},
                       {Fill::kRandom, Fill::kRandom},
                       p,
                       0,
                       0,
                       kElementwise});
      }
    }
  }
  // Rows (every group of them) of mean square near or below epsilon, and zero rows.
  for (const auto& [hd, heads, n, eps] :
       {std::tuple<int, int, int, float>{64, 4, 8, 1e-6f}, {128, 2, 12, 1e-5f}, {256, 16, 4, 1e-6f}}) {
    OpParams p;
    p.eps = eps;
    p.norm_group = hd;
    out.push_back({"RMS_NORM/f32/group_tiny_rows_" + shape_name({{"hd", hd}, {"heads", heads}, {"n", n}}) +
                       (eps < 5e-6f ? "_eps1e-6" : "_eps1e-5"),
                   OpKind::kRmsNorm,
                   {TensorDesc::make(DType::kF32, std::int64_t{hd} * heads, n), TensorDesc::make(DType::kF32, hd)},
                   {Fill::kTinyRows, Fill::kRandom},
                   p,
                   0,
                   0,
                   kElementwise});
  }

  // RoPE with Llama 3.1's frequency factors, whole heads and partial rotation (rope_dims <
  // head_dim), Llama 3's base and the classic one; positions up to 4096.
  for (RopeLayout layout : {RopeLayout::kNormal, RopeLayout::kNeox}) {
    for (const auto& [hd, heads, n, dims, base] : {std::tuple<int, int, int, int, float>{128, 4, 7, 128, 500000.f},
                                                   {64, 3, 1, 64, 10000.f},
                                                   {128, 2, 17, 64, 500000.f},
                                                   {64, 4, 100, 32, 10000.f}}) {
      OpParams p;
      p.head_dim = hd;
      p.rope_dims = dims;
      p.rope_base = base;
      p.rope_layout = layout;
      out.push_back({std::string("ROPE/") + (layout == RopeLayout::kNormal ? "normal" : "neox") + "/freq_factors_" +
                         shape_name({{"hd", hd}, {"heads", heads}, {"n", n}, {"rot", dims}}) + "_base" +
                         std::to_string(static_cast<int>(base)),
                     OpKind::kRope,
                     {TensorDesc::make(DType::kF32, std::int64_t{hd} * heads, n), TensorDesc::make(DType::kI32, n),
                      TensorDesc::make(DType::kF32, dims / 2)},
                     {Fill::kRandom, Fill::kPositions, Fill::kFreqFactors},
                     p,
                     0,
                     0,
                     kElementwise});
    }
  }

  // Sliding windows smaller than, equal to and larger than the sequence (a sequence has start + n
  // positions for a prompt, up to start + spread for a decode batch), down to a window of 1.
  using T = KvTable;
  struct Windowed {
    AttentionShape s;
    int window;
  };
  const Windowed windowed[] = {
      {{64, 8, 8, 1, 16, 4, 1, 40}, 16},                              // decode
      {{64, 8, 8, 1, 16, 4, 1, 40}, 41},                              // decode, window = the sequence
      {{64, 8, 8, 1, 16, 4, 1, 40}, 100},                             // decode, window past the sequence
      {{128, 8, 2, 1, 16, 69, 1, 1050}, 1024},                        // long KV, Gemma 3's window
      {{128, 2, 2, 128, 32, 5, 2, 0}, 32},                            // prefill from scratch
      {{128, 2, 2, 128, 32, 5, 2, 0}, 128},                           // prefill, window = the prompt
      {{128, 2, 2, 128, 32, 5, 2, 0}, 1000},                          // prefill, window past the prompt
      {{64, 4, 1, 33, 16, 4, 1, 5}, 8},                               // prefill after history
      {{64, 4, 1, 33, 16, 4, 1, 5}, 1},                               // every token sees only itself
      {{64, 4, 2, 40, 16, 6, 3, 20, 2}, 24},                          // prefill after history into the last of 3 slots
      {{64, 4, 2, 256, 32, 10, 1, 64}, 96},                           // a long prompt after history: many row blocks
      {{64, 16, 2, 3, 16, 2, 3, 0}, 4},                               // decode batch, one slot per token
      {{64, 8, 2, 4, 16, 8, 4, 0, 0, T::kPermuted, 128, 0, 5}, 20},   // ragged decode batch, paged
      {{128, 4, 4, 3, 16, 4, 3, 0, 0, T::kPermuted, 64, 0, 1}, 33},   // ragged decode batch, head 128
      {{64, 4, 1, 100, 16, 8, 2, 0, 1, T::kPermuted, 16, 0, 4}, 40},  // a paged prompt over 7 blocks
      {{128, 4, 2, 100, 16, 9, 1, 30, 0, T::kPermuted, 16, 0, 2}, 64},    // paged prompt after history
      {{64, 9, 3, 3, 16, 6, 3, 32, 0, T::kSharedPrefix, 60, 2, 1}, 50},   // decode batch past a shared prefix
      {{64, 4, 2, 40, 16, 6, 2, 48, 1, T::kSharedPrefix, 16, 3, 1}, 17},  // a prompt after a shared prefix
      // Histories longer than the window: keys before every token's window are never needed.
      {{64, 4, 2, 40, 16, 12, 1, 120}, 32},                              // a prompt (the blocked path)
      {{128, 4, 2, 48, 16, 12, 1, 100, 0, T::kPermuted, 16, 0, 2}, 40},  // a paged prompt, head 128
      {{64, 4, 1, 8, 16, 8, 1, 60}, 10},                                 // a short prompt (per-token path)
  };
  for (DType kv : {DType::kF32, DType::kF16}) {
    for (Windowed w : windowed) {
      w.s.kv = kv;
      w.s.window = w.window;
      out.push_back(attention_case(w.s));
    }
  }
  // Positions outside every window hold NaN: decodes, decode batches (one paged, one past a shared
  // prefix) and prompts whose history is longer than the window.
  for (DType kv : {DType::kF32, DType::kF16}) {
    for (int i : {0, 3, 11, 12, 16, 17, 18, 19, 20}) {
      Windowed w = windowed[i];
      w.s.kv = kv;
      w.s.window = w.window;
      OpCase c = attention_case(w.s);
      c.name.replace(c.name.find("/window_") + 1, 7, "window_nan_outside_");
      c.nan_outside_window = true;
      out.push_back(std::move(c));
    }
  }

  // Scaled embeddings (Gemma: sqrt(d)) on float and quantized tables. A float table's rows stay
  // under 2 KiB: the vulkan_chunked variant binds weights in ranges of 2 KiB, and a row must fit.
  for (DType dt : {DType::kF32, DType::kF16, DType::kQ8_0, DType::kQ4_1, DType::kQ4_K}) {
    const std::int64_t wide = dt == DType::kF32 || dt == DType::kF16 ? 256 : 768;
    for (const auto& [d, rows, n] : {std::tuple<std::int64_t, std::int64_t, std::int64_t>{256, 5, 1}, {wide, 100, 9}}) {
      OpParams p;
      p.scale = std::sqrt(static_cast<float>(d));
      out.push_back(
          {"EMBED/" + std::string(dtype_name(dt)) + "/scale_" + shape_name({{"d", d}, {"rows", rows}, {"n", n}}),
           OpKind::kEmbed,
           {TensorDesc::make(dt, d, rows), TensorDesc::make(DType::kI32, n)},
           {Fill::kRandom, Fill::kIds},
           p,
           rows,
           0,
           kElementwise});
    }
  }
}

// OpCase::nan_outside_window: sets the K and V cache rows (inputs 3 and 4) of the case's
// sequences that no token's window covers to NaN. Rows a token reads through one slot but that
// another slot's window covers (a shared prefix) stay as they are.
void poison_outside_window(const OpCase& c, std::vector<std::vector<std::uint8_t>>& data) {
  const auto* pos = reinterpret_cast<const std::int32_t*>(data[5].data());
  const auto* slot = reinterpret_cast<const std::int32_t*>(data[6].data());
  const auto* table = reinterpret_cast<const std::int32_t*>(data[7].data());
  const std::int64_t n = c.inputs[5].ne[0], max_blocks = c.inputs[7].ne[0], block_size = c.inputs[3].ne[1];
  const int w = c.params.sliding_window;
  auto row = [&](std::int64_t s, std::int64_t j) {
    return std::int64_t{table[s * max_blocks + j / block_size]} * block_size + j % block_size;
  };
  std::vector<bool> seen(static_cast<std::size_t>(c.inputs[3].rows()), false);
  std::vector<std::int64_t> len(static_cast<std::size_t>(c.inputs[7].ne[1]), 0);
  for (std::int64_t t = 0; t < n; ++t) {
    for (std::int64_t j = std::max<std::int64_t>(0, pos[t] + 1 - w); j <= pos[t]; ++j)
      seen[static_cast<std::size_t>(row(slot[t], j))] = true;
    len[static_cast<std::size_t>(slot[t])] = std::max<std::int64_t>(len[static_cast<std::size_t>(slot[t])], pos[t] + 1);
  }
  for (std::size_t i : {std::size_t{3}, std::size_t{4}}) {
    const TensorDesc& d = c.inputs[i];
    const std::size_t row_bytes = d.row_size();
    std::vector<std::uint8_t> nan_row(row_bytes);
    for (std::size_t b = 0; b < row_bytes; b += d.dtype == DType::kF16 ? 2 : 4) {
      if (d.dtype == DType::kF16) {
        const std::uint16_t h = 0x7e00;
        std::memcpy(nan_row.data() + b, &h, 2);
      } else {
        const float f = std::numeric_limits<float>::quiet_NaN();
        std::memcpy(nan_row.data() + b, &f, 4);
      }
    }
    for (std::size_t s = 0; s < len.size(); ++s) {
      for (std::int64_t j = 0; j < len[s]; ++j) {
        const std::int64_t r = row(static_cast<std::int64_t>(s), j);
        if (!seen[static_cast<std::size_t>(r)])
          std::memcpy(data[i].data() + static_cast<std::size_t>(r) * row_bytes, nan_row.data(), row_bytes);
      }
    }
  }
}

// Fill::kFreqFactors (op_cases.h): Llama 3.1's rope_freqs for the case's base and rope_dims.
void fill_freq_factors(const OpParams& p, std::int64_t count, float* f) {
  constexpr double kFactor = 8, kLowFreqFactor = 1, kHighFreqFactor = 4, kOriginalContext = 8192;
  const double pi = std::acos(-1.0);
  const int dims = p.rope_dims ? p.rope_dims : p.head_dim;
  for (std::int64_t i = 0; i < count; ++i) {
    const double wavelen = 2 * pi / std::pow(static_cast<double>(p.rope_base), -2.0 * static_cast<double>(i) / dims);
    double factor;
    if (wavelen < kOriginalContext / kHighFreqFactor) {
      factor = 1;
    } else if (wavelen > kOriginalContext / kLowFreqFactor) {
      factor = kFactor;
    } else {
      const double smooth = (kOriginalContext / wavelen - kLowFreqFactor) / (kHighFreqFactor - kLowFreqFactor);
      factor = 1 / ((1 - smooth) / kFactor + smooth);
    }
    f[i] = static_cast<float>(factor);
  }
}

// The pool's size: an ATTENTION case's K cache (input 3), [row, block_size, n_blocks].
std::int64_t pool_blocks(const OpCase& c) {
  return c.inputs[3].ne[2];
}

// ATTENTION's block table [max_blocks, slots] as c.kv_table says; `so_far` holds the inputs made
// before it (positions and slots, which kOutOfPool needs).
void fill_block_table(const OpCase& c, const TensorDesc& d, const std::vector<std::vector<std::uint8_t>>& so_far,
                      std::mt19937_64& rng, std::int32_t* table) {
  const std::int64_t max_blocks = d.ne[0], slots = d.ne[1], n_blocks = pool_blocks(c);
  std::vector<std::int32_t> perm(static_cast<std::size_t>(n_blocks));
  for (std::size_t i = 0; i < perm.size(); ++i)
    perm[i] = static_cast<std::int32_t>(i);
  if (c.kv_table == KvTable::kPermuted || c.kv_table == KvTable::kSharedPrefix)
    std::shuffle(perm.begin(), perm.end(), rng);
  const std::int64_t shared = c.kv_table == KvTable::kSharedPrefix ? c.shared_blocks : 0;
  for (std::int64_t s = 0; s < slots; ++s) {
    for (std::int64_t b = 0; b < max_blocks; ++b) {
      const std::int64_t i = b < shared ? b : shared + s * (max_blocks - shared) + (b - shared);
      table[s * max_blocks + b] = perm[static_cast<std::size_t>(i)];
    }
  }
  if (c.kv_table == KvTable::kOutOfPool) {
    const auto* pos = reinterpret_cast<const std::int32_t*>(so_far[5].data());
    const auto* slot = reinterpret_cast<const std::int32_t*>(so_far[6].data());
    table[std::int64_t{slot[0]} * max_blocks + pos[0] / c.inputs[3].ne[1]] = static_cast<std::int32_t>(n_blocks);
  }
}

// Fill::kTies (op_cases.h): row r takes pattern r % 5.
void fill_ties(const TensorDesc& d, std::mt19937_64& rng, float* f) {
  std::normal_distribution<float> normal(0.f, 1.f);
  const std::int64_t len = d.ne[0];
  for (std::int64_t r = 0; r < d.rows(); ++r) {
    float* row = f + r * len;
    switch (r % 5) {
      case 0:  // few levels: the maximum repeats all over the row
        for (std::int64_t i = 0; i < len; ++i)
          row[i] = static_cast<float>(static_cast<int>(rng() % 7) - 3);
        break;
      case 1:  // constant: index 0 wins
        std::fill(row, row + len, 0.5f);
        break;
      case 2: {  // one maximum, copied to a later index (often another thread's share) and the last
        for (std::int64_t i = 0; i < len; ++i)
          row[i] = normal(rng);
        const auto best = std::max_element(row, row + len) - row;
        if (best + 1 < len)
          row[best + 1 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(len - best - 1))] = row[best];
        row[len - 1] = row[best];
        break;
      }
      case 3: {  // signed zeros: -0 and +0 tie; the first zero wins
        const float levels[] = {-1.f, -0.f, 0.f};
        for (std::int64_t i = 0; i < len; ++i)
          row[i] = levels[rng() % 3];
        break;
      }
      default: {  // the single maximum is the last element
        for (std::int64_t i = 0; i < len; ++i)
          row[i] = normal(rng);
        row[len - 1] = *std::max_element(row, row + len) + 1.f;
        break;
      }
    }
  }
}

// Random inputs for a case, as raw bytes per input.
std::vector<std::vector<std::uint8_t>> make_inputs(const OpCase& c, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<std::vector<std::uint8_t>> data;
  const bool decode_batch = c.one_slot_per_token;
  for (std::size_t i = 0; i < c.inputs.size(); ++i) {
    const TensorDesc& d = c.inputs[i];
    std::vector<std::uint8_t> bytes(d.bytes());
    const std::int64_t n = d.elements();
    auto* ints = reinterpret_cast<std::int32_t*>(bytes.data());
    switch (c.fills[i]) {
      case Fill::kRandom:
      case Fill::kCache: {
        std::vector<float> f(static_cast<std::size_t>(n));
        for (auto& v : f)
          v = normal(rng);
        for (std::int64_t r = 0; r < d.rows(); ++r) {
          quantize_row(d.dtype, f.data() + r * d.ne[0], bytes.data() + static_cast<std::size_t>(r) * d.row_size(),
                       d.ne[0]);
        }
        break;
      }
      case Fill::kTinyRows: {
        const float scales[] = {0.f, 1e-4f, 1e-3f, 1e-2f};
        auto* f = reinterpret_cast<float*>(bytes.data());
        for (std::int64_t r = 0; r < d.rows(); ++r) {
          for (std::int64_t j = 0; j < d.ne[0]; ++j)
            f[r * d.ne[0] + j] = normal(rng) * scales[r % 4];
        }
        break;
      }
      case Fill::kTies:
        fill_ties(d, rng, reinterpret_cast<float*>(bytes.data()));
        break;
      case Fill::kIds:
        for (std::int64_t k = 0; k < n; ++k)
          ints[k] = static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(c.id_limit));
        break;
      case Fill::kPositions:
        for (std::int64_t k = 0; k < n; ++k) {
          if (c.op == OpKind::kRope) {
            ints[k] = static_cast<std::int32_t>(rng() % 4096);
          } else if (decode_batch) {  // each sequence at its own position
            ints[k] =
                static_cast<std::int32_t>(c.prefill_start + (rng() % static_cast<std::uint64_t>(c.position_spread)));
          } else {
            ints[k] = static_cast<std::int32_t>(c.prefill_start + k);
          }
        }
        break;
      case Fill::kSlots:
        for (std::int64_t k = 0; k < n; ++k)
          ints[k] = decode_batch ? static_cast<std::int32_t>(k) : c.prefill_slot;
        break;
      case Fill::kBlockTable:
        fill_block_table(c, d, data, rng, ints);
        break;
      case Fill::kFreqFactors:
        fill_freq_factors(c.params, n, reinterpret_cast<float*>(bytes.data()));
        break;
    }
    data.push_back(std::move(bytes));
  }
  if (c.nan_outside_window)
    poison_outside_window(c, data);
  return data;
}

double nmse(const std::vector<float>& out, const std::vector<float>& ref, bool* has_nan) {
  double err = 0, norm = 0;
  *has_nan = false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (std::isnan(out[i]))
      *has_nan = true;
    err += (static_cast<double>(out[i]) - ref[i]) * (static_cast<double>(out[i]) - ref[i]);
    norm += static_cast<double>(ref[i]) * ref[i];
  }
  return norm > 0 ? err / norm : err;
}

// Compares state input `i` (a K/V cache, a pool [row, block_size, n_blocks]) as the device left
// it with the reference's: the rows the case's tokens write (each token's physical row through
// the block table) within the elementwise tolerance for F32 (a cache stores what it is given) and
// bit for bit for F16 (every backend rounds to nearest even, as hal's f32_to_f16), every other row
// byte for byte as it was before the run. Returns why they differ, or "" when they agree.
std::string compare_state(const OpCase& c, std::size_t i, const std::vector<std::vector<std::uint8_t>>& before,
                          const std::vector<std::uint8_t>& ref, const std::vector<std::uint8_t>& got) {
  const TensorDesc& d = c.inputs[i];
  const std::string what = "state input " + std::to_string(i) + (i == 3 ? " (K cache)" : i == 4 ? " (V cache)" : "");
  const std::int32_t* pos = nullptr;
  const std::int32_t* slot = nullptr;
  const std::int32_t* table = nullptr;
  std::int64_t n_tokens = 0, max_blocks = 0;
  for (std::size_t j = 0; j < c.inputs.size(); ++j) {
    if (c.fills[j] == Fill::kPositions) {
      pos = reinterpret_cast<const std::int32_t*>(before[j].data());
      n_tokens = c.inputs[j].elements();
    }
    if (c.fills[j] == Fill::kSlots)
      slot = reinterpret_cast<const std::int32_t*>(before[j].data());
    if (c.fills[j] == Fill::kBlockTable) {
      table = reinterpret_cast<const std::int32_t*>(before[j].data());
      max_blocks = c.inputs[j].ne[0];
    }
  }
  if (!pos || !slot || !table || (d.dtype != DType::kF32 && d.dtype != DType::kF16))
    return "bad case: " + what + " needs positions, slots, a block table and an f32 or f16 cache";
  const std::int64_t block_size = d.ne[1];
  const std::size_t row_bytes = d.row_size();
  std::vector<bool> written(static_cast<std::size_t>(d.rows()), false);
  for (std::int64_t t = 0; t < n_tokens; ++t) {
    const std::int64_t block = table[std::int64_t{slot[t]} * max_blocks + pos[t] / block_size];
    written[static_cast<std::size_t>(block * block_size + pos[t] % block_size)] = true;
  }
  std::vector<float> got_rows, want_rows;
  for (std::int64_t r = 0; r < d.rows(); ++r) {
    const std::size_t at = static_cast<std::size_t>(r) * row_bytes;
    if (!written[static_cast<std::size_t>(r)]) {
      if (std::memcmp(got.data() + at, before[i].data() + at, row_bytes) != 0)
        return what + ": row " + std::to_string(r % block_size) + " of block " + std::to_string(r / block_size) +
               " was not written by any token but changed";
      continue;
    }
    if (d.dtype == DType::kF16) {
      if (std::memcmp(got.data() + at, ref.data() + at, row_bytes) != 0)
        return what + ": row " + std::to_string(r % block_size) + " of block " + std::to_string(r / block_size) +
               " (f16) differs bit-wise from the reference's";
      continue;
    }
    const std::size_t floats = row_bytes / 4, base = got_rows.size();
    got_rows.resize(base + floats);
    want_rows.resize(base + floats);
    std::memcpy(got_rows.data() + base, got.data() + at, row_bytes);
    std::memcpy(want_rows.data() + base, ref.data() + at, row_bytes);
  }
  bool has_nan = false;
  const double e = nmse(got_rows, want_rows, &has_nan);
  if (has_nan || e > kElementwise)
    return what + ": the rows written differ from the reference's (NMSE " + std::to_string(e) +
           (has_nan ? ", NaN" : "") + ")";
  return "";
}

}  // namespace

std::vector<OpCase> all_op_cases() {
  std::vector<OpCase> cases;
  add_elementwise(cases);
  add_argmax(cases);
  add_weight_ops(cases);
  add_block_format_ops(cases);
  add_matmul_groups(cases);
  add_banded_matmuls(cases);
  add_rope(cases);
  add_attention(cases);
  add_model_family_cases(cases);
  return cases;
}

std::vector<OpCase> out_of_range_op_cases() {
  std::vector<OpCase> cases;
  // A decode batch and a prompt (the cpu backend's blocked path), each with one table entry a
  // token reads set past the pool.
  for (AttentionShape s : {AttentionShape{64, 8, 2, 3, 16, 4, 3, 10}, AttentionShape{64, 4, 1, 40, 16, 4, 1, 5}}) {
    s.table = KvTable::kOutOfPool;
    OpCase c = attention_case(s);
    c.expect_out_of_range = true;
    cases.push_back(std::move(c));
  }
  return cases;
}

CaseResult run_op_case(Device& device, const OpCase& c, std::uint64_t seed) {
  CaseResult result;
  // The case's nodes, as the inputs each reads: one node reading every input, or for a MATMUL
  // group one product per weight, each reading the shared activations (the last input).
  std::vector<std::vector<std::size_t>> nodes;
  if (c.op == OpKind::kMatmul && c.inputs.size() > 2) {
    for (std::size_t w = 0; w + 1 < c.inputs.size(); ++w)
      nodes.push_back({w, c.inputs.size() - 1});
  } else {
    nodes.emplace_back();
    for (std::size_t i = 0; i < c.inputs.size(); ++i)
      nodes.back().push_back(i);
  }
  std::vector<TensorDesc> out_descs;
  for (const auto& node : nodes) {
    std::vector<DType> dtypes;
    std::vector<TensorDesc> descs;
    for (std::size_t i : node) {
      dtypes.push_back(c.inputs[i].dtype);
      descs.push_back(c.inputs[i]);
    }
    if (c.op == OpKind::kCopy)
      dtypes.push_back(c.params.out_dtype);  // COPY's output dtype (Device::supports)
    if (!device.supports(c.op, dtypes)) {
      result.unsupported = true;
      std::string list;
      for (DType dt : dtypes)
        list += (list.empty() ? "" : ", ") + std::string(dtype_name(dt));
      result.message = device.info().uri + " does not support " + std::string(op_name(c.op)) + " on (" + list + ")";
      return result;
    }
    auto out_desc = infer_output(c.op, descs, c.params);
    if (!out_desc.is_ok()) {
      result.message = "bad case: " + out_desc.status().to_string();
      return result;
    }
    out_descs.push_back(out_desc.value());
  }
  auto inputs = make_inputs(c, seed);

  // The reference, on its own copies (ATTENTION writes the caches); outputs end to end.
  auto ref_inputs = inputs;
  std::vector<std::uint8_t> ref_out;
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    std::vector<reference::HostTensor> host;
    for (std::size_t i : nodes[n])
      host.push_back({c.inputs[i], ref_inputs[i].data()});
    std::vector<std::uint8_t> o(out_descs[n].bytes());
    const Status s = reference::run_op(c.op, host, {out_descs[n], o.data()}, c.params);
    if (c.expect_out_of_range) {
      if (s.code() != StatusCode::kOutOfRange) {
        result.message = "the reference did not reject the case as out_of_range: " + s.to_string();
        return result;
      }
      continue;
    }
    if (!s.is_ok()) {
      result.message = "reference failed: " + s.to_string();
      return result;
    }
    ref_out.insert(ref_out.end(), o.begin(), o.end());
  }

  // The device, through the HAL: the nodes in one graph, compiled, bound and run.
  Graph g;
  std::vector<TensorId> ids;
  for (std::size_t i = 0; i < c.inputs.size(); ++i) {
    const TensorRole role = c.fills[i] == Fill::kCache ? TensorRole::kState : TensorRole::kInput;
    ids.push_back(g.add_tensor("in" + std::to_string(i), c.inputs[i], role));
  }
  std::vector<TensorId> out_ids;
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    std::vector<TensorId> node_inputs;
    for (std::size_t i : nodes[n])
      node_inputs.push_back(ids[i]);
    auto out_id = g.add_op(c.op, node_inputs, c.params, "out" + std::to_string(n));
    if (!out_id.is_ok()) {
      result.message = out_id.status().to_string();
      return result;
    }
    g.mark_output(out_id.value());
    out_ids.push_back(out_id.value());
  }
  std::vector<std::unique_ptr<Buffer>> buffers;
  // A case that must be rejected passes on an out_of_range error that left every state input
  // (the caches) as it was.
  auto fail = [&](const Status& s) {
    result.message = s.to_string();
    if (!c.expect_out_of_range || s.code() != StatusCode::kOutOfRange)
      return result;
    for (std::size_t i = 0; i < c.inputs.size() && i < buffers.size(); ++i) {
      if (c.fills[i] != Fill::kCache)
        continue;
      std::vector<std::uint8_t> state(inputs[i].size());
      if (Status d = buffers[i]->download(0, state.data(), state.size()); !d.is_ok() || state != inputs[i]) {
        result.message = "rejected (" + s.to_string() + ") but state input " + std::to_string(i) + " changed";
        return result;
      }
    }
    result.passed = true;
    return result;
  };
  auto exe = device.compile(g);
  // A backend that refuses the graph as unimplemented (an op form it lacks, such as a sliding
  // window, which Device::supports cannot see because it is a parameter) reports the case as
  // unsupported with its reason, as supports() would have.
  if (!exe.is_ok() && exe.status().code() == StatusCode::kUnimplemented && !c.expect_out_of_range) {
    result.unsupported = true;
    result.message = device.info().uri + ": " + exe.status().message();
    return result;
  }
  if (!exe.is_ok())
    return fail(exe.status());
  auto queue = device.create_queue();
  if (!queue.is_ok())
    return fail(queue.status());
  std::vector<Binding> bindings;
  auto bind = [&](TensorId id, const std::vector<std::uint8_t>& bytes) -> Status {
    HALYARD_ASSIGN_OR_RETURN(auto b, device.allocate(bytes.size()));
    HALYARD_RETURN_IF_ERROR(b->upload(0, bytes.data(), bytes.size()));
    bindings.push_back({id, b.get(), 0});
    buffers.push_back(std::move(b));
    return Status::ok();
  };
  for (std::size_t i = 0; i < c.inputs.size(); ++i) {
    if (Status s = bind(ids[i], inputs[i]); !s.is_ok())
      return fail(s);
  }
  const std::size_t first_output = buffers.size();
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    // NaN in f32, -1 in i32: an output left unwritten cannot pass.
    if (Status s = bind(out_ids[n], std::vector<std::uint8_t>(out_descs[n].bytes(), 0xff)); !s.is_ok())
      return fail(s);
  }
  auto event = exe.value()->run(*queue.value(), bindings);
  if (!event.is_ok())
    return fail(event.status());
  if (Status s = event.value()->wait(); !s.is_ok())
    return fail(s);
  if (c.expect_out_of_range) {
    result.message = device.info().uri + " accepted a case it must reject as out_of_range";
    return result;
  }
  std::vector<std::uint8_t> out;
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    std::vector<std::uint8_t> o(out_descs[n].bytes());
    if (Status s = buffers[first_output + n]->download(0, o.data(), o.size()); !s.is_ok())
      return fail(s);
    out.insert(out.end(), o.begin(), o.end());
  }

  // The state the op writes (ATTENTION's K/V caches): downloaded and compared like an output.
  for (std::size_t i = 0; i < c.inputs.size(); ++i) {
    if (c.fills[i] != Fill::kCache)
      continue;
    std::vector<std::uint8_t> state(inputs[i].size());
    if (Status s = buffers[i]->download(0, state.data(), state.size()); !s.is_ok())
      return fail(s);
    if (std::string why = compare_state(c, i, inputs, ref_inputs[i], state); !why.empty()) {
      result.message = why;
      return result;
    }
  }

  if (c.tolerance == 0) {  // exact ops compare bytes (ARGMAX ids, COPY encodings)
    result.passed = out == ref_out;
    if (!result.passed)
      result.message = "output differs from the reference (exact comparison)";
    return result;
  }
  std::vector<float> got(out.size() / 4), want(got.size());
  std::memcpy(got.data(), out.data(), got.size() * 4);
  std::memcpy(want.data(), ref_out.data(), want.size() * 4);
  bool has_nan = false;
  result.nmse = nmse(got, want, &has_nan);
  result.passed = !has_nan && result.nmse <= c.tolerance;
  if (has_nan) {
    result.message = "output has NaN";
  } else if (!result.passed) {
    // Scientific notation: with tolerances such as 1e-7, fixed notation printed 0.000000 > 0.000000.
    char text[96];
    std::snprintf(text, sizeof text, "NMSE %.3e > %.1e", result.nmse, c.tolerance);
    result.message = text;
  }
  return result;
}

}  // namespace halyard::conformance
