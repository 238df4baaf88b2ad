// Each reference op against small cases computed by hand.
#include "halyard/reference/ops.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "halyard/hal/blocks.h"

namespace halyard::reference {
namespace {

HostTensor f32(std::vector<float>& v, std::int64_t ne0, std::int64_t ne1 = 1, std::int64_t ne2 = 1) {
  return {TensorDesc::make(DType::kF32, ne0, ne1, ne2), v.data()};
}
HostTensor i32(std::vector<std::int32_t>& v) {
  return {TensorDesc::make(DType::kI32, static_cast<std::int64_t>(v.size())), v.data()};
}
// A block table of `slots` rows of `max_blocks` block ids.
HostTensor table(std::vector<std::int32_t>& v, std::int64_t max_blocks, std::int64_t slots) {
  return {TensorDesc::make(DType::kI32, max_blocks, slots), v.data()};
}

TEST(ReferenceOps, EmbedGathersRows) {
  std::vector<float> table{1, 2, 3, 4, 5, 6};  // 3 rows of 2
  std::vector<std::int32_t> ids{2, 0};
  std::vector<float> out(4, NAN);
  ASSERT_TRUE(run_op(OpKind::kEmbed, {{f32(table, 2, 3), i32(ids)}}, f32(out, 2, 2), {}).is_ok());
  EXPECT_EQ(out, (std::vector<float>{5, 6, 1, 2}));
}

TEST(ReferenceOps, EmbedDequantizesQ8_0Rows) {
  BlockQ8_0 rows[2]{};
  rows[0].d = f32_to_f16(1.f);
  rows[1].d = f32_to_f16(0.5f);
  for (int j = 0; j < 32; ++j)
    rows[1].qs[j] = static_cast<std::int8_t>(j);
  std::vector<std::int32_t> ids{1};
  std::vector<float> out(32, NAN);
  const HostTensor table{TensorDesc::make(DType::kQ8_0, 32, 2), rows};
  ASSERT_TRUE(run_op(OpKind::kEmbed, {{table, i32(ids)}}, f32(out, 32, 1), {}).is_ok());
  for (int j = 0; j < 32; ++j)
    EXPECT_EQ(out[j], j * 0.5f);
}

TEST(ReferenceOps, EmbedRejectsIdOutOfRange) {
  std::vector<float> table{1, 2, 3, 4};
  std::vector<std::int32_t> ids{2};
  std::vector<float> out(2);
  const Status s = run_op(OpKind::kEmbed, {{f32(table, 2, 2), i32(ids)}}, f32(out, 2, 1), {});
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
}

TEST(ReferenceOps, RmsNorm) {
  std::vector<float> x{3, 4}, w{1, 2}, out(2, NAN);
  OpParams p;
  p.eps = 1e-6f;
  ASSERT_TRUE(run_op(OpKind::kRmsNorm, {{f32(x, 2), f32(w, 2)}}, f32(out, 2), p).is_ok());
  const double rms = std::sqrt(12.5 + 1e-6);
  EXPECT_FLOAT_EQ(out[0], static_cast<float>(3 / rms));
  EXPECT_FLOAT_EQ(out[1], static_cast<float>(8 / rms));
}

TEST(ReferenceOps, MatmulF32) {
  std::vector<float> w{1, 2, 3, 4, 5, 6};  // rows (1,2) (3,4) (5,6): [k=2, m=3]
  std::vector<float> x{1, 1, 0, 1};        // tokens (1,1) (0,1)
  std::vector<float> out(6, NAN);
  ASSERT_TRUE(run_op(OpKind::kMatmul, {{f32(w, 2, 3), f32(x, 2, 2)}}, f32(out, 3, 2), {}).is_ok());
  EXPECT_EQ(out, (std::vector<float>{3, 7, 11, 2, 4, 6}));
}

TEST(ReferenceOps, MatmulQ4_1) {
  BlockQ4_1 row{};
  row.d = f32_to_f16(1.f);
  row.m = f32_to_f16(-8.f);
  for (int j = 0; j < 16; ++j)
    row.qs[j] = static_cast<std::uint8_t>(j | (j << 4));  // w[j] = w[16+j] = j - 8
  std::vector<float> x(32, 1.f);
  std::vector<float> out(1, NAN);
  const HostTensor w{TensorDesc::make(DType::kQ4_1, 32, 1), &row};
  ASSERT_TRUE(run_op(OpKind::kMatmul, {{w, f32(x, 32, 1)}}, f32(out, 1, 1), {}).is_ok());
  EXPECT_EQ(out[0], 2 * (0 + 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 + 11 + 12 + 13 + 14 + 15 - 16 * 8));
}

// A K-quant weight walks rows of two 256-weight super-blocks. Every sub-block has scale 1 and
// minimum 0 and every byte of qs is 0x21, so a super-block's weights are 1 (low nibbles,
// sub-blocks 0, 2, 4, 6) and 2 (high nibbles) times its d: 128 + 256 = 384 d in all.
TEST(ReferenceOps, MatmulQ4_KRowsOfTwoSuperBlocks) {
  BlockQ4_K blocks[4]{};
  const float d[4] = {1.f, 0.5f, 2.f, 2.f};  // row 0: d 1, then 0.5; row 1: d 2 twice
  for (int b = 0; b < 4; ++b) {
    blocks[b].d = f32_to_f16(d[b]);
    blocks[b].dmin = f32_to_f16(1.f);
    for (int j = 0; j < 4; ++j)
      blocks[b].scales[j] = 1;  // scales 0..3 = 1; bytes 4..7 (minimums 0..3) stay 0
    for (int j = 8; j < 12; ++j)
      blocks[b].scales[j] = 1;  // scales 4..7 = 1 in the low nibbles, minimums 4..7 = 0
    for (auto& q : blocks[b].qs)
      q = 0x21;
  }
  std::vector<float> x(1024, 1.f);  // token 0: all ones; token 1: ones in the first super-block
  std::fill(x.begin() + 512 + 256, x.end(), 0.f);
  std::vector<float> out(4, NAN);
  const HostTensor w{TensorDesc::make(DType::kQ4_K, 512, 2), blocks};
  ASSERT_TRUE(run_op(OpKind::kMatmul, {{w, f32(x, 512, 2)}}, f32(out, 2, 2), {}).is_ok());
  EXPECT_EQ(out, (std::vector<float>{384 * 1.5f, 384 * 4.f, 384.f, 384 * 2.f}));
}

// Row 1 of a Q6_K table: ql 0x11 and qh 0x55 give every weight q = 1 | 1 << 4 = 17, so
// 0.5 * 1 * (17 - 32) = -7.5.
TEST(ReferenceOps, EmbedDequantizesQ6_KRows) {
  BlockQ6_K rows[2]{};
  for (auto& r : rows) {
    r.d = f32_to_f16(0.5f);
    for (auto& s : r.scales)
      s = 1;
  }
  for (auto& q : rows[1].ql)
    q = 0x11;
  for (auto& q : rows[1].qh)
    q = 0x55;
  std::vector<std::int32_t> ids{1, 0};
  std::vector<float> out(512, NAN);
  const HostTensor table{TensorDesc::make(DType::kQ6_K, 256, 2), rows};
  ASSERT_TRUE(run_op(OpKind::kEmbed, {{table, i32(ids)}}, f32(out, 256, 2), {}).is_ok());
  for (int j = 0; j < 256; ++j) {
    EXPECT_EQ(out[j], -7.5f) << j;
    EXPECT_EQ(out[256 + j], -16.f) << j;  // row 0: all zero bytes, q = -32
  }
}

TEST(ReferenceOps, RopeNormalRotatesAdjacentPairs) {
  std::vector<float> x{1, 0, 1, 0}, out(4, NAN);
  std::vector<std::int32_t> pos{1};
  OpParams p;
  p.head_dim = 4;
  p.rope_base = 10000.f;
  ASSERT_TRUE(run_op(OpKind::kRope, {{f32(x, 4), i32(pos)}}, f32(out, 4), p).is_ok());
  // pair (0,1) turns by 1 rad, pair (2,3) by 10000^(-1/2) = 0.01 rad
  EXPECT_FLOAT_EQ(out[0], std::cos(1.f));
  EXPECT_FLOAT_EQ(out[1], std::sin(1.f));
  EXPECT_FLOAT_EQ(out[2], std::cos(0.01f));
  EXPECT_FLOAT_EQ(out[3], std::sin(0.01f));
}

TEST(ReferenceOps, RopeNeoxRotatesHalves) {
  std::vector<float> x{1, 1, 0, 0}, out(4, NAN);
  std::vector<std::int32_t> pos{1};
  OpParams p;
  p.head_dim = 4;
  p.rope_layout = RopeLayout::kNeox;
  ASSERT_TRUE(run_op(OpKind::kRope, {{f32(x, 4), i32(pos)}}, f32(out, 4), p).is_ok());
  // pairs (0,2) by 1 rad and (1,3) by 0.01 rad
  EXPECT_FLOAT_EQ(out[0], std::cos(1.f));
  EXPECT_FLOAT_EQ(out[2], std::sin(1.f));
  EXPECT_FLOAT_EQ(out[1], std::cos(0.01f));
  EXPECT_FLOAT_EQ(out[3], std::sin(0.01f));
}

TEST(ReferenceOps, RopePositionZeroIsIdentity) {
  std::vector<float> x{0.3f, -1, 2, 5, 7, 8, 9, 10}, out(8, NAN);
  std::vector<std::int32_t> pos{0};
  OpParams p;
  p.head_dim = 4;
  ASSERT_TRUE(run_op(OpKind::kRope, {{f32(x, 8), i32(pos)}}, f32(out, 8), p).is_ok());
  EXPECT_EQ(out, x);
}

TEST(ReferenceOps, AttentionCausalGroupedQuery) {
  // head_dim 2, 2 query heads sharing 1 kv head, 2 tokens at positions 0 and 1.
  std::vector<float> q{0, 0, 5, 5, /*token 1:*/ 1, 0, 0, 1};
  std::vector<float> k{1, 0, 0, 1};
  std::vector<float> v{1, 2, 3, 4};
  std::vector<float> kc(2 * 4, NAN), vc(2 * 4, NAN);  // one block of 4 positions
  std::vector<std::int32_t> pos{0, 1}, slot{0, 0}, bt{0};
  std::vector<float> out(8, NAN);
  OpParams p;
  p.head_dim = 2;
  p.n_heads = 2;
  p.n_kv_heads = 1;
  ASSERT_TRUE(run_op(OpKind::kAttention,
                     {{f32(q, 4, 2), f32(k, 2, 2), f32(v, 2, 2), f32(kc, 2, 4, 1), f32(vc, 2, 4, 1), i32(pos),
                       i32(slot), table(bt, 1, 1)}},
                     f32(out, 4, 2), p)
                  .is_ok());
  // token 0 sees only itself: both heads return v0
  EXPECT_FLOAT_EQ(out[0], 1);
  EXPECT_FLOAT_EQ(out[1], 2);
  EXPECT_FLOAT_EQ(out[2], 1);
  EXPECT_FLOAT_EQ(out[3], 2);
  // token 1, head 0: q=(1,0): scores (1, 0)/sqrt(2)
  const double s = 1 / std::sqrt(2.0);
  const double w0 = std::exp(s) / (std::exp(s) + 1);
  EXPECT_FLOAT_EQ(out[4], static_cast<float>(w0 * 1 + (1 - w0) * 3));
  EXPECT_FLOAT_EQ(out[5], static_cast<float>(w0 * 2 + (1 - w0) * 4));
  // token 1, head 1: q=(0,1): scores (0, 1)/sqrt(2)
  EXPECT_FLOAT_EQ(out[6], static_cast<float>((1 - w0) * 1 + w0 * 3));
  // the cache now holds both tokens' k and v
  EXPECT_EQ(kc[0], 1);
  EXPECT_EQ(kc[3], 1);
  EXPECT_EQ(vc[2], 3);
  EXPECT_TRUE(std::isnan(kc[4]));  // position 2 untouched
}

TEST(ReferenceOps, AttentionRejectsPositionPastContext) {
  std::vector<float> q{1, 0}, k{1, 0}, v{1, 0}, kc(4), vc(4), out(2);
  std::vector<std::int32_t> pos{2}, slot{0}, bt{0};
  OpParams p;
  p.head_dim = 2;
  p.n_heads = 1;
  p.n_kv_heads = 1;
  const Status s = run_op(
      OpKind::kAttention,
      {{f32(q, 2), f32(k, 2), f32(v, 2), f32(kc, 2, 2, 1), f32(vc, 2, 2, 1), i32(pos), i32(slot), table(bt, 1, 1)}},
      f32(out, 2), p);
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
}

// Paged cache: blocks of 2 positions, a pool of 4. Sequence 0 holds blocks {3, 1}, sequence 1
// shares its first block (3) and owns block 0. Each token writes through its own table row and
// reads the shared block.
TEST(ReferenceOps, AttentionReadsAndWritesThroughTheBlockTable) {
  OpParams p;
  p.head_dim = 1;
  p.n_heads = 1;
  p.n_kv_heads = 1;
  // Pool rows: block b holds rows 2b, 2b + 1. Values = row index + 100 for keys, row * 10 for values.
  std::vector<float> kc(8), vc(8);
  for (int r = 0; r < 8; ++r) {
    kc[static_cast<std::size_t>(r)] = 0.f;  // equal scores: the output is the mean of the values read
    vc[static_cast<std::size_t>(r)] = static_cast<float>(r * 10);
  }
  std::vector<std::int32_t> bt{3, 1, 3, 0};
  // Token 0: sequence 0 at position 2 (block 1, row 2); token 1: sequence 1 at position 3 (block 0, row 1).
  std::vector<std::int32_t> pos{2, 3}, slot{0, 1};
  std::vector<float> q{0, 0}, k{0, 0}, v{-1, -2}, out(2, NAN);
  ASSERT_TRUE(run_op(OpKind::kAttention,
                     {{f32(q, 1, 2), f32(k, 1, 2), f32(v, 1, 2), f32(kc, 1, 2, 4), f32(vc, 1, 2, 4), i32(pos),
                       i32(slot), table(bt, 2, 2)}},
                     f32(out, 1, 2), p)
                  .is_ok());
  EXPECT_EQ(vc[2], -1);  // block 1, offset 0
  EXPECT_EQ(vc[1], -2);  // block 0, offset 1
  // Sequence 0 reads rows 6, 7 (shared block 3) and 2 (its own): (60 + 70 - 1) / 3.
  EXPECT_FLOAT_EQ(out[0], (60.f + 70.f - 1.f) / 3.f);
  // Sequence 1 reads rows 6, 7 (shared) and 0, 1 (its own, row 1 just written): (60 + 70 + 0 - 2) / 4.
  EXPECT_FLOAT_EQ(out[1], (60.f + 70.f + 0.f - 2.f) / 4.f);
}

TEST(ReferenceOps, AttentionRejectsABlockIdOutsideThePool) {
  OpParams p;
  p.head_dim = 1;
  p.n_heads = 1;
  p.n_kv_heads = 1;
  for (std::int32_t bad : {4, -1}) {
    std::vector<float> kc(8, 7.f), vc(8, 7.f), q{1}, k{1}, v{1}, out(1);
    std::vector<std::int32_t> bt{0, bad}, pos{3}, slot{0};  // position 3 is in the second block
    const Status s = run_op(
        OpKind::kAttention,
        {{f32(q, 1), f32(k, 1), f32(v, 1), f32(kc, 1, 2, 4), f32(vc, 1, 2, 4), i32(pos), i32(slot), table(bt, 2, 1)}},
        f32(out, 1), p);
    EXPECT_EQ(s.code(), StatusCode::kOutOfRange) << bad;
    EXPECT_NE(s.message().find("block_table[0][1]"), std::string::npos) << s.message();
    EXPECT_EQ(kc, std::vector<float>(8, 7.f));  // nothing written
  }
}

TEST(ReferenceOps, Swiglu) {
  std::vector<float> g{0, 1}, u{2, 3}, out(2, NAN);
  ASSERT_TRUE(run_op(OpKind::kSwiglu, {{f32(g, 2), f32(u, 2)}}, f32(out, 2), {}).is_ok());
  EXPECT_FLOAT_EQ(out[0], 0);
  EXPECT_FLOAT_EQ(out[1], static_cast<float>(3 / (1 + std::exp(-1.0))));
}

TEST(ReferenceOps, GegluUsesTheTanhForm) {
  std::vector<float> g{0, 1, -2}, u{2, 3, 0.5f}, out(3, NAN);
  ASSERT_TRUE(run_op(OpKind::kGeglu, {{f32(g, 3), f32(u, 3)}}, f32(out, 3), {}).is_ok());
  auto gelu = [](double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); };
  EXPECT_FLOAT_EQ(out[0], 0);
  EXPECT_FLOAT_EQ(out[1], static_cast<float>(gelu(1) * 3));  // 0.8412 * 3, not erf's 0.8413 * 3
  EXPECT_FLOAT_EQ(out[2], static_cast<float>(gelu(-2) * 0.5));
}

TEST(ReferenceOps, RmsNormGroupsNormalizeEachHeadOnItsOwn) {
  // Two heads of 2: (3, 4) has rms sqrt(12.5), (0, 2) has rms sqrt(2); one weight per head element.
  std::vector<float> x{3, 4, 0, 2}, w{1, 10}, out(4, NAN);
  OpParams p;
  p.eps = 1e-12f;
  p.norm_group = 2;
  ASSERT_TRUE(run_op(OpKind::kRmsNorm, {{f32(x, 4), f32(w, 2)}}, f32(out, 4), p).is_ok());
  EXPECT_FLOAT_EQ(out[0], static_cast<float>(3 / std::sqrt(12.5)));
  EXPECT_FLOAT_EQ(out[1], static_cast<float>(4 / std::sqrt(12.5) * 10));
  EXPECT_FLOAT_EQ(out[2], 0);
  EXPECT_FLOAT_EQ(out[3], static_cast<float>(2 / std::sqrt(2.0) * 10));
  p.norm_group = 3;  // does not divide the row
  EXPECT_FALSE(run_op(OpKind::kRmsNorm, {{f32(x, 4), f32(w, 2)}}, f32(out, 4), p).is_ok());
}

TEST(ReferenceOps, RopeFrequencyFactorsDivideTheAngles) {
  std::vector<float> x{1, 0, 1, 0}, factors{2, 0.5f}, out(4, NAN);
  std::vector<std::int32_t> pos{1};
  OpParams p;
  p.head_dim = 4;
  p.rope_base = 10000;
  ASSERT_TRUE(run_op(OpKind::kRope, {{f32(x, 4), i32(pos), f32(factors, 2)}}, f32(out, 4), p).is_ok());
  // pair 0 turns by 1 / 2 rad, pair 1 by 0.01 / 0.5 rad
  EXPECT_FLOAT_EQ(out[0], std::cos(0.5f));
  EXPECT_FLOAT_EQ(out[1], std::sin(0.5f));
  EXPECT_FLOAT_EQ(out[2], std::cos(0.02f));
  EXPECT_FLOAT_EQ(out[3], std::sin(0.02f));
  std::vector<float> wrong{1, 1, 1};
  EXPECT_FALSE(run_op(OpKind::kRope, {{f32(x, 4), i32(pos), f32(wrong, 3)}}, f32(out, 4), p).is_ok());
}

TEST(ReferenceOps, AttentionSlidingWindowDropsOldPositions) {
  // head_dim 1, equal scores: the output is the mean of the values each token sees.
  OpParams p;
  p.head_dim = 1;
  p.n_heads = 1;
  p.n_kv_heads = 1;
  p.sliding_window = 2;
  std::vector<float> q{0, 0, 0, 0}, k{0, 0, 0, 0}, v{1, 2, 4, 8}, kc(4), vc(4), out(4, NAN);
  std::vector<std::int32_t> pos{0, 1, 2, 3}, slot{0, 0, 0, 0}, bt{0};
  ASSERT_TRUE(run_op(OpKind::kAttention,
                     {{f32(q, 1, 4), f32(k, 1, 4), f32(v, 1, 4), f32(kc, 1, 4, 1), f32(vc, 1, 4, 1), i32(pos),
                       i32(slot), table(bt, 1, 1)}},
                     f32(out, 1, 4), p)
                  .is_ok());
  EXPECT_FLOAT_EQ(out[0], 1);
  EXPECT_FLOAT_EQ(out[1], 1.5f);
  EXPECT_FLOAT_EQ(out[2], 3);  // positions 1 and 2
  EXPECT_FLOAT_EQ(out[3], 6);  // positions 2 and 3
}

TEST(ReferenceOps, EmbedScaleMultipliesTheRows) {
  std::vector<float> table{1, 2, 3, 4};
  std::vector<std::int32_t> ids{1};
  std::vector<float> out(2, NAN);
  OpParams p;
  p.scale = 0.5f;
  ASSERT_TRUE(run_op(OpKind::kEmbed, {{f32(table, 2, 2), i32(ids)}}, f32(out, 2, 1), p).is_ok());
  EXPECT_EQ(out, (std::vector<float>{1.5f, 2}));
}

TEST(ReferenceOps, AddAndMulBroadcastRows) {
  std::vector<float> a{1, 2, 3, 4}, b{10, 20}, out(4, NAN);
  ASSERT_TRUE(run_op(OpKind::kAdd, {{f32(a, 2, 2), f32(b, 2)}}, f32(out, 2, 2), {}).is_ok());
  EXPECT_EQ(out, (std::vector<float>{11, 22, 13, 24}));
  ASSERT_TRUE(run_op(OpKind::kMul, {{f32(a, 2, 2), f32(b, 2)}}, f32(out, 2, 2), {}).is_ok());
  EXPECT_EQ(out, (std::vector<float>{10, 40, 30, 80}));
  std::vector<float> c{1, 1, 1, 1};
  ASSERT_TRUE(run_op(OpKind::kAdd, {{f32(a, 2, 2), f32(c, 2, 2)}}, f32(out, 2, 2), {}).is_ok());
  EXPECT_EQ(out, (std::vector<float>{2, 3, 4, 5}));
}

TEST(ReferenceOps, Softmax) {
  std::vector<float> x{0, std::log(2.f), 5, 5}, out(4, NAN);
  ASSERT_TRUE(run_op(OpKind::kSoftmax, {{f32(x, 2, 2)}}, f32(out, 2, 2), {}).is_ok());
  EXPECT_FLOAT_EQ(out[0], 1.f / 3);
  EXPECT_FLOAT_EQ(out[1], 2.f / 3);
  EXPECT_FLOAT_EQ(out[2], 0.5f);
}

TEST(ReferenceOps, ArgmaxFirstMaximumWins) {
  std::vector<float> x{1, 3, 3, 0, -1, -2};
  std::vector<std::int32_t> out(2, -7);
  ASSERT_TRUE(run_op(OpKind::kArgmax, {{f32(x, 3, 2)}}, i32(out), {}).is_ok());
  EXPECT_EQ(out, (std::vector<std::int32_t>{1, 0}));
}

TEST(ReferenceOps, CopyConvertsDtype) {
  std::vector<float> x{1.5f, -2.f, 0.25f, 65504.f};
  std::vector<std::uint16_t> h(4, 0xffff);
  OpParams p;
  p.out_dtype = DType::kF16;
  const HostTensor out{TensorDesc::make(DType::kF16, 4), h.data()};
  ASSERT_TRUE(run_op(OpKind::kCopy, {{f32(x, 4)}}, out, p).is_ok());
  EXPECT_EQ(h, (std::vector<std::uint16_t>{0x3e00, 0xc000, 0x3400, 0x7bff}));
}

TEST(ReferenceOps, ShapeMismatchIsAnError) {
  std::vector<float> w(6), x(3), out(3);
  const Status s = run_op(OpKind::kMatmul, {{f32(w, 2, 3), f32(x, 3, 1)}}, f32(out, 3, 1), {});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("MATMUL"), std::string::npos);
}

}  // namespace
}  // namespace halyard::reference
