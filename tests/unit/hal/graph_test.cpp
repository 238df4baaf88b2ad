#include "halyard/hal/graph.h"

#include <gtest/gtest.h>

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

TEST(Ops, NamesRoundTrip) {
  for (int i = 0; i < kOpCount; ++i) {
    const auto op = static_cast<OpKind>(i);
    EXPECT_EQ(op_from_name(op_name(op)), op);
  }
  EXPECT_FALSE(op_from_name("CONV2D").has_value());
}

}  // namespace
}  // namespace halyard
