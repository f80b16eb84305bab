// Starting a run: its id, and its records (the plan text and hash, who and where, every
// stage waiting), written in one transaction before anything is sent.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "engine/markers.h"
#include "plan/model.h"
#include "state/store.h"

namespace rollout::engine {

// "r-20261125-183012-4f2a": sortable by time, unique enough to type.
std::string new_run_id(WallTime now, std::mt19937_64& rng);

struct RunOrigin {
  std::string plan_path;
  std::string plan_text;
  std::string user;
  std::string host;
  std::string api_url;
};

// What the plan's stages select, as the store compares runs: "project/group", or
// "project/*" for a stage that names no group.
std::vector<std::string> run_targets(const plan::Plan& plan);

// Writes the run's records. With a claim, also takes the run's lease in the same
// transaction, unless a live run conflicts: then `conflict` is set and nothing is written.
state::RunRecord create_run(state::StateStore& store, const plan::Plan& plan,
                            const RunOrigin& origin, const std::string& run_id, WallTime now,
                            const state::RunClaim* claim = nullptr,
                            std::optional<state::RunConflict>* conflict = nullptr);

// Reopens a run for a retry of `stage` to `devices` (whose update failed), before anything
// is sent: the targets are written first, then the run and its stages are set to go on
// from the retry (stages the stop cut off resume; the stage dispatches again). Returns the
// retry's number. The engine then sends one specific_device call per device, written ahead.
int prepare_retry(state::StateStore& store, const std::string& run_id, const std::string& stage,
                  const std::vector<state::SnapshotDevice>& devices, WallTime now);

// Reopens a run whose stage's rollback failed on some devices, to send it again to `devices`
// (those where it failed): the targets first, then the stage rolling back again and the run
// resumable; the engine sends one specific_device rollback call per device, written ahead,
// and checks the rollback on every device it was sent to. Returns the retry's number.
int prepare_rollback_retry(state::StateStore& store, const std::string& run_id,
                           const std::string& stage,
                           const std::vector<state::SnapshotDevice>& devices, WallTime now);

}  // namespace rollout::engine
