// A rollout before the rollout: the whole plan run by the real engine against a simulated
// fleet (sim::VirtualApi) on a virtual clock, with the state in memory. No real waiting:
// hour-long bakes pass in the time it takes to compute them. Repeated with other seeds,
// it shows the spread of what the fleet's failure rates make likely.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "dag/graph.h"
#include "engine/engine.h"
#include "plan/model.h"
#include "sim/fleet.h"
#include "state/status.h"
#include "util/time.h"

namespace rollout::rehearsal {

struct StageResult {
  std::string name;
  state::StageStatus status = state::StageStatus::waiting;  // at the end
  std::string reason;
  std::optional<Millis> started, dispatched, finished;  // since the run's start
  std::int64_t devices = 0;
  int deploy_calls = 0;  // deploy_update (dispatch and rollback)
};

struct Result {
  std::uint64_t seed = 0;
  engine::Ending ending = engine::Ending::failed;
  std::string reason;
  Millis duration{0};  // virtual time from start to end
  std::vector<StageResult> stages;
  int deploy_calls = 0, details_calls = 0, state_calls = 0;
};

struct Options {
  Millis approval_delay{0};  // a person approves this long after being asked
  WallTime start{};          // virtual start time
};

// One rehearsal with the fleet's seed replaced by `seed`.
Result rehearse(const plan::Plan& plan, const dag::Graph& graph, sim::FleetSpec fleet,
                std::uint64_t seed, const Options& options);

}  // namespace rollout::rehearsal
