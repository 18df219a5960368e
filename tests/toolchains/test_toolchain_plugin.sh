#!/usr/bin/env bash
# The C boundary proven with other toolchains, along the vendor's path:
# install qsdk to a temporary prefix, build the my-npu template with g++ and
# libstdc++ (the twin), build VARIANT, and check that the variant
#   - exports only qsdk_plugin_entry (nm -D --defined-only),
#   - links the runtime the variant says (and no libstdc++ where it should not),
#   - loads, with the twin's rule hash,
#   - passes the template's conformance specs with the twin's measurements.
# VARIANT: c (examples/c-plugin, no C++ at all), c-abi-2.0 (the same, built
# against ABI revision 2.0's smaller structs), clang-libc++, static-libstdc++.
# Usage: test_toolchain_plugin.sh VARIANT BUILD_DIR SOURCE_DIR
set -euo pipefail
variant=$1
build_dir=$2
source_dir=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/qsdk-toolchain-$variant.XXXXXX")
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL ($variant): $*" >&2; exit 1; }

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
qsdk="$work/prefix/bin/qsdk"
configure_and_build() {  # SOURCE BUILD [cmake args...]
  local src=$1 dst=$2
  shift 2
  cmake -S "$src" -B "$dst" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release "$@" >"$dst.log" 2>&1 ||
    { cat "$dst.log"; fail "configuring $src failed"; }
  cmake --build "$dst" >>"$dst.log" 2>&1 || { cat "$dst.log"; fail "building $src failed"; }
}

configure_and_build "$source_dir/examples/vendor-plugin" "$work/twin"
twin_lib="$work/twin/libmy_npu.so"
case "$variant" in
  c) configure_and_build "$source_dir/examples/c-plugin" "$work/variant"
     lib="$work/variant/libmy_npu_c.so" ;;
  c-abi-2.0) configure_and_build "$source_dir/examples/c-plugin" "$work/variant" -DMY_NPU_ABI_MINOR=0
     lib="$work/variant/libmy_npu_c.so" ;;
  clang-libc++) configure_and_build "$source_dir/examples/vendor-plugin" "$work/variant" \
       -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_FLAGS=-stdlib=libc++ -DCMAKE_MODULE_LINKER_FLAGS=-stdlib=libc++
     lib="$work/variant/libmy_npu.so" ;;
  static-libstdc++) configure_and_build "$source_dir/examples/vendor-plugin" "$work/variant" \
       "-DCMAKE_MODULE_LINKER_FLAGS=-static-libstdc++ -static-libgcc"
     lib="$work/variant/libmy_npu.so" ;;
  *) fail "unknown variant" ;;
esac

# Only the C entry point leaves the library.
exports=$(nm -D --defined-only "$lib" | awk '{print $3}')
[[ "$exports" == "qsdk_plugin_entry" ]] || fail "exports more than qsdk_plugin_entry: $exports"

needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
case "$variant" in
  c | c-abi-2.0)
    [[ "$needed" != *libstdc++* && "$needed" != *libc++* ]] || fail "a C plugin links a C++ runtime: $needed"
    # No C++ symbol anywhere, defined or undefined.
    if nm "$lib" 2>/dev/null | grep -q ' _Z'; then fail "C++ symbols in a C plugin"; fi ;;
  clang-libc++)
    [[ "$needed" == *libc++.so* && "$needed" != *libstdc++* ]] || fail "not linked with libc++ alone: $needed" ;;
  static-libstdc++)
    [[ "$needed" != *libstdc++* ]] || fail "libstdc++ is linked dynamically: $needed" ;;
esac

hash_of() {  # PLUGIN_DIR -> my-npu's rule hash, from plugins list
  "$qsdk" --plugin-dir "$1" plugins list | awk '$1 == "my-npu" {print $(NF - 1)}'
}
twin_hash=$(hash_of "$work/twin")
variant_hash=$(hash_of "$(dirname "$lib")")
[[ -n "$twin_hash" ]] || fail "the twin did not load"
if [[ "$variant" == c-abi-2.0 ]]; then
  # ABI 2.0 cannot declare arithmetic (2.2): the hash covers it, so compare
  # the descriptions without it (and without 2.1's homepage and the engine).
  describe_rules() {
    "$qsdk" --plugin-dir "$1" plugins describe my-npu | grep -v -e '^arithmetic:' -e '^homepage:' -e '^engine:'
  }
  diff <(describe_rules "$work/twin") <(describe_rules "$(dirname "$lib")") ||
    fail "the rules differ from the twin's"
else
  [[ "$variant_hash" == "$twin_hash" ]] || fail "rule hash $variant_hash differs from the twin's $twin_hash"
fi

# The ABI revision each build reports, and the field 2.1 added.
abi=$("$qsdk" --plugin-dir "$(dirname "$lib")" plugins list | awk '$1 == "my-npu" {print $(NF - 2)}')
describe=$("$qsdk" --plugin-dir "$(dirname "$lib")" plugins describe my-npu)
case "$variant" in
  c-abi-2.0)
    [[ "$abi" == "2.0" ]] || fail "reports ABI $abi, expected 2.0"
    [[ "$describe" != *homepage:* ]] || fail "a 2.0 plugin has no homepage field, yet one was read" ;;
  c)
    [[ "$abi" == 2.* && "$abi" != "2.0" ]] || fail "reports ABI $abi"
    grep -q "^homepage: https://example.com/my-npu$" <<<"$describe" || fail "homepage (ABI 2.1) not read" ;;
esac

# A C build has no engine (the template's is C++): both run the specs with
# their engine checks taken out, so what is compared is what both can do.
specs="$source_dir/examples/vendor-plugin/specs"
case "$variant" in
  c | c-abi-2.0)
    mkdir "$work/specs"
    for f in "$specs"/*.yaml; do grep -v '^  engine:' "$f" >"$work/specs/$(basename "$f")"; done
    specs="$work/specs" ;;
esac
cases=$(ls "$specs"/*.yaml | wc -l)
for who in twin variant; do
  dir="$work/twin"
  [[ $who == variant ]] && dir=$(dirname "$lib")
  "$qsdk" --plugin-dir "$dir" conformance "$specs" --backend my-npu \
    --output "$work/report-$who" >"$work/conformance-$who.log" 2>&1 ||
    { cat "$work/conformance-$who.log"; fail "conformance did not pass for the $who"; }
done
grep -q "$cases cases: $cases passed" "$work/conformance-variant.log" ||
  { cat "$work/conformance-variant.log"; fail "not $cases passes"; }

# Same checks found, same measurements (all but times and file paths).
# An ABI 2.0 build cannot declare the arithmetic the rule hash covers: its hash is not compared.
/usr/bin/python3 - "$work/report-twin/results.json" "$work/report-variant/results.json" "$variant" <<'PY' || fail "results differ from the twin's"
import json, sys

ignored = {"seconds", "stages", "plugin_file", "graph_svg"} | ({"rule_hash"} if sys.argv[3] == "c-abi-2.0" else set())

def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k not in ignored}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v

def cases(path):
    return sorted((c["spec"], c["status"], [(k["check"], k["found"]) for k in c["checks"]],
                   json.dumps(strip(c["measurement"]["measurements"]), sort_keys=True))
                  for c in json.load(open(path))["cases"])

twin, variant = cases(sys.argv[1]), cases(sys.argv[2])
if twin != variant:
    for a, b in zip(twin, variant):
        if a != b:
            print("twin:   ", a[:3], "\nvariant:", b[:3], file=sys.stderr)
    sys.exit(1)
PY
echo "toolchain test ($variant): passed"
