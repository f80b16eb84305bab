// Moments as text: local time for people at a terminal, UTC ISO 8601 for files and JSON.
#pragma once

#include <string>

#include "util/time.h"

namespace rollout {

std::string local_time(WallTime t);  // 2026-11-25 18:30:12, the machine's time zone
std::string iso_time(WallTime t);    // 2026-11-25T18:30:12Z

}  // namespace rollout
