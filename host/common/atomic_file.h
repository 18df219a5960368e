// Writes that never leave a half-written file behind: write to a temporary
// file in the same directory, flush, then rename over the target.
#pragma once

#include <filesystem>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>

namespace qsdk {

// Calls `write` with a stream on a temporary file next to `target`, then
// renames it to `target`. If `write` throws or the stream fails, the
// temporary is removed, `target` is untouched and InputError is thrown.
void write_file_atomically(const std::filesystem::path& target, const std::function<void(std::ostream&)>& write);
void write_file_atomically(const std::filesystem::path& target, std::string_view contents);

// The whole file as bytes; InputError "<path>: cannot open file" otherwise.
std::string read_file(const std::filesystem::path& path);

}  // namespace qsdk
