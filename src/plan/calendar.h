// When a stage may dispatch: inside one of its maintenance windows (any time, when it has
// none) and outside every freeze. Pure: time zones come from util/tz.
#pragma once

#include <optional>
#include <string>

#include "plan/model.h"
#include "util/time.h"

namespace rollout::plan {

// "mon,tue,wed 02:00-05:00 Europe/Berlin" ("every day" when it names no days).
std::string describe(const Window& w);

// Whether the stage may dispatch at `t`.
bool may_dispatch(const Stage& stage, WallTime t);

// The first moment at or after `t` when it may; nullopt when none comes within a year
// (freezes that cover every window).
std::optional<WallTime> next_dispatch_time(const Stage& stage, WallTime t);

// Why the stage waits at `t`, for a person: "freeze 2026-12-20 .. 2027-01-03 Europe/Berlin
// (holidays) until ..." or "outside its windows until ...". Empty when it may dispatch.
std::string why_waiting(const Stage& stage, WallTime t);

}  // namespace rollout::plan
