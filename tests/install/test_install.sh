#!/usr/bin/env bash
# The vendor's path, followed literally (CONTRIBUTING.md, "Your first
# backend"): install qsdk to a temporary prefix, build the out-of-tree
# template plugin against only the installed files, run the conformance
# suite on it to a pass; then build it claiming a wrong ABI version and check
# that the host refuses it with the right message.
# Usage: test_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build_dir=$1
source_dir=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/qsdk-install-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
# The template is copied out of the repository so nothing can reach back into it.
cp -r "$source_dir/examples/vendor-plugin" "$work/vendor-plugin"
[[ -f "$work/prefix/include/qsdk/plugin.h" ]] || fail "SDK headers not installed"
[[ -f "$work/prefix/lib/cmake/qsdk/qsdkConfig.cmake" ]] || fail "CMake package not installed"
[[ -x "$work/prefix/bin/qsdk" ]] || fail "host executable not installed"

cmake -S "$work/vendor-plugin" -B "$work/vendor-build" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/vendor-build" >/dev/null
qsdk="$work/prefix/bin/qsdk"

out=$("$qsdk" --plugin-dir "$work/vendor-build" plugins list) || fail "plugins list failed: $out"
grep -q "^my-npu .*Example Silicon" <<<"$out" || fail "my-npu not listed: $out"
# Bundled plugins come from the install, not from the build tree.
grep -q "$work/prefix/lib/qsdk/plugins/libqsdk_arm.so" <<<"$out" || fail "bundled plugins not found in the prefix: $out"

"$qsdk" --plugin-dir "$work/vendor-build" conformance "$work/vendor-plugin/specs" --backend my-npu \
  --output "$work/report" >"$work/conformance.log" 2>&1 || { cat "$work/conformance.log"; fail "conformance did not pass"; }
grep -q "3 passed" "$work/conformance.log" || { cat "$work/conformance.log"; fail "no passing case"; }
[[ -f "$work/report/junit.xml" && -f "$work/report/report.html" ]] || fail "reports missing"

# The installed specs are usable by name from the installed host.
[[ -f "$work/prefix/share/qsdk/specs/zoo/mnist_cnn_trained.yaml" ]] || fail "specs not installed"

cmake -S "$work/vendor-plugin" -B "$work/wrong-abi" -DCMAKE_PREFIX_PATH="$work/prefix" -DMY_NPU_ABI_VERSION=999 >/dev/null
cmake --build "$work/wrong-abi" >/dev/null
set +e
err=$("$qsdk" --plugin-dir "$work/wrong-abi" plugins list 2>&1 >/dev/null)
code=$?
set -e
[[ $code -eq 2 ]] || fail "wrong-ABI plugin: expected exit 2, got $code"
grep -q "libmy_npu.so: ABI version mismatch: plugin was built for qsdk ABI 999, this host supports 2;" <<<"$err" ||
  fail "wrong message: $err"
echo "install test: passed"
