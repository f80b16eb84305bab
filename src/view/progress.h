// What a run looks like right now, in lines of text: the live progress of `rollout apply`
// and `rollout status`. Pure: built from state records and the plan, rendered for a given
// time and terminal width; nothing here reads a clock, a terminal or the database.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "plan/model.h"
#include "state/records.h"

namespace rollout::view {

struct StageProgress {
  state::StageRecord record;
  std::optional<std::int64_t> devices;     // from the stage's snapshot, once taken
  std::optional<state::Observation> last;  // the latest gate observation
};

struct RunProgress {
  std::string run_id;
  state::RunStatus status = state::RunStatus::running;
  std::string reason;
  WallTime started{};
  std::optional<WallTime> finished;
  std::vector<StageProgress> stages;       // in the plan's order
  std::vector<state::Event> recent;        // the latest few events, oldest first
  bool paused = false;                     // a person's pause holds: no new stage starts
  std::vector<state::Approval> approvals;  // the run's (status reads them; a live view not)
};

// Builds the view of a run from what the state database holds.
RunProgress build_progress(const state::RunRecord& run,
                           const std::vector<state::StageRecord>& stages,
                           const std::map<std::string, std::int64_t>& devices,
                           const std::vector<state::Observation>& observations,
                           const std::vector<state::Event>& events, std::size_t recent_events);

// Applies one change the engine reported, so a live display need not re-read the store.
void apply(RunProgress& p, const state::StageRecord& stage);
void apply(RunProgress& p, const state::Observation& o);
void apply(RunProgress& p, const state::Event& e, std::size_t recent_events);
void apply(RunProgress& p, state::RunStatus status, const std::string& reason);
void apply_snapshot(RunProgress& p, const std::string& stage, std::int64_t devices);

// A stage's status as people read it: "skipped" for a stage that passed with nothing left
// to update (its record says passed: for the plan's graph it did).
std::string shown_status(const state::StageRecord& stage);
bool skipped(const state::StageRecord& stage);

// The gate's pass condition for a stage of `targeted` devices, in words:
// "min_success 90% of 20 = 18 devices, max_failed 1 device, bake 10m".
std::string gate_condition(const plan::Gate& gate, std::optional<std::int64_t> targeted);

// What each stage (run.stages order) is waiting for now, empty when it waits for nothing:
// for a stage yet to start, what the engine's start planner says holds it.
std::vector<std::string> waiting_for(const plan::Plan& plan, const RunProgress& run, WallTime now);

struct Style {
  int width = 80;
  bool color = false;
  bool all_stages = false;  // status shows every stage; live progress only the active ones
};

// A bar of `width` cells: success, failed, updating, not yet reported, by share.
std::string status_bar(const state::Observation& o, int width, bool color);

std::vector<std::string> render(const plan::Plan& plan, const RunProgress& run, WallTime now,
                                const Style& style);

}  // namespace rollout::view
