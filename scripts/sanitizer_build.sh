# Sourced by scripts/sanitize.sh and scripts/fuzz.sh: one clang build with
# ASan + UBSan (+ LeakSanitizer) serves both, in $QSDK_SANITIZE_BUILD_DIR
# (default build-asan), because compiling qsdk_host against LibTorch is the
# expensive part and the fuzz targets link it too.
QSDK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SAN_BUILD_DIR="${QSDK_SANITIZE_BUILD_DIR:-build-asan}"
SAN_SUPPRESSIONS="$QSDK_ROOT/scripts/sanitizers"

# clang and its runtimes (ASan, UBSan, libFuzzer) are Debian packages; the
# normal build (scripts/setup.sh) does not need them, so they are checked here.
san_require_clang() {
  local missing=() p
  for p in clang-14 libclang-rt-14-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "$(basename "$0"): installing ${missing[*]} (clang-14 and its sanitizer/libFuzzer runtimes)"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" || {
      echo "$(basename "$0"): error: needs the Debian packages ${missing[*]}" >&2
      exit 2
    }
  fi
}

# Configure (same cache for both scripts, so neither re-configures the other's build).
san_configure() {
  CC=clang-14 CXX=clang++-14 cmake -S "$QSDK_ROOT" -B "$SAN_BUILD_DIR" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" \
    -DQSDK_SANITIZE=ON -DQSDK_FUZZ=ON >/dev/null
}

# Sanitizer runtime options: stop at the first report, with a stack; leak
# checking on; reports inside uninstrumented third-party libraries only are
# suppressed (scripts/sanitizers/*.supp, never qsdk code).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_string_checks=1:check_initialization_order=1:suppressions=$SAN_SUPPRESSIONS/asan.supp}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:suppressions=$SAN_SUPPRESSIONS/ubsan.supp}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$SAN_SUPPRESSIONS/lsan.supp:print_suppressions=1}"
