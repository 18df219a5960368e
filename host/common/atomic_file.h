// Files qsdk writes and reads, done so that a failure cannot damage what is
// already there and a bad input cannot stall the process.
//
// Writes: the contents are rendered in memory, written to a temporary file
// in the target's directory, checked (every byte written, size on disk),
// fsync'ed, renamed over the target, and the directory is fsync'ed. A full
// disk or any other failure removes the temporary and leaves the target
// exactly as it was.
//
// Reads: only regular files (a FIFO, device or directory is refused, naming
// the file, before anything blocks on it), and only up to a size limit for
// files read whole into memory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>

namespace qsdk {

// Calls `write` with a stream, then stores what it wrote at `target` as
// described above. If `write` throws, the stream fails or the disk refuses
// the bytes, `target` is untouched and InputError is thrown.
void write_file_atomically(const std::filesystem::path& target, const std::function<void(std::ostream&)>& write);
void write_file_atomically(const std::filesystem::path& target, std::string_view contents);

// Size limits for inputs read whole. Configs, specs, overrides and rule
// files are hand-written YAML: 16 MiB is far beyond any real one.
// Statistics files hold histograms per tensor: 256 MiB.
inline constexpr std::uintmax_t kMaxTextInputBytes = 16u << 20;
inline constexpr std::uintmax_t kMaxStatsInputBytes = 256u << 20;

// InputError "<path>: <why>" unless `path` names a regular file (after
// following symlinks); `kind` names what was expected ("config file").
void require_regular_file(const std::filesystem::path& path, const std::string& kind);

// The whole file as bytes, after require_regular_file; InputError when it
// is larger than `max_bytes` or cannot be read.
std::string read_file(const std::filesystem::path& path, const std::string& kind = "file",
                      std::uintmax_t max_bytes = kMaxTextInputBytes);

// fsync of a directory, so renames into it survive a power cut. Errors are
// ignored: some filesystems do not support it.
void sync_directory(const std::filesystem::path& dir);

}  // namespace qsdk
