/* The backend plugin ABI. Each backend is a shared library libhalyard-backend-<name>.so that
 * exports one C symbol, HALYARD_BACKEND_ENTRY_SYMBOL, returning a pointer to a static,
 * versioned table. The registry checks struct_size and abi_version before touching anything
 * else in the table.
 *
 * The table hands out a halyard::Backend (a C++ interface from device.h); plugins and the
 * runtime are therefore built by the same compiler against the same HAL headers, which the
 * abi_version pins. No C++ exception may escape create_backend.
 * Append-only: new fields go at the end and bump struct_size, never reorder. */
#pragma once

#include <stdint.h>

/* 2: Backend::options(), DeviceOptions::backend_options (backend_options.h).
 * 3: OpKind::kGeglu; OpParams norm_group, sliding_window, scale; ROPE's optional third input.
 * 4: Device::wrap_host (a new virtual: the Device vtable changed). */
#define HALYARD_BACKEND_ABI_VERSION 4u
#define HALYARD_BACKEND_ENTRY_SYMBOL "halyard_backend_plugin_v1"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct HalyardBackendPlugin {
  uint32_t struct_size; /* sizeof(HalyardBackendPlugin) as the plugin saw it */
  uint32_t abi_version; /* HALYARD_BACKEND_ABI_VERSION the plugin was built with */
  const char* name;     /* backend name, the scheme of its device URIs: "ref", "cpu", ... */
  /* Creates the backend object (a halyard::Backend*), owned by the caller until passed to
   * destroy_backend. Returns NULL and writes a message to error (capacity error_size) on failure. */
  void* (*create_backend)(char* error, uint32_t error_size);
  void (*destroy_backend)(void* backend);
} HalyardBackendPlugin;

typedef const HalyardBackendPlugin* (*HalyardBackendEntryFn)(void);

#ifdef __cplusplus
}
#endif
