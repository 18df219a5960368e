// qsdk's version: the one constant for the tool (`qsdk --version`, every
// manifest), the SDK's CMake package (the top-level CMakeLists.txt reads it
// from here) and the bundled plugins. Bump it here only.
#pragma once

#define QSDK_VERSION "0.2.0"

namespace qsdk {

inline constexpr const char* kVersion = QSDK_VERSION;

}  // namespace qsdk
