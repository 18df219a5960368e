#!/usr/bin/env bash
# The engine under test, end to end, with the my-npu template built in tree
# (tests/CMakeLists.txt):
#   exact         its engine passes `qsdk conformance --verify-engine exact`
#                 on every bundled spec it runs (the others skip, saying why),
#                 and the template's own specs (engine: exact) pass;
#   ties-to-even  an engine that rounds ties the other way fails the
#                 template's specs, naming the op and "1 LSB", and leaves a
#                 replay of that op's inputs that names the same op.
# Usage: test_engine_conformance.sh exact|ties-to-even QSDK PLUGIN_DIR SOURCE_DIR MODELS_DIR
set -euo pipefail
mode=$1 qsdk=$2 plugins=$3 source_dir=$4 models=$5
work=$(mktemp -d "${TMPDIR:-/tmp}/qsdk-engine-$mode.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL ($mode): $*" >&2; exit 1; }

case "$mode" in
  exact)
    "$qsdk" --plugin-dir "$plugins" conformance "$source_dir/specs" --models-dir "$models" --backend my-npu \
      --verify-engine exact -o "$work/all" >"$work/all.log" 2>&1 || { cat "$work/all.log"; fail "a case failed"; }
    cat "$work/all.log"
    /usr/bin/python3 - "$work/all/results.json" <<'PY' || fail "results.json does not show the engine checked"
import json, sys
cases = json.load(open(sys.argv[1]))["cases"]
ran = [c for c in cases if c["status"] == "pass"]
skipped = [c for c in cases if c["status"] == "skip"]
assert all(c["reason"] for c in skipped), "a skip without a reason"
for c in ran:
    checks = {k["check"]: k for k in c["checks"]}
    assert checks["engine.tensors"]["passed"] and checks["engine.output"]["passed"], c["spec"]
    engine = c["measurement"]["measurements"]["engines"][0]
    assert engine["tensors"] and all(t["max_lsb"] == 0 for t in engine["tensors"] if t["returned"]), c["spec"]
# The engine runs conv, linear and add models; at least these bundled specs.
names = {c["spec"] for c in ran}
for want in ("conv_bn_relu", "linear_relu", "conv2d"):
    assert any(want in n for n in names), f"{want} not among the passing cases: {sorted(names)}"
print(f"engine exact on {len(ran)} specs; {len(skipped)} skipped with reasons")
PY
    "$qsdk" --plugin-dir "$plugins" conformance "$source_dir/examples/vendor-plugin/specs" --backend my-npu \
      -o "$work/template" >"$work/template.log" 2>&1 || { cat "$work/template.log"; fail "the template's specs"; }
    ;;
  ties-to-even)
    if "$qsdk" --plugin-dir "$plugins" conformance "$source_dir/examples/vendor-plugin/specs" --backend my-npu \
      -o "$work/template" >"$work/template.log" 2>&1; then
      cat "$work/template.log"
      fail "an engine that rounds ties to even passed"
    fi
    cat "$work/template.log"
    grep -q "engine.tensors" "$work/template.log" || fail "no engine.tensors failure"
    grep -Eq "first divergence: op [^ ]+ \((Conv|Gemm)\), tensor .*, 1 LSB" "$work/template.log" ||
      fail "the failure does not name the op and 1 LSB"
    replay=$(ls "$work/template/replay/"*.json | head -1)
    /usr/bin/python3 - "$replay" "$work/template.log" <<'PY' || fail "the replay file is not what it should be"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["schema"] == "qsdk-engine-replay" and r["max_lsb"] == 1, r["max_lsb"]
assert r["op_type"] in ("Conv", "Gemm") and r["op"] in open(sys.argv[2]).read()
assert r["inputs"] and all(len(i["values"]) > 0 for i in r["inputs"])
assert any(n["op_type"] == r["op_type"] for n in r["nodes"]) and r["initializers"]
assert len(r["reference"]) == len(r["engine"]) and r["first_mismatches"]
m = r["first_mismatches"][0]
assert abs(m["reference"] - m["engine"]) == 1 and r["reference"][m["index"]] == m["reference"]
print("replay:", sys.argv[1], r["op"], r["op_type"], r["mismatched"], "of", r["elements"], "values off by 1 LSB")
PY
    ;;
  *) fail "unknown mode" ;;
esac
echo "engine conformance ($mode): passed"
