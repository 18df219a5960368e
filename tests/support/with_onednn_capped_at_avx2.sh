#!/usr/bin/env bash
# Runs a command with onednn capped at AVX2 (ONEDNN_MAX_CPU_ISA), so that a
# machine with AVX512-VNNI or AMX also proves the path of CPUs without VNNI.
# On a CPU without either, every other test already takes that path: this
# one exits 77, which CTest reports as skipped, and says why.
set -euo pipefail
if ! grep -qw -e avx512_vnni -e amx_int8 /proc/cpuinfo; then
  echo "skipped: this CPU has no AVX512-VNNI or AMX, so the uncapped tests already ran onednn's AVX2 int8 path"
  exit 77
fi
export ONEDNN_MAX_CPU_ISA=AVX2
exec "$@"
