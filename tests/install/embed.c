/* A program that embeds Halyard through its public C API alone: it prints the library's
   version, lists the devices and fails unless `ref` or `cpu` is available, that is, unless
   libhalyard.so found its backend plugins by itself (no HALYARD_PLUGIN_PATH). Built in the
   build tree (embed_build_tree_finds_plugins) and against a moved install (install_tree_works). */
#include <halyard.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  printf("halyard %s\n", halyard_version());
  halyard_device_list* list = NULL;
  const halyard_status status = halyard_list_devices(&list);
  if (status != HALYARD_OK) {
    fprintf(stderr, "embed: listing devices failed: %s: %s\n", halyard_status_name(status), halyard_last_error());
    return 1;
  }
  int cpu_device = 0;
  for (size_t i = 0; i < halyard_device_list_size(list); ++i) {
    const char* uri = halyard_device_list_uri(list, i);
    const int available = halyard_device_list_available(list, i);
    printf("%s %s %s\n", halyard_device_list_backend(list, i), *uri ? uri : "-",
           available ? "available" : "unavailable");
    if (available && (strcmp(uri, "ref") == 0 || strcmp(uri, "cpu") == 0))
      cpu_device = 1;
  }
  halyard_device_list_free(list);
  if (!cpu_device) {
    fprintf(stderr, "embed: neither the ref nor the cpu device is available\n");
    return 1;
  }
  return 0;
}
