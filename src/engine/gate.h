// The gate's arithmetic: from a stage's resolved gate, the number of devices it targets,
// the counts of their statuses and the time since dispatch, the verdict and the reason
// in numbers. Pure: no clock, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "plan/model.h"
#include "state/status.h"
#include "util/time.h"

namespace rollout::engine {

struct StatusCounts {
  std::int64_t pending = 0;
  std::int64_t in_progress = 0;
  std::int64_t success = 0;
  std::int64_t failed = 0;
  std::int64_t aborted = 0;
  std::int64_t missing = 0;  // targeted, but this run's update is not on the device
  std::int64_t total() const {
    return pending + in_progress + success + failed + aborted + missing;
  }
};

using state::Verdict;

// What a gate read of one targeted device: how far the update carrying the stage's marker
// has got, and which of Upswift's updates it is (0: none).
struct Reading {
  state::DeviceStatus reached = state::DeviceStatus::unlisted;
  std::int64_t update_id = 0;
  bool operator==(const Reading&) const = default;
};

// The readings counted as the gate counts them: a device that left the stage's groups is
// still one of its targets, missing and not a success; a status Upswift added counts as
// aborted.
StatusCounts tally(const std::vector<Reading>& readings);

// When a gate that waits polls next: at its poll interval, but not after its bake ends or
// its timeout comes; at least 1 ms later.
Millis next_poll(const plan::Gate& gate, Millis since_dispatch);

struct Judgement {
  Verdict verdict = Verdict::wait;
  std::string reason;
};

// How many successes a stage of `targeted` devices needs, and how many failures it tolerates.
std::int64_t required_successes(const plan::Gate& gate, std::int64_t targeted);
std::int64_t allowed_failures(const plan::Gate& gate, std::int64_t targeted);

// The thresholds as counts when the number of targets is known: "min_success 95% of 20 = 19
// devices, max_failed 2% of 20 = 0 devices" (a count stays "max_failed 1 device"); as written
// otherwise.
std::string describe_thresholds(const plan::Gate& gate, std::optional<std::int64_t> targeted);

// Before dispatch: can this stage ever pass? A reason when it cannot (too few devices).
std::optional<std::string> check_feasible(const plan::Gate& gate, std::int64_t targeted);

// Failures beyond the budget fail at once, even during the bake; so does a stage that can
// no longer reach its successes. A pass needs the bake to be over. At the timeout without
// either, the verdict is `timeout` (the caller applies on_timeout).
Judgement judge(const plan::Gate& gate, std::int64_t targeted, const StatusCounts& counts,
                Millis since_dispatch);

}  // namespace rollout::engine
