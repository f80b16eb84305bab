// What a stage's rollback sends, decided without I/O: which devices it targets (every one
// the stage's update reached) and the deploy_update requests that reach them.
#pragma once

#include <string>
#include <vector>

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
// rollback's comment and marker. The plan must have an on_failure.rollback flow.
std::vector<upswift::DeployRequest> rollback_requests(
    const plan::Plan& plan, const plan::Stage& stage, const std::string& run_id,
    std::size_t snapshot_size, const std::vector<state::SnapshotDevice>& targets);

// The devices a rollback request names (empty: the stage's whole selection).
std::vector<std::string> named_devices(const upswift::DeployRequest& request);

}  // namespace rollout::engine
