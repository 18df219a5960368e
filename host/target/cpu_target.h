// What this machine's CPU can do for int8, detected once per process.
//
// Two layers, because they can disagree: the CPU's own feature bits
// (cpuinfo, and cpuid where this cpuinfo release has no query), and the
// instruction set onednn's kernels will actually use, which honours
// ONEDNN_MAX_CPU_ISA (so a VNNI machine capped at AVX2 reports avx2 here and
// is quantized as an AVX2 machine would be).
#pragma once

#include <string>
#include <vector>

namespace qsdk {

// The int8 arithmetic families that change what a backend may assume.
//   avx2: u8 x s8 pairs summed in saturating 16-bit lanes (vpmaddubsw):
//         exact only while a pair's sum stays within int16: one side at
//         7 bits (2 x 255 x 63 fits). Also every pre-AVX2 x86 CPU.
//   vnni: u8 x s8 products summed straight into int32 (vpdpbusd): exact
//         for full 8-bit ranges on both sides.
//   amx:  tile matrix multiply into int32: exact like vnni.
enum class Int8Isa { Avx2, Vnni, Amx };
const char* to_string(Int8Isa);

struct CpuTarget {
  // The CPU's feature bits.
  bool avx2 = false;
  bool avx512_vnni = false;
  bool avx_vnni = false;  // the VEX-encoded VNNI of CPUs without AVX-512
  bool amx_int8 = false;
  // onednn's effective instruction set, e.g. "avx2", "avx512_core_vnni".
  std::string onednn_isa;
  // ONEDNN_MAX_CPU_ISA as set in the environment, "" when unset.
  std::string onednn_cap;
  // The family onednn's int8 convolution and matmul kernels run in here.
  Int8Isa int8_isa = Int8Isa::Avx2;

  // The feature names that are present, e.g. {"avx2", "avx512_vnni"}.
  std::vector<std::string> feature_names() const;
};

// Detected on first call, then cached.
const CpuTarget& cpu_target();

// The names a backend may list in the `allowed` values of its target option
// (an option named "isa" that allows "auto"), best first for this target:
// on a VNNI machine {"vnni", "avx2"}, on an AVX2 one {"avx2"}.
std::vector<std::string> usable_isa_names(const CpuTarget&);

}  // namespace qsdk
