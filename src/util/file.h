// Whole files in and out, for plans, fleets, journals and reports.
#pragma once

#include <optional>
#include <string>

namespace rollout {

// Reads a whole file; nullopt (with `why`) when it cannot.
std::optional<std::string> read_file(const std::string& path, std::string* why);

// Writes beside the target and renames it over: a reader never sees half a file.
bool write_file(const std::string& path, const std::string& text);

}  // namespace rollout
