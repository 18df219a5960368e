// The host's side of the C plugin boundary (qsdk/abi.h): a plugin's C
// tables read into the host's Backend, defensively (every size, count,
// string and enum value checked), and code constraints wrapped so they run
// through the C match view. Nothing here throws across the boundary or
// frees what the plugin made except through the plugin's own functions.
#pragma once

#include <memory>
#include <string>

#include "qsdk/abi.h"
#include "qsdk/backend.h"

namespace qsdk {

// Calls the plugin's create_backend with `options` and reads the result. On
// failure returns nullptr with `cause` set ("the factory failed: <the
// plugin's message>", "rule 3: struct_size 0 ..."). `keep_alive` (the
// library handle) is held by every code constraint of the result, so the
// plugin's code stays mapped while they can run; the plugin's tables are
// released before returning unless a code constraint needs them.
std::unique_ptr<Backend> import_backend(const qsdk_plugin_api& api, const BackendOptions& options,
                                        std::shared_ptr<const void> keep_alive, std::string& cause);

// "2.1": the ABI revision a plugin reports.
std::string abi_revision_text(const qsdk_plugin_api& api);

}  // namespace qsdk
