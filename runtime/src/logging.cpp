#include "logging.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

namespace halyard::runtime {
namespace {

int level_number(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return 3;
    case spdlog::level::info:
      return 2;
    case spdlog::level::warn:
      return 1;
    default:
      return 0;
  }
}

// stderr, or the caller's callback. The callback and its user data are swapped under the sink's
// own mutex, which spdlog also holds while a message is written.
class LibrarySink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  void set_callback(LogCallback callback, void* user_data) {
    std::lock_guard lock(mutex_);
    callback_ = callback;
    user_data_ = user_data;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (callback_) {
      const std::string text(msg.payload.data(), msg.payload.size());
      callback_(level_number(msg.level), text.c_str(), user_data_);
      return;
    }
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }

 private:
  LogCallback callback_ = nullptr;
  void* user_data_ = nullptr;
};

std::shared_ptr<LibrarySink>& sink() {
  static std::shared_ptr<LibrarySink> instance = std::make_shared<LibrarySink>();
  return instance;
}

}  // namespace

void init_logging() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto logger = std::make_shared<spdlog::logger>("halyard", sink());
    logger->set_pattern("halyard: %l: %v");
    logger->set_level(spdlog::level::warn);
    spdlog::set_default_logger(std::move(logger));
  });
}

void set_log_level(int level) {
  init_logging();
  static constexpr spdlog::level::level_enum kLevels[] = {spdlog::level::err, spdlog::level::warn, spdlog::level::info,
                                                          spdlog::level::debug};
  spdlog::default_logger()->set_level(kLevels[std::clamp(level, 0, 3)]);
}

void set_log_callback(LogCallback callback, void* user_data) {
  init_logging();
  sink()->set_callback(callback, user_data);
}

}  // namespace halyard::runtime
