// Before a run's first deploy_update: what the API can tell about the plan. Every stage's
// project, and each group it names, must have devices (Upswift has no call that lists
// projects or groups: a group that lists no device is mistyped, or empty), so that a
// mistyped group in stage 2 is found before the canary is sent and baked. Reads only.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "plan/model.h"
#include "upswift/fleet_api.h"

namespace rollout::preview {

// One thing in the plan that cannot work: the stage, the field, and why.
struct Finding {
  std::string stage;
  std::string field;  // "groups", "project"
  std::string message;
};

// Reads one device of each (project, group) the plan's stages name (of the project, for a
// stage with no groups), each once. One that lists none is a finding; one Upswift refuses is
// one once a listing of the project's groups (of every project, for a project) shows it is
// not there: a refusal may be a passing fault. Those listings also give a did-you-mean.
// `done` gets the findings (empty: nothing found wrong), or the error of a read that could
// not be made (the API unreachable, or refusing every read).
void preflight(upswift::FleetApi& api, const plan::Plan& plan,
               std::function<void(upswift::Result<std::vector<Finding>>)> done);

// "stage eu, groups: ..." one per line, indented.
std::string describe(const std::vector<Finding>& findings);

}  // namespace rollout::preview
