// A rollout before the rollout: the whole plan run by the real engine against a simulated
// fleet (sim::VirtualApi) on a virtual clock, with the state in memory. No real waiting:
// hour-long bakes pass in the time it takes to compute them. Repeated with other seeds,
// it shows the spread of what the fleet's failure rates make likely.
#pragma once

#include <functional>
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
  // Its own gate (or dispatch) failed it; otherwise a rolled-back stage was rolled back with
  // another's failure (cut off in flight, a step of a failed ramp, a run-scope rollback).
  bool failed_itself = false;
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

// `runs` rehearsals with the seeds first_seed, first_seed + 1, ..., up to `threads` of them at
// once (each has its own fleet, clock and state; the plan and graph are only read). `each`
// hears of every result in seed order, as soon as it and those before it are done. An
// exception of any rehearsal is thrown here once the others have ended.
std::vector<Result> rehearse_many(const plan::Plan& plan, const dag::Graph& graph,
                                  const sim::FleetSpec& fleet, std::uint64_t first_seed, int runs,
                                  const Options& options, unsigned threads,
                                  const std::function<void(const Result&)>& each);

}  // namespace rollout::rehearsal
