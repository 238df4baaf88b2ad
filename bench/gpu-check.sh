#!/usr/bin/env bash
# GPU check: build Halyard on a machine with an NVIDIA GPU that has no package access (the
# device tool's H200), run the op conformance suite and the benchmarks on cuda:0 and vulkan:0,
# and write the results under $OUT (at most 8 files come back: the log, conform.json and two
# bench files per device).
#
#   bash bench/gpu-check.sh prepare   # here, with network: fills .gpu-check/ (git-ignored, < 64 MiB)
#   bash bench/gpu-check.sh run       # there, from the repository root, with carry [".gpu-check"]
#
# `prepare` downloads the build dependencies as Debian packages (unpacked there with dpkg -x into
# .gpu-check/root, never into /), the `gguf` wheel for the benchmark-model script, and writes a
# tokenizer-only copy of the default model (the 1B-shaped benchmark model takes its vocabulary).
# The default model itself (98 MB) is too large to carry, so the model-level conformance does not
# run there; the op-level suite (every weight dtype, the K-quants included) and the device
# contract tests do. Two benchmark models are written there from the tokenizer-only copy: the
# 1B shape in Q8_0 and in the Q4_K_M mix of Q4_K and Q6_K blocks.
#
# GPU_CHECK_BENCH_DEVICES (default "cuda:0 vulkan:0") lists the devices benchmarked.
#
# Status: dry-run on a machine without a GPU (cuda:0 unavailable, vulkan:0 on lavapipe, bench on
# cuda:0 only); it has not run on a GPU yet.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.gpu-check

prepare() {
  mkdir -p "$dir/debs" "$dir/wheels"
  local pkgs=(libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 libcli11-dev nlohmann-json3-dev libicu-dev libicu72
    icu-devtools libgtest-dev libgmock-dev libvulkan-dev libvulkan1 glslc libshaderc1 vulkan-validationlayers)
  (cd "$dir/debs" && apt-get download "${pkgs[@]}")
  python3 -m pip download --no-deps --only-binary :all: -d "$dir/wheels" gguf==0.19.0
  local model
  model=$(bash scripts/fetch-model.sh)
  python3 - "$model" "$dir/vocab.gguf" <<'PY'
import sys, gguf
reader = gguf.GGUFReader(sys.argv[1])
arch = reader.fields["general.architecture"].contents()
w = gguf.GGUFWriter(sys.argv[2], arch)
for f in reader.fields.values():
    if f.name.startswith("tokenizer.") or f.name.startswith("general.name"):
        vt = f.types[0]
        if vt == gguf.GGUFValueType.ARRAY:
            w.add_array(f.name, f.contents())
        else:
            w.add_key_value(f.name, f.contents(), vt)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
PY
  du -sh "$dir"
}

run() {
  local out=${OUT:?set OUT to the folder that comes back}
  local root=$PWD/$dir/root log=$out/gpu-check.log
  mkdir -p "$root"
  for f in "$dir"/debs/*.deb; do dpkg -x "$f" "$root"; done
  local lib=$root/usr/lib/x86_64-linux-gnu
  export PATH=$root/usr/bin:$PATH LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export VK_LAYER_PATH=$root/usr/share/vulkan/explicit_layer.d
  if [[ -z "${VK_DRIVER_FILES:-}" && -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  fi
  {
    echo "== machine"; nvidia-smi || true; nproc; date -u
    echo "== configure"
    # Debian's multiarch paths are named explicitly: the GPU host need not be Debian.
    cmake -S . -B build/gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DHALYARD_WITH_CUDA=ON -DHALYARD_CUDA_ARCHS=90 \
      -DHALYARD_WITH_HIP=OFF -DCMAKE_PREFIX_PATH="$root/usr;$lib;$root/usr/share" -DCMAKE_LIBRARY_PATH="$lib" \
      -DCMAKE_INCLUDE_PATH="$root/usr/include" -DICU_ROOT="$root/usr" \
      -DVulkan_INCLUDE_DIR="$root/usr/include" -DVulkan_LIBRARY="$lib/libvulkan.so" \
      -DVulkan_GLSLC_EXECUTABLE="$root/usr/bin/glslc"
    echo "== build"
    cmake --build build/gpu -j "$(nproc)" --target halyard-cli conformance_tests gpu_device_tests \
      halyard-backend-cuda halyard-backend-vulkan halyard-backend-ref
    local bin=build/gpu/bin
    echo "== devices"; "$bin/halyard" devices
    echo "== device contract"; "$bin/gpu_device_tests" || true
    for d in cuda:0 vulkan:0; do
      echo "== op conformance $d"
      HALYARD_VULKAN_VALIDATION=1 "$bin/conformance_tests" --device "$d" --gtest_brief=1 || true
    done
    "$bin/halyard" conform -d cuda:0 -d vulkan:0 --json "$out/conform.json" 2>/dev/null | tail -40 || true
    echo "== copy bandwidth (PyTorch, device to device, 1 GiB)"
    python3 - <<'PY' || true
import time, torch
x = torch.empty(1 << 30, dtype=torch.uint8, device="cuda"); y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
torch.cuda.synchronize(); t = []
for _ in range(20):
    s = time.perf_counter(); y.copy_(x); torch.cuda.synchronize(); t.append(time.perf_counter() - s)
t.sort(); print(f"copy: median {2 * x.numel() / t[len(t) // 2] / 1e9:.0f} GB/s (read + write)")
PY
    echo "== benchmark models"
    python3 -m pip install --no-index --no-deps --target "$dir/py" "$dir"/wheels/*.whl >/dev/null
    local model kmodel
    model=$(PYTHONPATH=$dir/py python3 scripts/make-bench-models.py --only 1b --source "$dir/vocab.gguf" \
      --out-dir /tmp/halyard-models | tail -1)
    # The same shape in the Q4_K_M mix (Q4_K and Q6_K blocks), written here, never committed.
    kmodel=$(PYTHONPATH=$dir/py python3 scripts/make-bench-models.py --only 1b-q4_k_m --source "$dir/vocab.gguf" \
      --out-dir /tmp/halyard-models | tail -1)
    for d in ${GPU_CHECK_BENCH_DEVICES:-cuda:0 vulkan:0}; do
      echo "== bench $d (Q8_0)"
      "$bin/halyard" bench -m "$model" -d "$d" -p 512 -n 128 -r 5 --json "$out/bench-${d%%:*}.json" || true
      echo "== bench $d (Q4_K_M)"
      "$bin/halyard" bench -m "$kmodel" -d "$d" -p 512 -n 128 -r 3 --json "$out/bench-${d%%:*}-q4_k_m.json" || true
    done
  } 2>&1 | tee "$log"
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: bash bench/gpu-check.sh prepare|run" >&2; exit 2 ;;
esac
