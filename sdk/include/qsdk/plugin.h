// The one macro a plugin needs. In exactly one source file of the plugin:
//
//   std::unique_ptr<qsdk::Backend> make_backend(const qsdk::BackendOptions& options);
//   QSDK_PLUGIN(make_backend)
//
// It exports qsdk_abi_version (the SDK's ABI version this plugin was built
// with) and qsdk_create_backend (the factory) through Boost.DLL aliases.
// Build plugins with hidden visibility (qsdk_add_plugin does): only these two
// symbols leave the library.
#pragma once

#include <boost/dll/alias.hpp>
#include <cstdint>
#include <memory>

#include "qsdk/abi.h"
#include "qsdk/backend.h"

namespace qsdk::plugin_detail {
using AbiVersionFn = std::uint32_t();
using FactoryFn = std::unique_ptr<Backend>(const BackendOptions&);
}  // namespace qsdk::plugin_detail

// QSDK_PLUGIN_ABI_VERSION may be predefined to build a deliberately
// mismatched plugin (the host's tests do); vendors never set it.
#ifndef QSDK_PLUGIN_ABI_VERSION
#define QSDK_PLUGIN_ABI_VERSION QSDK_ABI_VERSION
#endif

#define QSDK_PLUGIN(factory)                                                                                          \
  namespace qsdk_plugin_entry {                                                                                       \
  std::uint32_t abi_version() { return QSDK_PLUGIN_ABI_VERSION; }                                                     \
  std::unique_ptr<::qsdk::Backend> create_backend(const ::qsdk::BackendOptions& options) { return factory(options); } \
  }                                                                                                                   \
  BOOST_DLL_ALIAS(qsdk_plugin_entry::abi_version, qsdk_abi_version)                                                   \
  BOOST_DLL_ALIAS(qsdk_plugin_entry::create_backend, qsdk_create_backend)
