// Where the library's log messages go: one process-wide spdlog logger that writes to stderr
// (never stdout: stdout belongs to the embedding program) or to a callback the caller set, at
// warnings and above unless the caller raised the level.
// Thread safety: every function may be called from any thread.
#pragma once

namespace halyard::runtime {

using LogCallback = void (*)(int level, const char* message, void* user_data);

// Installs the library's logger as spdlog's default, once; later calls do nothing. Every C API
// entry point that may log calls it first.
void init_logging();
// 0 errors, 1 warnings (default), 2 info, 3 debug; clamped.
void set_log_level(int level);
// nullptr restores stderr.
void set_log_callback(LogCallback callback, void* user_data);

}  // namespace halyard::runtime
