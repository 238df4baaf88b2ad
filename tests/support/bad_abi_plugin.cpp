// A plugin built with a future ABI version: the registry must refuse it without calling it.
#include "halyard/hal/plugin_abi.h"

namespace {
void* never_called(char*, uint32_t) {
  return nullptr;
}
void never_destroyed(void*) {}
const HalyardBackendPlugin kTable{sizeof(HalyardBackendPlugin), HALYARD_BACKEND_ABI_VERSION + 1, "badabi",
                                  &never_called, &never_destroyed};
}  // namespace

extern "C" __attribute__((visibility("default"))) const HalyardBackendPlugin* halyard_backend_plugin_v1() {
  return &kTable;
}
