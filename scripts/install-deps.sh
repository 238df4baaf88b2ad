#!/usr/bin/env bash
# Installs what building and testing Halyard needs on Debian 12 (run as root or with sudo).
# Idempotent: does nothing when every package is already there.
set -euo pipefail
packages=(
  build-essential cmake ninja-build ccache pkg-config git python3 python3-pip python3-venv python3-jinja2 unzip
  libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev libcpp-httplib-dev libicu-dev zlib1g-dev libgtest-dev libgmock-dev
  libbenchmark-dev libopenblas-dev clang libclang-rt-14-dev
  chromium chromium-driver
  g++-aarch64-linux-gnu
  libvulkan-dev glslc mesa-vulkan-drivers vulkan-validationlayers vulkan-tools
  hipcc libamdhip64-dev rocm-device-libs
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present"
fi
