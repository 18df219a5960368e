#include "target/cpu_target.h"

#include <cpuid.h>
#include <cpuinfo.h>
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

#include <cstdlib>

namespace qsdk {

namespace {

// cpuid leaf 7 bits this cpuinfo release (2022) has no query for.
struct Leaf7 {
  bool avx_vnni = false;  // leaf 7 subleaf 1, EAX bit 4
  bool amx_int8 = false;  // leaf 7 subleaf 0, EDX bit 25
};

Leaf7 read_leaf7() {
  Leaf7 out;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) out.amx_int8 = (d >> 25) & 1u;
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) out.avx_vnni = (a >> 4) & 1u;
  return out;
}

// The int8 family of onednn's effective ISA. AVX-VNNI (avx2_vnni) counts as
// avx2: onednn 2.6 still has pre-VNNI int8 kernels for that ISA and they were
// not measured on such a CPU, while the avx2 choice is exact on every kernel.
Int8Isa int8_family(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_avx512_core_amx: return Int8Isa::Amx;
    case dnnl_cpu_isa_avx512_core_vnni:
    case dnnl_cpu_isa_avx512_core_bf16: return Int8Isa::Vnni;
    default: return Int8Isa::Avx2;
  }
}

CpuTarget detect() {
  CpuTarget t;
  if (cpuinfo_initialize()) {
    t.avx2 = cpuinfo_has_x86_avx2();
    t.avx512_vnni = cpuinfo_has_x86_avx512vnni();
  }
  const Leaf7 leaf7 = read_leaf7();
  t.avx_vnni = leaf7.avx_vnni;
  t.amx_int8 = leaf7.amx_int8;
  if (const char* cap = std::getenv("ONEDNN_MAX_CPU_ISA"))
    t.onednn_cap = cap;
  else if (const char* old_cap = std::getenv("DNNL_MAX_CPU_ISA"))
    t.onednn_cap = old_cap;
  // Asking fixes onednn's ISA for the process, as its first primitive would.
  const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
  t.onednn_isa = dnnl_cpu_isa2str(isa);  // "cpu_isa_avx2": keep "avx2"
  if (t.onednn_isa.rfind("cpu_isa_", 0) == 0) t.onednn_isa.erase(0, 8);
  t.int8_isa = int8_family(isa);
  return t;
}

}  // namespace

const char* to_string(Int8Isa isa) {
  switch (isa) {
    case Int8Isa::Avx2: return "avx2";
    case Int8Isa::Vnni: return "vnni";
    case Int8Isa::Amx: return "amx";
  }
  return "?";
}

std::vector<std::string> CpuTarget::feature_names() const {
  std::vector<std::string> out;
  if (avx2) out.push_back("avx2");
  if (avx512_vnni) out.push_back("avx512_vnni");
  if (avx_vnni) out.push_back("avx_vnni");
  if (amx_int8) out.push_back("amx_int8");
  return out;
}

const CpuTarget& cpu_target() {
  static const CpuTarget target = detect();
  return target;
}

std::vector<std::string> usable_isa_names(const CpuTarget& t) {
  switch (t.int8_isa) {
    case Int8Isa::Amx: return {"amx", "vnni", "avx2"};
    case Int8Isa::Vnni: return {"vnni", "avx2"};
    case Int8Isa::Avx2: break;
  }
  return {"avx2"};
}

}  // namespace qsdk
