// SHA-256 (FIPS 180-4), for the plan hash stored with each run.
#pragma once

#include <string>
#include <string_view>

namespace rollout {

// Lowercase hex digest.
std::string sha256_hex(std::string_view data);

}  // namespace rollout
