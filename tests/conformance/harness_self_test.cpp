// The conformance harness must be able to fail: a device that writes nothing (output stays
// NaN-poisoned), writes a perturbed result or breaks ARGMAX's tie rule is caught.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "halyard/conformance/op_cases.h"
#include "halyard/hal/registry.h"

namespace halyard::conformance {
namespace {

// Wraps a real device; its executables run the real graph and then damage the output.
// kLastMaxWins rewrites an ARGMAX output as the index of the last maximum of each row.
// kRefuse: compile() refuses every graph as unimplemented, as a backend that lacks an op form
// (a sliding window, a norm group) does.
enum class Damage { kNone, kSkipRun, kPerturb, kLastMaxWins, kRefuse };

class DamagedExecutable final : public Executable {
 public:
  DamagedExecutable(std::unique_ptr<Executable> inner, const Graph& graph, Damage damage)
      : inner_(std::move(inner)),
        output_(graph.nodes().back().output),
        input_(graph.nodes().back().inputs[0]),
        input_desc_(graph.tensor(input_).desc),
        damage_(damage) {}
  Result<std::unique_ptr<Event>> run(Queue& queue, std::span<const Binding> bindings) override {
    if (damage_ == Damage::kSkipRun)
      return inner_->run(queue, {});  // fails: nothing bound
    auto ev = inner_->run(queue, bindings);
    if (!ev.is_ok() || damage_ == Damage::kNone)
      return ev;
    HALYARD_RETURN_IF_ERROR(ev.value()->wait());
    if (damage_ == Damage::kLastMaxWins)
      return last_max_wins(bindings, std::move(ev).value());
    for (const Binding& b : bindings) {
      if (b.tensor != output_)
        continue;
      // Flip a high bit of byte 3: the exponent of the first f32 value, a quant of a block type,
      // the top of an i32.
      std::uint8_t byte = 0;
      HALYARD_RETURN_IF_ERROR(b.buffer->download(b.offset + 3, &byte, 1));
      byte ^= 0x40;
      HALYARD_RETURN_IF_ERROR(b.buffer->upload(b.offset + 3, &byte, 1));
    }
    return ev;
  }

 private:
  Result<std::unique_ptr<Event>> last_max_wins(std::span<const Binding> bindings, std::unique_ptr<Event> ev) {
    const Binding* x = nullptr;
    const Binding* out = nullptr;
    for (const Binding& b : bindings) {
      x = b.tensor == input_ ? &b : x;
      out = b.tensor == output_ ? &b : out;
    }
    if (!x || !out)
      return internal_error("kLastMaxWins: the ARGMAX input or output is not bound");
    const std::int64_t d = input_desc_.ne[0], rows = input_desc_.rows();
    std::vector<float> v(static_cast<std::size_t>(d * rows));
    HALYARD_RETURN_IF_ERROR(x->buffer->download(x->offset, v.data(), v.size() * sizeof(float)));
    std::vector<std::int32_t> ids(static_cast<std::size_t>(rows));
    for (std::int64_t r = 0; r < rows; ++r) {
      std::int64_t best = 0;
      for (std::int64_t i = 1; i < d; ++i)
        best = v[static_cast<std::size_t>(r * d + i)] >= v[static_cast<std::size_t>(r * d + best)] ? i : best;
      ids[static_cast<std::size_t>(r)] = static_cast<std::int32_t>(best);
    }
    HALYARD_RETURN_IF_ERROR(out->buffer->upload(out->offset, ids.data(), ids.size() * sizeof(std::int32_t)));
    return ev;
  }

  std::unique_ptr<Executable> inner_;
  TensorId output_, input_;
  TensorDesc input_desc_;
  Damage damage_;
};

class DamagedDevice final : public Device {
 public:
  DamagedDevice(std::unique_ptr<Device> inner, Damage damage) : inner_(std::move(inner)), damage_(damage) {}
  const DeviceInfo& info() const override { return inner_->info(); }
  bool supports(OpKind op, std::span<const DType> d) const override { return inner_->supports(op, d); }
  Result<std::unique_ptr<Buffer>> allocate(std::size_t bytes) override { return inner_->allocate(bytes); }
  Result<std::unique_ptr<Queue>> create_queue() override { return inner_->create_queue(); }
  Result<std::unique_ptr<Executable>> compile(const Graph& graph) override {
    if (damage_ == Damage::kRefuse)
      return unimplemented("damaged: this form is not implemented here");
    HALYARD_ASSIGN_OR_RETURN(auto exe, inner_->compile(graph));
    return std::unique_ptr<Executable>(new DamagedExecutable(std::move(exe), graph, damage_));
  }

 private:
  std::unique_ptr<Device> inner_;
  Damage damage_;
};

std::unique_ptr<Device> damaged_ref(Damage damage) {
  RegistryOptions o;
  o.search_paths = {HALYARD_PLUGIN_DIR};
  static auto registry = BackendRegistry::load(o);
  EXPECT_TRUE(registry.is_ok());
  auto dev = registry.value()->open_device("ref");
  EXPECT_TRUE(dev.is_ok());
  return std::make_unique<DamagedDevice>(std::move(dev).value(), damage);
}

const OpCase& find_case(const std::vector<OpCase>& cases, const std::string& prefix) {
  for (const auto& c : cases) {
    if (c.name.starts_with(prefix))
      return c;
  }
  ADD_FAILURE() << "no case " << prefix;
  return cases.front();
}

TEST(ConformanceHarness, CoversEveryOpAndWeightDtype) {
  const auto cases = all_op_cases();
  for (int op = 0; op < kOpCount; ++op) {
    bool found = false;
    for (const auto& c : cases)
      found |= c.op == static_cast<OpKind>(op);
    EXPECT_TRUE(found) << op_name(static_cast<OpKind>(op));
  }
  for (const char* dt : {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1"}) {
    find_case(cases, std::string("MATMUL/") + dt);
    find_case(cases, std::string("EMBED/") + dt);
  }
  // Every parameter beyond an op's original form (uses_extended_params) and ROPE's third input.
  for (const char* prefix : {"GEGLU/f32/", "RMS_NORM/f32/group_", "RMS_NORM/f32/group_tiny_rows_",
                             "ROPE/normal/freq_factors_", "ROPE/neox/freq_factors_", "ATTENTION/f32/window_",
                             "ATTENTION/f16/window_", "EMBED/f32/scale_", "EMBED/q8_0/scale_"})
    find_case(cases, prefix);
  int extended = 0;
  for (const auto& c : cases)
    extended += uses_extended_params(c.op, c.params) || (c.op == OpKind::kRope && c.inputs.size() == 3);
  EXPECT_GE(extended, 80);
}

// A device that refuses a graph as unimplemented (an op form it lacks) reports the case as
// unsupported with its reason, never as passed or failed.
TEST(ConformanceHarness, ReportsAnUnimplementedFormAsUnsupported) {
  auto dev = damaged_ref(Damage::kRefuse);
  const auto cases = all_op_cases();
  for (const char* name : {"ATTENTION/f32/window_", "RMS_NORM/f32/group_", "ROPE/neox/freq_factors_"}) {
    const auto r = run_op_case(*dev, find_case(cases, name), 1);
    EXPECT_TRUE(r.unsupported) << name;
    EXPECT_FALSE(r.passed) << name;
    EXPECT_NE(r.message.find("not implemented here"), std::string::npos) << r.message;
  }
}

TEST(ConformanceHarness, PassesAnUndamagedDevice) {
  auto dev = damaged_ref(Damage::kNone);
  const auto cases = all_op_cases();
  EXPECT_TRUE(run_op_case(*dev, find_case(cases, "MATMUL/q4_1"), 1).passed);
}

TEST(ConformanceHarness, CatchesADeviceThatFails) {
  auto dev = damaged_ref(Damage::kSkipRun);
  const auto cases = all_op_cases();
  const auto r = run_op_case(*dev, find_case(cases, "ADD/f32"), 1);
  EXPECT_FALSE(r.passed);
  EXPECT_FALSE(r.message.empty());
}

TEST(ConformanceHarness, OutOfRangeCasesPassOnlyWhenRejected) {
  auto dev = damaged_ref(Damage::kNone);
  const auto bad = out_of_range_op_cases();
  ASSERT_FALSE(bad.empty());
  for (const auto& c : bad) {
    const auto r = run_op_case(*dev, c, 1);
    EXPECT_TRUE(r.passed) << c.name << ": " << r.message;
    EXPECT_NE(r.message.find("block_table["), std::string::npos) << r.message;
  }
  // The same case with a valid table is not rejected, so expecting a rejection fails it.
  OpCase valid = bad.front();
  valid.kv_table = KvTable::kIdentity;
  EXPECT_FALSE(run_op_case(*dev, valid, 1).passed);
}

TEST(ConformanceHarness, CatchesAWrongValue) {
  auto dev = damaged_ref(Damage::kPerturb);
  const auto cases = all_op_cases();
  for (const char* name :
       {"MATMUL/q8_0", "ATTENTION/", "ATTENTION/f32/hd64_h8_kvh2_n4", "SOFTMAX/", "ARGMAX/", "COPY/f32_to_q4_0",
        "GEGLU/", "RMS_NORM/f32/group_", "ROPE/normal/freq_factors_", "ATTENTION/f16/window_", "EMBED/q4_1/scale_"}) {
    const auto r = run_op_case(*dev, find_case(cases, name), 1);
    EXPECT_FALSE(r.passed) << name;
  }
  // A failing NMSE is printed so that the margin shows: "NMSE 3.1e-05 > 1.0e-07", never
  // "NMSE 0.000031 > 0.000000".
  const auto r = run_op_case(*dev, find_case(cases, "RMS_NORM/"), 1);
  ASSERT_FALSE(r.passed);
  EXPECT_NE(r.message.find("e-07"), std::string::npos) << r.message;
  EXPECT_EQ(r.message.find("0.000000"), std::string::npos) << r.message;
}

// Random N(0, 1) rows almost never tie, so only the tie cases tell "first maximum wins" from
// "last maximum wins": every one of them must catch the latter, and the random rows must not.
TEST(ConformanceHarness, ArgmaxTieCasesCatchTheLastMaximumWinning) {
  auto dev = damaged_ref(Damage::kLastMaxWins);
  int ties = 0;
  for (const auto& c : all_op_cases()) {
    if (c.op != OpKind::kArgmax)
      continue;
    const bool tie_case = c.name.find("/ties_") != std::string::npos;
    const auto r = run_op_case(*dev, c, 1);
    EXPECT_EQ(r.passed, !tie_case) << c.name << ": " << r.message;
    ties += tie_case ? 1 : 0;
  }
  EXPECT_GE(ties, 8);
}

}  // namespace
}  // namespace halyard::conformance
