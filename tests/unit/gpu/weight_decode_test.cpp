// The CUDA/HIP weight decoders (kernels/cuda/weight_decode.h) run on the host, against
// dequantize_row (hal/src/dtype.cpp, kquants.cpp: the definitions), bit for bit, for every weight
// dtype: rows of several blocks of random bytes (every bit pattern, scales that are NaN, infinite
// or subnormal included), rows that hal's quantizer wrote, blocks with hand-picked scales, and a
// valid block with each of its bits flipped in turn, which pins every quant bit and every scale
// bit to the element it belongs to. This is where a wrong index or order of operations in a GPU
// decoder shows without a GPU; the conformance suite checks the kernels on a device.
#include "weight_decode.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "halyard/hal/blocks.h"
#include "halyard/hal/dtype.h"

namespace halyard {
namespace {

using weight_decode::load_weight;
using weight_decode::Weights;

// Every element of an n-element row through Weights<DT>::load (the decoder the matrix kernels
// instantiate per dtype).
template <DType DT>
std::vector<float> decode_typed(const std::vector<std::uint8_t>& row, int n) {
  std::vector<float> out(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    out[static_cast<std::size_t>(i)] = Weights<DT>::load(row.data(), i);
  return out;
}

struct Format {
  DType dtype;
  std::vector<float> (*decode)(const std::vector<std::uint8_t>&, int);
  // Byte offsets of the block's f16 scale fields (none for the plain types).
  std::vector<std::size_t> scales;
};

const std::vector<Format>& formats() {
  static const std::vector<Format> kFormats = {
      {DType::kF32, decode_typed<DType::kF32>, {}},
      {DType::kF16, decode_typed<DType::kF16>, {}},
      {DType::kBF16, decode_typed<DType::kBF16>, {}},
      {DType::kQ8_0, decode_typed<DType::kQ8_0>, {offsetof(BlockQ8_0, d)}},
      {DType::kQ4_0, decode_typed<DType::kQ4_0>, {offsetof(BlockQ4_0, d)}},
      {DType::kQ4_1, decode_typed<DType::kQ4_1>, {offsetof(BlockQ4_1, d), offsetof(BlockQ4_1, m)}},
      {DType::kQ5_0, decode_typed<DType::kQ5_0>, {offsetof(BlockQ5_0, d)}},
      {DType::kQ5_1, decode_typed<DType::kQ5_1>, {offsetof(BlockQ5_1, d), offsetof(BlockQ5_1, m)}},
      {DType::kQ2_K, decode_typed<DType::kQ2_K>, {offsetof(BlockQ2_K, d), offsetof(BlockQ2_K, dmin)}},
      {DType::kQ3_K, decode_typed<DType::kQ3_K>, {offsetof(BlockQ3_K, d)}},
      {DType::kQ4_K, decode_typed<DType::kQ4_K>, {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)}},
      {DType::kQ5_K, decode_typed<DType::kQ5_K>, {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)}},
      {DType::kQ6_K, decode_typed<DType::kQ6_K>, {offsetof(BlockQ6_K, d)}},
      {DType::kIQ4_NL, decode_typed<DType::kIQ4_NL>, {offsetof(BlockIQ4_NL, d)}},
      {DType::kIQ4_XS, decode_typed<DType::kIQ4_XS>, {offsetof(BlockIQ4_XS, d)}},
  };
  return kFormats;
}

void PrintTo(const Format& f, std::ostream* os) {
  *os << dtype_name(f.dtype);
}

class WeightDecode : public ::testing::TestWithParam<Format> {
 protected:
  DType dtype() const { return GetParam().dtype; }
  const DTypeInfo& info() const { return dtype_info(dtype()); }
  // Elements and bytes of a row of `blocks` blocks (a plain type's "block" is 32 elements here,
  // so that its rows are as long as a small block format's).
  int elements(int blocks) const {
    return static_cast<int>(blocks * (info().quantized ? info().block_elements : kQuantBlock));
  }
  std::size_t bytes(int blocks) const { return row_bytes(dtype(), elements(blocks)); }

  // Decodes the row both ways (the per-dtype template and the runtime dispatch the EMBED and
  // COPY kernels use) and compares each element with dequantize_row's, bit for bit; NaN matches
  // any NaN (GPUs do not keep NaN payloads, so the kernels are not held to them either).
  void expect_same(const std::vector<std::uint8_t>& row, const std::string& what) const {
    const int n = static_cast<int>(row.size() / info().block_bytes * info().block_elements);
    ASSERT_EQ(row_bytes(dtype(), n), row.size());
    std::vector<float> want(static_cast<std::size_t>(n));
    dequantize_row(dtype(), row.data(), want.data(), n);
    const std::vector<float> typed = GetParam().decode(row, n);
    int reported = 0;
    for (int i = 0; i < n && reported < 5; ++i) {
      const auto k = static_cast<std::size_t>(i);
      const float runtime = load_weight(dtype(), row.data(), i);
      for (const bool by_type : {true, false}) {
        const float got = by_type ? typed[k] : runtime;
        const bool same = std::bit_cast<std::uint32_t>(got) == std::bit_cast<std::uint32_t>(want[k]) ||
                          (std::isnan(got) && std::isnan(want[k]));
        if (!same) {
          ADD_FAILURE() << dtype_name(dtype()) << " " << what << ": element " << i << " (block "
                        << i / info().block_elements << ", index " << i % info().block_elements << ") decodes to "
                        << got << " (0x" << std::hex << std::bit_cast<std::uint32_t>(got) << "), dequantize_row gives "
                        << want[k] << " (0x" << std::bit_cast<std::uint32_t>(want[k]) << std::dec << ")"
                        << (by_type ? " [Weights<DT>::load]" : " [load_weight]");
          ++reported;
        }
      }
    }
  }

  std::vector<std::uint8_t> random_bytes(std::mt19937& rng, int blocks) const {
    std::vector<std::uint8_t> row(bytes(blocks));
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto& b : row)
      b = static_cast<std::uint8_t>(byte(rng));
    return row;
  }

  // A row that hal's reference quantizer wrote from N(0, scale^2) values: valid blocks with
  // finite scales, as a model file has them.
  std::vector<std::uint8_t> quantized(std::mt19937& rng, int blocks, float scale) const {
    const int n = elements(blocks);
    std::vector<float> x(static_cast<std::size_t>(n));
    std::normal_distribution<float> normal(0.f, scale);
    for (auto& v : x)
      v = normal(rng);
    std::vector<std::uint8_t> row(bytes(blocks));
    quantize_row(dtype(), x.data(), row.data(), n);
    return row;
  }
};

TEST_P(WeightDecode, RandomBytes) {
  std::mt19937 rng(1234u + static_cast<unsigned>(dtype()));
  for (int r = 0; r < 64; ++r)
    expect_same(random_bytes(rng, 3), "random bytes, row " + std::to_string(r));
}

TEST_P(WeightDecode, QuantizedRows) {
  std::mt19937 rng(99u + static_cast<unsigned>(dtype()));
  for (float scale : {1e-3f, 0.02f, 1.f, 300.f})
    for (int r = 0; r < 8; ++r)
      expect_same(quantized(rng, 4, scale),
                  "quantized N(0, " + std::to_string(scale) + "^2), row " + std::to_string(r));
}

// All zero, all ones, and every f16 scale field set to each special value: zeros of both signs,
// the smallest and largest subnormals, the smallest normal, the largest finite value, one,
// infinities and a NaN, with the quants all zero, all one bits, or random.
TEST_P(WeightDecode, EdgeBlocks) {
  const std::size_t n = bytes(2);
  expect_same(std::vector<std::uint8_t>(n, 0x00), "all zero bytes");
  expect_same(std::vector<std::uint8_t>(n, 0xff), "all one bits");
  expect_same(std::vector<std::uint8_t>(n, 0x55), "bytes 0x55");
  if (GetParam().scales.empty())
    return;
  const std::uint16_t specials[] = {0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x7bff, 0xfbff,
                                    0x3c00, 0xbc00, 0x7c00, 0xfc00, 0x7e00, 0x3555, 0x0200};
  std::mt19937 rng(7u);
  for (int fill = 0; fill < 3; ++fill) {
    std::vector<std::uint8_t> base = fill == 0   ? std::vector<std::uint8_t>(n, 0x00)
                                     : fill == 1 ? std::vector<std::uint8_t>(n, 0xff)
                                                 : random_bytes(rng, 2);
    for (std::size_t field = 0; field < GetParam().scales.size(); ++field) {
      for (std::uint16_t bits : specials) {
        std::vector<std::uint8_t> row = base;
        for (std::size_t b = 0; b < 2; ++b) {  // both blocks
          std::uint8_t* p = row.data() + b * info().block_bytes + GetParam().scales[field];
          p[0] = static_cast<std::uint8_t>(bits & 0xff);
          p[1] = static_cast<std::uint8_t>(bits >> 8);
        }
        char label[96];
        std::snprintf(label, sizeof label, "fill %d, scale field %zu = 0x%04x", fill, field,
                      static_cast<unsigned>(bits));
        expect_same(row, label);
      }
    }
  }
}

// A valid block (in the middle of a row of three) with one bit flipped, for every bit: each
// quant bit changes exactly its own element and each scale bit its own sub-block, so a decoder
// that reads any bit for the wrong element (or the wrong block) differs here.
TEST_P(WeightDecode, EveryBitFlipped) {
  std::mt19937 rng(5u + static_cast<unsigned>(dtype()));
  const std::vector<std::uint8_t> base = quantized(rng, 3, 1.f);
  const std::size_t block = bytes(1);
  for (std::size_t byte = block; byte < 2 * block; ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<std::uint8_t> row = base;
      row[byte] = static_cast<std::uint8_t>(row[byte] ^ (1u << bit));
      expect_same(row, "byte " + std::to_string(byte - block) + " bit " + std::to_string(bit) + " of block 1 flipped");
      if (HasFailure())
        return;
    }
  }
}

// I32 is no weight: the runtime dispatch returns 0 rather than reading it as one.
TEST(WeightDecodeDispatch, I32IsNoWeight) {
  const std::uint8_t bytes[4] = {1, 2, 3, 4};
  EXPECT_EQ(load_weight(DType::kI32, bytes, 0), 0.f);
}

// Every weight dtype (all but I32) has a decoder in the list above: a new dtype must get one.
TEST(WeightDecodeDispatch, CoversEveryWeightDtype) {
  int weights = 0;
  for (std::uint32_t id = 0; id < 64; ++id) {
    const auto info = dtype_info(id);
    if (!info || !is_weight_dtype(info->dtype))
      continue;
    ++weights;
    bool listed = false;
    for (const Format& f : formats())
      listed = listed || f.dtype == info->dtype;
    EXPECT_TRUE(listed) << info->name << " has no decoder test";
  }
  EXPECT_EQ(weights, static_cast<int>(formats().size()));
}

INSTANTIATE_TEST_SUITE_P(AllWeightDtypes, WeightDecode, ::testing::ValuesIn(formats()),
                         [](const ::testing::TestParamInfo<Format>& p) {
                           return std::string(dtype_name(p.param.dtype));
                         });

}  // namespace
}  // namespace halyard
