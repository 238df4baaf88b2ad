#include "halyard/runtime/quantize.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "halyard/runtime/gguf.h"
#include "halyard/runtime/gguf_writer.h"

namespace halyard::runtime {
namespace {

std::string fmt(const char* format, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, format, args...);
  return buf;
}

int layer_count(const GgufFile& f) {
  if (auto arch = f.get_string("general.architecture")) {
    if (auto n = f.get_int(std::string(*arch) + ".block_count"); n && *n > 0 && *n < 1'000'000)
      return static_cast<int>(*n);
  }
  int n = 0;  // no block_count: the highest blk.N in the names
  for (const auto& t : f.tensors()) {
    if (auto l = tensor_layer(t.name))
      n = std::max(n, *l + 1);
  }
  return n;
}

// Converts rows [begin, end) of one tensor: dequantize each row to f32, quantize it anew.
void convert_rows(const GgufTensor& t, DType to, std::uint8_t* dst, std::int64_t begin, std::int64_t end) {
  const std::int64_t ne0 = t.desc.ne[0];
  const std::size_t src_row = row_bytes(t.desc.dtype, ne0);
  const std::size_t dst_row = row_bytes(to, ne0);
  const auto* src = static_cast<const std::uint8_t*>(t.data);
  std::vector<float> row(static_cast<std::size_t>(ne0));
  for (std::int64_t r = begin; r < end; ++r) {
    dequantize_row(t.desc.dtype, src + static_cast<std::size_t>(r) * src_row, row.data(), ne0);
    quantize_row(to, row.data(), dst + static_cast<std::size_t>(r) * dst_row, ne0);
  }
}

// Each thread takes a fixed, contiguous range of rows: the result is the same for any count.
void convert_tensor(const GgufTensor& t, DType to, std::uint8_t* dst, int threads) {
  const std::int64_t rows = t.desc.rows();
  const std::int64_t n_threads = std::clamp<std::int64_t>(threads, 1, std::max<std::int64_t>(rows / 16, 1));
  if (n_threads == 1) {
    convert_rows(t, to, dst, 0, rows);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(n_threads));
  for (std::int64_t i = 0; i < n_threads; ++i) {
    const std::int64_t b = rows * i / n_threads;
    const std::int64_t e = rows * (i + 1) / n_threads;
    pool.emplace_back([&t, to, dst, b, e] { convert_rows(t, to, dst, b, e); });
  }
  for (auto& th : pool)
    th.join();
}

}  // namespace

Result<QuantizeReport> quantize_gguf(const std::string& input_path, const std::string& output_path,
                                     const QuantizeOptions& options) {
  auto say = [&](const std::string& line) {
    if (options.on_message)
      options.on_message(line);
  };
  const auto start = std::chrono::steady_clock::now();
  QuantizeReport report;
  HALYARD_ASSIGN_OR_RETURN(report.mix, parse_quant_mix(options.type, options.pure));
  if (output_path.empty())
    return invalid_argument("quantize: the output path is empty");
  HALYARD_ASSIGN_OR_RETURN(auto in, GgufFile::open(input_path));
  report.input_bytes = in->file_size();

  std::vector<std::string> names;
  std::vector<TensorDesc> descs;
  std::string unsupported;
  for (const auto& t : in->tensors()) {
    if (!t.supported)
      unsupported += (unsupported.empty() ? "" : ", ") + t.name + " (" + gguf_dtype_label(t.type_id) + ")";
    names.push_back(t.name);
    descs.push_back(t.desc);
  }
  if (!unsupported.empty())
    return unimplemented("quantize: '" + input_path + "' has tensors of types Halyard cannot read: " + unsupported);
  if (names.empty())
    return invalid_argument("quantize: '" + input_path + "' holds no tensors");

  const int n_layers = layer_count(*in);
  report.plan = plan_quantization(report.mix, names, descs, n_layers);

  // Metadata: everything the input has (sorted by key, as the reader keeps it), with the file
  // type and quantization version replaced by ours.
  GgufStreamWriter writer;
  for (const auto& [key, value] : in->metadata()) {
    if (key == "general.file_type" || key == "general.quantization_version")
      continue;
    HALYARD_RETURN_IF_ERROR(writer.add_metadata(key, value));
  }
  HALYARD_RETURN_IF_ERROR(
      writer.add_metadata("general.file_type", GgufValue{GgufType::kU32, std::uint64_t{report.mix.file_type}}));
  HALYARD_RETURN_IF_ERROR(writer.add_metadata("general.quantization_version",
                                              GgufValue{GgufType::kU32, std::uint64_t{kGgufQuantizationVersion}}));

  std::map<std::string, int> requantized_from;
  for (const auto& p : report.plan) {
    TensorDesc out = p.source;
    out.dtype = p.chosen;
    HALYARD_RETURN_IF_ERROR(writer.add_tensor(p.name, out));
    if (dtype_info(p.source.dtype).quantized && p.source.dtype != p.chosen) {
      ++report.requantized;
      ++requantized_from[std::string(dtype_name(p.source.dtype))];
    }
  }

  say(fmt("quantizing %s -> %s as %s%s (%d layers, %zu tensors)", input_path.c_str(), output_path.c_str(),
          report.mix.name.c_str(), report.mix.pure ? ", pure" : "", n_layers, report.plan.size()));
  if (report.requantized > 0) {
    std::string from;
    for (const auto& [name, n] : requantized_from)
      from += fmt("%s%d x %s", from.empty() ? "" : ", ", n, name.c_str());
    say(
        fmt("warning: %d tensors are already quantized (%s): they are dequantized and quantized again, which "
            "adds both formats' errors; quantize from the F16/BF16/F32 original for the best quality",
            report.requantized, from.c_str()));
  }

  const int threads =
      options.threads > 0 ? options.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  HALYARD_RETURN_IF_ERROR(writer.begin(output_path));
  std::vector<std::uint8_t> buffer;
  for (std::size_t i = 0; i < report.plan.size(); ++i) {
    const auto& p = report.plan[i];
    const GgufTensor& t = in->tensors()[i];
    TensorDesc out = p.source;
    out.dtype = p.chosen;
    if (p.source.dtype == p.chosen) {  // same format: the bytes as they are, nothing lost
      HALYARD_RETURN_IF_ERROR(writer.write_tensor_data(t.data, out.bytes()));
      continue;
    }
    buffer.resize(out.bytes());
    convert_tensor(t, p.chosen, buffer.data(), threads);
    HALYARD_RETURN_IF_ERROR(writer.write_tensor_data(buffer.data(), buffer.size()));
  }
  HALYARD_RETURN_IF_ERROR(writer.finish());
  report.output_bytes = writer.bytes_written();

  // Summary: tensors and bytes per output format, then every fallback taken.
  struct Count {
    int tensors = 0;
    std::uint64_t bytes = 0;
  };
  std::map<std::string, Count> per_type;
  std::map<std::string, int> fallbacks;  // "q4_K -> q5_0"
  std::map<std::string, std::set<std::int64_t>> fallback_rows;
  for (const auto& p : report.plan) {
    TensorDesc out = p.source;
    out.dtype = p.chosen;
    auto& c = per_type[std::string(dtype_name(p.chosen))];
    ++c.tensors;
    c.bytes += out.bytes();
    if (p.wanted != p.chosen) {
      const std::string key = std::string(dtype_name(p.wanted)) + " -> " + std::string(dtype_name(p.chosen));
      ++fallbacks[key];
      fallback_rows[key].insert(p.source.ne[0]);
    }
  }
  say("tensors by format:");
  for (const auto& [name, c] : per_type)
    say(fmt("  %-5s %4d tensors %9.2f MiB", name.c_str(), c.tensors, static_cast<double>(c.bytes) / (1 << 20)));
  for (const auto& [key, n] : fallbacks) {
    std::string rows;
    for (std::int64_t r : fallback_rows[key])
      rows += (rows.empty() ? "" : ", ") + std::to_string(r);
    say(fmt("  fallback %s for %d tensors: rows of %s elements are not a multiple of the block", key.c_str(), n,
            rows.c_str()));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  say(fmt("wrote %s: %.2f MiB (input %.2f MiB) in %.1f s", output_path.c_str(),
          static_cast<double>(report.output_bytes) / (1 << 20), static_cast<double>(report.input_bytes) / (1 << 20),
          seconds));
  return report;
}

}  // namespace halyard::runtime
