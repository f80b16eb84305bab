// Shared formatting for runs, show and status: times, durations, a run's summary.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "plan/model.h"
#include "state/records.h"
#include "state/store.h"
#include "util/time_text.h"
#include "view/progress.h"

namespace rollout::cli {

std::string span(WallTime from, WallTime to);                            // 1h02m
nlohmann::ordered_json optional_time(const std::optional<WallTime>& t);  // iso_time or null

// How many recent events a progress view keeps.
inline constexpr std::size_t kRecentEventLines = 5;

// How many devices each stage's snapshot holds (stages without one are left out).
std::map<std::string, std::int64_t> snapshot_sizes(state::StateStore& store,
                                                   const std::string& run_id,
                                                   const std::vector<state::StageRecord>& stages);

// Everything the state database holds about one run, read once.
state::RunHistory load_history(state::StateStore& store, const std::string& run_id);

// A run's progress from its history; read_progress reads only what that needs.
view::RunProgress progress_of(const state::RunRecord& run, const state::RunHistory& history);
view::RunProgress read_progress(state::StateStore& store, const state::RunRecord& run);

struct StageTally {
  int done = 0;
  int total = 0;
};
StageTally tally(const std::vector<state::StageRecord>& stages);

// The stage's devices that did not succeed, by status, as its gate last saw them:
// "failed: d-1 (name-1), d-2 (name-2); missing: d-3 (name-3) and 4 more"; empty when none.
std::string not_succeeded(const std::vector<state::DeviceState>& devices, const std::string& stage,
                          std::size_t shown_per_status = 3);

// One gate observation: its time, stage, seconds since dispatch, counts, verdict and reason
// (`show`'s gate decisions and the event stream's `gate` lines).
nlohmann::ordered_json observation_json(const state::Observation& o);

// A device's status as a person reads it: "lost" for a lost device (its update under way, the
// device dark past lost_after), else its update's status as the gate last saw it, "unread"
// when no gate read it yet.
std::string shown_device_status(const state::DeviceState& d);

nlohmann::ordered_json to_json(const state::RunRecord& run,
                               const std::vector<state::StageRecord>& stages);

}  // namespace rollout::cli
