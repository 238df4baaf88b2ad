// The entry point of a backend plugin, defined once for every backend: HALYARD_BACKEND_PLUGIN
// exports the versioned table of plugin_abi.h for a Backend class with a default constructor.
// Use it once per plugin, at global scope. No exception leaves create_backend.
#pragma once

#include <cstdint>
#include <cstdio>
#include <exception>

#include "halyard/hal/device.h"
#include "halyard/hal/plugin_abi.h"

namespace halyard {

template <typename BackendClass>
void* create_plugin_backend(char* error, std::uint32_t error_size) {
  try {
    return static_cast<Backend*>(new BackendClass());
  } catch (const std::exception& e) {
    std::snprintf(error, error_size, "%s", e.what());
    return nullptr;
  }
}

inline void destroy_plugin_backend(void* backend) {
  delete static_cast<Backend*>(backend);
}

}  // namespace halyard

#define HALYARD_BACKEND_PLUGIN(NAME, BACKEND_CLASS)                                                           \
  extern "C" __attribute__((visibility("default"))) const HalyardBackendPlugin* halyard_backend_plugin_v1() { \
    static const HalyardBackendPlugin plugin{sizeof(HalyardBackendPlugin), HALYARD_BACKEND_ABI_VERSION, NAME, \
                                             &::halyard::create_plugin_backend<BACKEND_CLASS>,                \
                                             &::halyard::destroy_plugin_backend};                             \
    return &plugin;                                                                                           \
  }
