// Shared formatting for runs, show and status: times, durations, a run's summary.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "state/records.h"

namespace rollout::cli {

std::string local_time(WallTime t);            // 2026-11-25 18:30:12
std::string iso_time(WallTime t);              // 2026-11-25T18:30:12Z
std::string span(WallTime from, WallTime to);  // 1h02m

struct StageTally {
  int done = 0;
  int total = 0;
};
StageTally tally(const std::vector<state::StageRecord>& stages);

nlohmann::ordered_json to_json(const state::RunRecord& run,
                               const std::vector<state::StageRecord>& stages);

}  // namespace rollout::cli
