// The binary contract between the qsdk host and a backend plugin.
//
// A plugin exports exactly two symbols (use QSDK_PLUGIN from plugin.h; never
// write them by hand):
//   qsdk_abi_version   -> std::uint32_t()                     (stable forever)
//   qsdk_create_backend -> std::unique_ptr<qsdk::Backend>(const BackendOptions&)
//
// The host reads qsdk_abi_version first and refuses the library, without
// calling anything else in it, unless the version lies in
// [kMinSupportedAbiVersion, kAbiVersion]. The library's own constructors
// (static initializers) still run, at dlopen, before any check: the qsdk CLI
// therefore loads each new library in a probe child process first, where a
// constructor that crashes or hangs costs only that library. Keep them
// trivial. Any change to the layout of the
// types in backend.h, rule.h or spec.h, or to the factory's signature, bumps
// kAbiVersion (see CONTRIBUTING.md, "ABI versioning").
#pragma once

#include <cstdint>

#define QSDK_ABI_VERSION 1u

namespace qsdk {

inline constexpr std::uint32_t kAbiVersion = QSDK_ABI_VERSION;
inline constexpr std::uint32_t kMinSupportedAbiVersion = 1;

inline constexpr const char* kAbiVersionSymbol = "qsdk_abi_version";
inline constexpr const char* kFactorySymbol = "qsdk_create_backend";

}  // namespace qsdk
