#!/usr/bin/env bash
# Fuzzes the YAML loaders with libFuzzer: fuzz_config (run config),
# fuzz_spec (conformance spec), fuzz_rules (backend YAML -> rule validation).
#   scripts/fuzz.sh [SECONDS] [TARGET...]      default: 60 s each, all three
# Builds the targets (clang, ASan + UBSan, in build-asan; see
# scripts/sanitizer_build.sh), runs each for SECONDS from its seed corpus
# fuzz/corpus/<target>/ (new inputs go to <build>/fuzz/corpus/<target>, the
# seeds stay untouched), prints executions per target, and exits 1 when a
# target found something (the input is saved under <build>/fuzz/artifacts/;
# reproduce with `<build>/bin/<target> FILE`).
set -euo pipefail
source "$(dirname "$0")/sanitizer_build.sh"
cd "$QSDK_ROOT"

SECONDS_PER_TARGET="${1:-60}"
shift || true
TARGETS=("$@")
if ((${#TARGETS[@]} == 0)); then TARGETS=(fuzz_config fuzz_spec fuzz_rules); fi

san_require_clang
san_configure
cmake --build "$SAN_BUILD_DIR" -j"$(nproc)" --target "${TARGETS[@]}"

work="$SAN_BUILD_DIR/fuzz"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export TMPDIR="$tmp"  # the targets' scratch directories
status=0
summary=()
for t in "${TARGETS[@]}"; do
  mkdir -p "$work/corpus/$t" "$work/artifacts"
  log="$work/$t.log"
  echo "fuzz.sh: $t for ${SECONDS_PER_TARGET} s (log: $log)"
  set +e
  # -timeout: one input taking longer is a hang finding; -rss_limit_mb: LibTorch
  # plus ASan shadow memory need more than libFuzzer's default 2 GB.
  timeout --kill-after=30 $((SECONDS_PER_TARGET + 120)) \
    "$SAN_BUILD_DIR/bin/$t" "$work/corpus/$t" "fuzz/corpus/$t" \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=4096 -max_len=16384 \
    -dict=fuzz/yaml.dict -print_final_stats=1 -artifact_prefix="$work/artifacts/$t-" >"$log" 2>&1
  rc=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  if [ "$rc" -ne 0 ]; then
    status=1
    summary+=("$t: FINDING (exit $rc) after ${runs:-?} executions; see $log and $work/artifacts/")
    grep -E "ERROR|SUMMARY|runtime error|uncaught|deadly|Test unit written" "$log" | head -20 || true
  else
    summary+=("$t: ${runs:-?} executions in ${secs:-$SECONDS_PER_TARGET} s, no findings")
  fi
done
printf 'fuzz.sh: %s\n' "${summary[@]}"
exit $status
