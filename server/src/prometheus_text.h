// The Prometheus text exposition format, version 0.0.4, written by hand (Debian has no
// Prometheus C++ client): escaping, number formatting, a histogram's state and a writer that
// appends metric families to a /metrics body.
// Format: https://prometheus.io/docs/instrumenting/exposition_formats/ ("Text-based format").
// Thread safety: none of these types locks; their owner (ServerMetrics) does.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace halyard::server {

// A label value with the format's three escapes: backslash, double quote and line feed.
std::string escape_label_value(std::string_view value);
// HELP text with its two escapes: backslash and line feed.
std::string escape_help(std::string_view help);
// A sample value: the shortest decimal that reads back as the same double, or NaN, +Inf, -Inf.
std::string format_value(double value);
// A bucket's upper bound as Python's prometheus_client (and so vLLM) writes it: "0.5", "1.0",
// "2560.0", "+Inf". `le` is a label, compared as a string by anything that selects one bucket,
// so the spelling matches vLLM's exactly.
std::string format_bucket_bound(double bound);

struct Label {
  std::string_view name;
  std::string_view value;  // unescaped; the writer escapes it
};

// Observations counted into buckets with inclusive upper bounds (a value equal to a bound falls
// in that bucket, as Prometheus' `le` means), plus the implicit +Inf bucket, a sum and a count.
class Histogram {
 public:
  // upper_bounds: finite and strictly ascending (the callers' lists are constants checked at
  // compile time with bounds_ascending()).
  explicit Histogram(std::span<const double> upper_bounds);

  // NaN and infinities are dropped (one bad timing must not turn the sum into NaN for good);
  // a negative duration (a clock step) counts as 0.
  void observe(double value);

  std::span<const double> upper_bounds() const { return bounds_; }
  // Observations <= upper_bounds()[i].
  std::uint64_t cumulative_count(std::size_t i) const;
  std::uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> per_bucket_;  // not cumulative; the last entry is the +Inf bucket
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

constexpr bool bounds_ascending(std::span<const double> bounds) {
  for (std::size_t i = 1; i < bounds.size(); ++i) {
    if (!(bounds[i] > bounds[i - 1]))
      return false;
  }
  return true;
}

enum class MetricType { kCounter, kGauge, kHistogram };

// Appends families in the order written. Each family is one family() call followed by its
// samples; a counter's family name is its sample name ending in `_total`, as prometheus_client
// and the Go client write it (parsers strip the suffix to get the family name).
class TextWriter {
 public:
  void family(std::string_view name, MetricType type, std::string_view help);
  void sample(std::string_view name, std::span<const Label> labels, double value);
  void sample(std::string_view name, std::span<const Label> labels, std::uint64_t value);
  // Writes name_bucket{labels...,le="..."} for every bound and +Inf (cumulative), then
  // name_sum and name_count.
  void histogram(std::string_view name, std::span<const Label> labels, const Histogram& histogram);

  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void series(std::string_view name, std::span<const Label> labels, const Label* extra);
  std::string out_;
};

}  // namespace halyard::server
