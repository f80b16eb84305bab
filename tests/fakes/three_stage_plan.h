// A plan the view and rehearsal tests share: a canary baking 2h, then EU and (approved) US.
#pragma once

#include <string>

#include "util/time.h"

namespace rollout::test {

inline const std::string kThreeStagePlan = R"(version: 1
name: fw-3
flow_id: f-new
project: Demo
app: {name: fw, version: v3}
defaults:
  gate: {bake: 1h, timeout: 6h, poll: 5m, min_success: 90%, max_failed: 10%}
stages:
  - name: canary
    groups: [Canary]
    gate: {min_success: 100%, max_failed: 0, bake: 2h}
  - name: eu
    needs: [canary]
    groups: [EU]
  - name: us
    needs: [canary]
    groups: [US]
    approval: required
)";

// When those tests start: a fixed moment, 50 years after the epoch.
inline const WallTime kTestStart = WallTime(std::chrono::hours(24 * 365 * 50));

}  // namespace rollout::test
