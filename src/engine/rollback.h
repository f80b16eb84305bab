// What a stage's rollback sends, decided without I/O: which devices it targets (every one
// the stage's update reached) and the deploy_update requests that reach them.
#pragma once

#include <string>
#include <vector>

#include "engine/gate.h"
#include "plan/model.h"
#include "state/records.h"
#include "upswift/deploy.h"

namespace rollout::engine {

// The snapshot's devices (in order) whose reading shows the stage's update arrived and not
// aborted: one still pending or in progress would otherwise finish onto the version being
// rolled back.
std::vector<state::SnapshotDevice> rollback_targets(
    const std::vector<state::SnapshotDevice>& snapshot,
    const std::vector<state::DeviceStatus>& reached);

// The plan's rollback flow for `targets`: one request for the stage's own selection when
// it reaches exactly them (every device affected, not sampled, not selected by update or
// online state), otherwise one specific_device request per target. Each carries the
// rollback's comment and marker. The stage's on_failure must have a rollback flow.
// A `retry --rollback` (retry > 0) sends one specific_device request per target, each marked
// with the retry's number.
std::vector<upswift::DeployRequest> rollback_requests(
    const plan::Plan& plan, const plan::Stage& stage, const std::string& run_id,
    std::size_t snapshot_size, const std::vector<state::SnapshotDevice>& targets, int retry = 0);

// What a rollback's check makes of one reading of its targets (positions in the targets):
// back (the rollback's update succeeded), failed (failed or aborted), unfinished (anything
// else: pending, in progress, not on the device yet). It is over once nothing is unfinished,
// or once `timed_out`: what is unfinished then was not rolled back in time.
struct RollbackCheck {
  bool over = false;
  std::vector<std::size_t> back, failed, unfinished;
};
RollbackCheck judge_rollback(const std::vector<Reading>& readings, bool timed_out);

// What a rollback is said to bring devices back to: "app 2.3", or "rollback flow F".
std::string rollback_target(const plan::Rollback& rollback);

// The devices a rollback request names (empty: the stage's whole selection).
std::vector<std::string> named_devices(const upswift::DeployRequest& request);

}  // namespace rollout::engine
