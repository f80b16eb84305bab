// Points and spans of time as the records, the plan and the gate keep them. Pure: no clock.
#pragma once

#include <chrono>

namespace rollout {

using WallTime = std::chrono::system_clock::time_point;
using Millis = std::chrono::milliseconds;

}  // namespace rollout
