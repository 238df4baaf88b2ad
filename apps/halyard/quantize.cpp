#include "quantize.h"

#include <cstdio>

#include "halyard.h"

int run_quantize(const QuantizeArgs& args) {
  halyard_quantize_options o;
  halyard_quantize_options_default(&o);
  o.pure = args.pure ? 1 : 0;
  o.threads = args.threads;
  o.on_message = [](const char* line, void*) { std::printf("%s\n", line); };
  const halyard_status s = halyard_quantize(args.input.c_str(), args.output.c_str(), args.type.c_str(), &o);
  std::fflush(stdout);
  if (s != HALYARD_OK) {
    std::fprintf(stderr, "halyard: quantize failed: %s: %s\n", halyard_status_name(s), halyard_last_error());
    return 1;
  }
  return 0;
}
