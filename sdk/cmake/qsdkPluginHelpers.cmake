# qsdk_add_plugin(<target> SOURCES ... [ABI_VERSION n] [ABI_MINOR n] [OUTPUT_DIR dir])
#
# Builds a backend plugin from C or C++ sources: a MODULE library, position
# independent, with hidden visibility, compiled against the header-only SDK
# and linked with a version script that leaves qsdk_plugin_entry as its only
# dynamic symbol; no undefined symbols are left for load time. Any C or C++
# toolchain works: the boundary is C (qsdk/abi.h).
# ABI_VERSION overrides the ABI version the plugin reports (for tests of the
# host's refusal; a real plugin never sets it). ABI_MINOR builds against an
# older minor revision of the ABI's structs (QSDK_ABI_BUILD_MINOR), so the
# plugin also loads in hosts of that revision.
# A cache entry, so that qsdk_add_plugin sees it from any directory.
set(_qsdk_plugin_exports_map ${CMAKE_CURRENT_LIST_DIR}/qsdk_plugin_exports.map CACHE INTERNAL "")
function(qsdk_add_plugin target)
  cmake_parse_arguments(ARG "" "ABI_VERSION;ABI_MINOR;OUTPUT_DIR" "SOURCES" ${ARGN})
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE qsdk::sdk)
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    POSITION_INDEPENDENT_CODE ON
    CXX_STANDARD 17
    CXX_STANDARD_REQUIRED ON
    C_STANDARD 99
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LINK_DEPENDS ${_qsdk_plugin_exports_map})
  target_link_options(${target} PRIVATE -Wl,--version-script=${_qsdk_plugin_exports_map})
  if(ARG_ABI_VERSION)
    target_compile_definitions(${target} PRIVATE QSDK_PLUGIN_ABI_VERSION=${ARG_ABI_VERSION}u)
  endif()
  if(NOT "${ARG_ABI_MINOR}" STREQUAL "")
    target_compile_definitions(${target} PRIVATE QSDK_ABI_BUILD_MINOR=${ARG_ABI_MINOR}u)
  endif()
  if(ARG_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIR})
  endif()
  # A sanitized in-tree build (QSDK_SANITIZE) resolves the sanitizer
  # runtime from the executable at load time.
  if(NOT QSDK_SANITIZE)
    target_link_options(${target} PRIVATE -Wl,--no-undefined)
  endif()
endfunction()
