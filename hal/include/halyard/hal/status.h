// Status and Result<T>: how every fallible HAL, backend and runtime call reports failure.
// No exception crosses the plugin ABI or the public C API; these types carry the error instead.
// Thread safety: values; safe to copy and move between threads.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace halyard {

enum class StatusCode : std::uint8_t {
  kOk = 0,
  kInvalidArgument,    // the caller passed something malformed
  kNotFound,           // a file, plugin, device or tensor does not exist
  kUnavailable,        // a backend or device exists but cannot be used here
  kUnimplemented,      // an op or dtype a device does not support
  kOutOfRange,         // a request no state could satisfy: a prompt longer than the whole context
  kResourceExhausted,  // out of host or device memory
  kDataLoss,           // corrupt or truncated file
  kFailedPrecondition,
  kCancelled,
  kInternal,
  kCacheFull,  // the KV cache has no room for these tokens now (a shorter or empty sequence would)
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  bool is_ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "<code name>: <message>", for logs and CLI output.
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status not_found(std::string m) {
  return {StatusCode::kNotFound, std::move(m)};
}
inline Status unavailable(std::string m) {
  return {StatusCode::kUnavailable, std::move(m)};
}
inline Status unimplemented(std::string m) {
  return {StatusCode::kUnimplemented, std::move(m)};
}
inline Status out_of_range(std::string m) {
  return {StatusCode::kOutOfRange, std::move(m)};
}
inline Status resource_exhausted(std::string m) {
  return {StatusCode::kResourceExhausted, std::move(m)};
}
inline Status data_loss(std::string m) {
  return {StatusCode::kDataLoss, std::move(m)};
}
inline Status cache_full(std::string m) {
  return {StatusCode::kCacheFull, std::move(m)};
}
inline Status failed_precondition(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status internal_error(std::string m) {
  return {StatusCode::kInternal, std::move(m)};
}

// Either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : storage_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : storage_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(storage_).is_ok()) {
      storage_ = Status(StatusCode::kInternal, "Result constructed from an ok Status without a value");
    }
  }

  bool is_ok() const { return std::holds_alternative<T>(storage_); }
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(storage_);
  }
  T& value() & { return std::get<T>(storage_); }
  const T& value() const& { return std::get<T>(storage_); }
  T&& value() && { return std::get<T>(std::move(storage_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Status> storage_;
};

}  // namespace halyard

#define HALYARD_CONCAT_INNER(a, b) a##b
#define HALYARD_CONCAT(a, b) HALYARD_CONCAT_INNER(a, b)

#define HALYARD_RETURN_IF_ERROR(expr)           \
  do {                                          \
    ::halyard::Status halyard_status_ = (expr); \
    if (!halyard_status_.is_ok())               \
      return halyard_status_;                   \
  } while (0)

#define HALYARD_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.is_ok())                                   \
    return tmp.status();                              \
  lhs = std::move(tmp).value()

#define HALYARD_ASSIGN_OR_RETURN(lhs, expr) \
  HALYARD_ASSIGN_OR_RETURN_IMPL(HALYARD_CONCAT(halyard_result_, __LINE__), lhs, expr)
