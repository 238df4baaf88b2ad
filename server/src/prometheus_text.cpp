#include "prometheus_text.h"

#include <charconv>
#include <cmath>

namespace halyard::server {

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_value(double value) {
  if (std::isnan(value))
    return "NaN";
  if (std::isinf(value))
    return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  if (ec != std::errc())
    return "NaN";  // cannot happen with 64 bytes; a parseable value rather than garbage
  return std::string(buf, end);
}

std::string format_bucket_bound(double bound) {
  if (std::isinf(bound) && bound > 0)
    return "+Inf";
  std::string s = format_value(bound);
  // Python's repr of a whole float keeps ".0"; to_chars drops it.
  if (s.find_first_of(".eEnN") == std::string::npos)
    s += ".0";
  return s;
}

Histogram::Histogram(std::span<const double> upper_bounds)
    : bounds_(upper_bounds.begin(), upper_bounds.end()), per_bucket_(upper_bounds.size() + 1, 0) {}

void Histogram::observe(double value) {
  if (!std::isfinite(value))
    return;
  if (value < 0)
    value = 0;
  // The first bound >= value: `le` is inclusive.
  std::size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i])
    ++i;
  ++per_bucket_[i];
  ++count_;
  sum_ += value;
}

std::uint64_t Histogram::cumulative_count(std::size_t i) const {
  std::uint64_t n = 0;
  for (std::size_t k = 0; k <= i && k < per_bucket_.size(); ++k)
    n += per_bucket_[k];
  return n;
}

void TextWriter::family(std::string_view name, MetricType type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += escape_help(help);
  out_ += "\n# TYPE ";
  out_ += name;
  switch (type) {
    case MetricType::kCounter:
      out_ += " counter\n";
      break;
    case MetricType::kGauge:
      out_ += " gauge\n";
      break;
    case MetricType::kHistogram:
      out_ += " histogram\n";
      break;
  }
}

void TextWriter::series(std::string_view name, std::span<const Label> labels, const Label* extra) {
  out_ += name;
  if (labels.empty() && !extra)
    return;
  out_ += '{';
  bool first = true;
  auto put = [&](const Label& l) {
    if (!first)
      out_ += ',';
    first = false;
    out_ += l.name;
    out_ += "=\"";
    out_ += escape_label_value(l.value);
    out_ += '"';
  };
  for (const Label& l : labels)
    put(l);
  if (extra)
    put(*extra);
  out_ += '}';
}

void TextWriter::sample(std::string_view name, std::span<const Label> labels, double value) {
  series(name, labels, nullptr);
  out_ += ' ';
  out_ += format_value(value);
  out_ += '\n';
}

void TextWriter::sample(std::string_view name, std::span<const Label> labels, std::uint64_t value) {
  series(name, labels, nullptr);
  out_ += ' ';
  out_ += std::to_string(value);
  out_ += '\n';
}

void TextWriter::histogram(std::string_view name, std::span<const Label> labels, const Histogram& histogram) {
  const std::string bucket = std::string(name) + "_bucket";
  std::uint64_t cumulative = 0;
  const auto bounds = histogram.upper_bounds();
  for (std::size_t i = 0; i <= bounds.size(); ++i) {
    cumulative = i < bounds.size() ? histogram.cumulative_count(i) : histogram.count();
    const std::string le = i < bounds.size() ? format_bucket_bound(bounds[i]) : std::string("+Inf");
    const Label le_label{"le", le};
    series(bucket, labels, &le_label);
    out_ += ' ';
    out_ += std::to_string(cumulative);
    out_ += '\n';
  }
  sample(std::string(name) + "_sum", labels, histogram.sum());
  sample(std::string(name) + "_count", labels, histogram.count());
}

}  // namespace halyard::server
