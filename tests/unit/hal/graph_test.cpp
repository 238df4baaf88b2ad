#include "halyard/hal/graph.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace halyard {
namespace {

TEST(Graph, InfersShapesAndValidates) {
  Graph g;
  const TensorId w = g.add_tensor("w", TensorDesc::make(DType::kQ4_1, 64, 16), TensorRole::kWeight);
  const TensorId x = g.add_tensor("x", TensorDesc::make(DType::kF32, 64, 3), TensorRole::kInput);
  auto y = g.add_op(OpKind::kMatmul, {w, x});
  ASSERT_TRUE(y.is_ok()) << y.status().to_string();
  EXPECT_EQ(g.tensor(y.value()).desc, TensorDesc::make(DType::kF32, 16, 3));
  auto a = g.add_op(OpKind::kArgmax, {y.value()});
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(g.tensor(a.value()).desc.dtype, DType::kI32);
  g.mark_output(a.value());
  EXPECT_TRUE(g.validate().is_ok());
}

TEST(Graph, RejectsBadShapes) {
  Graph g;
  const TensorId w = g.add_tensor("w", TensorDesc::make(DType::kF32, 64, 16), TensorRole::kWeight);
  const TensorId x = g.add_tensor("x", TensorDesc::make(DType::kF32, 32, 3), TensorRole::kInput);
  auto y = g.add_op(OpKind::kMatmul, {w, x}, {}, "proj");
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("proj"), std::string::npos);
  EXPECT_FALSE(g.add_op(OpKind::kAdd, {x, 99}).is_ok());
  // a quantized row that is not a whole number of blocks
  const TensorId q = g.add_tensor("q", TensorDesc::make(DType::kQ8_0, 48, 2), TensorRole::kWeight);
  EXPECT_FALSE(g.add_op(OpKind::kMatmul, {q, x}).is_ok());
}

// ATTENTION's inputs: q, k, v, the two block pools, positions, slots and the block table.
TEST(Ops, AttentionChecksThePagedCacheShapes) {
  OpParams p;
  p.head_dim = 4;
  p.n_heads = 2;
  p.n_kv_heads = 1;
  const auto act = [](std::int64_t rows) { return TensorDesc::make(DType::kF32, rows, 3); };
  const auto pool = TensorDesc::make(DType::kF32, 4, 16, 10);  // blocks of 16 positions, 10 blocks
  const auto ids = TensorDesc::make(DType::kI32, 3);
  const auto table = TensorDesc::make(DType::kI32, 5, 2);  // 5 blocks per sequence, 2 sequences
  std::vector<TensorDesc> in{act(8), act(4), act(4), pool, pool, ids, ids, table};
  auto out = infer_output(OpKind::kAttention, in, p);
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(out.value(), TensorDesc::make(DType::kF32, 8, 3));

  auto message = [&](std::vector<TensorDesc> bad) {
    auto r = infer_output(OpKind::kAttention, bad, p);
    EXPECT_FALSE(r.is_ok());
    return r.is_ok() ? std::string() : r.status().message();
  };
  EXPECT_NE(message({act(8), act(4), act(4), pool, pool, ids, ids}).find("expects 8 inputs"), std::string::npos);
  auto f32_table = in;
  f32_table[7] = TensorDesc::make(DType::kF32, 5, 2);
  EXPECT_NE(message(f32_table).find("block_table"), std::string::npos);
  auto table_3d = in;
  table_3d[7] = TensorDesc::make(DType::kI32, 5, 2, 2);
  EXPECT_NE(message(table_3d).find("block_table"), std::string::npos);
  auto other_pool = in;
  other_pool[4] = TensorDesc::make(DType::kF32, 4, 16, 11);
  EXPECT_NE(message(other_pool).find("differ"), std::string::npos);
  auto wide_rows = in;
  wide_rows[3] = wide_rows[4] = TensorDesc::make(DType::kF32, 8, 16, 10);
  EXPECT_NE(message(wide_rows).find("block pools"), std::string::npos);
  // F16 pools are accepted; K and V must share one dtype; other dtypes are refused by name.
  auto f16_pools = in;
  f16_pools[3] = f16_pools[4] = TensorDesc::make(DType::kF16, 4, 16, 10);
  EXPECT_TRUE(infer_output(OpKind::kAttention, f16_pools, p).is_ok());
  auto mixed = in;
  mixed[4] = TensorDesc::make(DType::kF16, 4, 16, 10);
  EXPECT_NE(message(mixed).find("differ in shape or dtype"), std::string::npos);
  auto bf16_pools = in;
  bf16_pools[3] = bf16_pools[4] = TensorDesc::make(DType::kBF16, 4, 16, 10);
  EXPECT_NE(message(bf16_pools).find("caches must be f32 or f16"), std::string::npos);
}

TEST(Ops, NamesRoundTrip) {
  for (int i = 0; i < kOpCount; ++i) {
    const auto op = static_cast<OpKind>(i);
    EXPECT_EQ(op_from_name(op_name(op)), op);
  }
  EXPECT_FALSE(op_from_name("CONV2D").has_value());
}

}  // namespace
}  // namespace halyard
