// The options of the cuda and hip backends, one table per backend, shared by gpu_backend.cpp and
// the hip plugin's loader (backends/hip/src/hip_loader.cpp), which lists them without starting
// the HIP runtime. Only keys differ; both backends read the same environment variables.
#pragma once

#include "halyard/hal/backend_options.h"

namespace halyard::gpu_options {

inline constexpr BackendOption kCuda[] = {
    {"cuda.graphs", OptionType::kBool, "1", "HALYARD_GPU_GRAPHS",
     "capture each executable's launches once into a CUDA graph and replay it (0: launch the kernels each run)"},
    {"cuda.fusion", OptionType::kBool, "1", "HALYARD_GPU_FUSION",
     "fuse a residual ADD with the RMS_NORM that reads it into one kernel"},
};

inline constexpr BackendOption kHip[] = {
    {"hip.graphs", OptionType::kBool, "1", "HALYARD_GPU_GRAPHS",
     "capture each executable's launches once into a HIP graph and replay it (0: launch the kernels each run)"},
    {"hip.fusion", OptionType::kBool, "1", "HALYARD_GPU_FUSION",
     "fuse a residual ADD with the RMS_NORM that reads it into one kernel"},
};

}  // namespace halyard::gpu_options
