# qsdk_add_plugin(<target> SOURCES ... [ABI_VERSION n] [OUTPUT_DIR dir])
#
# Builds a backend plugin: a MODULE library, position independent, with
# hidden visibility (only the two QSDK_PLUGIN entry symbols are exported),
# linked with the SDK, and no undefined symbols left for load time.
# ABI_VERSION overrides the ABI version the plugin reports (for tests of the
# host's refusal; a real plugin never sets it).
function(qsdk_add_plugin target)
  cmake_parse_arguments(ARG "" "ABI_VERSION;OUTPUT_DIR" "SOURCES" ${ARGN})
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE qsdk::sdk)
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    POSITION_INDEPENDENT_CODE ON
    CXX_STANDARD 17
    CXX_STANDARD_REQUIRED ON
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(ARG_ABI_VERSION)
    target_compile_definitions(${target} PRIVATE QSDK_PLUGIN_ABI_VERSION=${ARG_ABI_VERSION}u)
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
