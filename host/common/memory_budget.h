// A memory budget: what one model, example input or calibration batch may
// need before qsdk refuses it with an error that says how much and why,
// instead of dying in the allocator (or taking the machine with it). The
// default is half of this machine's physical memory; QSDK_MEMORY_BUDGET_MB
// sets it (`qsdk --memory-budget MB` sets that variable, so child processes
// get the same budget).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace qsdk {

std::uintmax_t memory_budget_bytes();

// numel(shape) * element_size; InputError naming `what` when it overflows.
std::uintmax_t tensor_bytes(const std::vector<std::int64_t>& shape, std::size_t element_size, const std::string& what);

// InputError "<what>: needs 12.3 GiB, more than the memory budget of 11.7
// GiB; <advice>, or raise the budget (--memory-budget MB)" when over it.
void require_within_memory_budget(std::uintmax_t bytes, const std::string& what, const std::string& advice);

std::string bytes_text(std::uintmax_t bytes);  // "1.5 GiB", "300 MiB", "12 KiB"

}  // namespace qsdk
