// SHA-256 (OpenSSL's libcrypto), for the plan hash stored with each run, saved plans,
// journals and the sampled waves' draw order.
#pragma once

#include <string>
#include <string_view>

namespace rollout {

// Lowercase hex digest.
std::string sha256_hex(std::string_view data);

}  // namespace rollout
