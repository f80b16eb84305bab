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
  std::int64_t lost = 0;     // its update under way, the device offline past lost_after
  std::int64_t total() const {
    return pending + in_progress + success + failed + aborted + missing + lost;
  }
  // A final status, or lost: what abort_when counts as finished.
  std::int64_t finished() const { return success + failed + aborted + lost; }
  StatusCounts& operator+=(const StatusCounts& o) {
    pending += o.pending;
    in_progress += o.in_progress;
    success += o.success;
    failed += o.failed;
    aborted += o.aborted;
    missing += o.missing;
    lost += o.lost;
    return *this;
  }
};

using state::Verdict;

// What a gate read of one targeted device: how far the update carrying the stage's marker
// has got, and which of Upswift's updates it is (0: none).
struct Reading {
  state::DeviceStatus reached = state::DeviceStatus::unlisted;
  std::int64_t update_id = 0;
  bool lost = false;  // set by the gate from the device's online state (is_lost)
  bool operator==(const Reading&) const = default;
};

// The readings counted as the gate counts them: a device that left the stage's groups is
// still one of its targets, missing and not a success; a status Upswift added counts as
// aborted; a lost device counts as lost whatever its update's status says.
StatusCounts tally(const std::vector<Reading>& readings);

// Whether a device's update is under way: in_progress, or pending again after it was seen
// in progress (`started`). Only such a device can be lost, and only then is its online state
// worth a read.
bool under_way(state::DeviceStatus reached, bool started);

// Lost: its update under way while the device has been offline for longer than the gate's
// lost_after, counted from `online_last` (when it was last seen online after the dispatch,
// else the dispatch). `online`: -1 not read, 0 offline, 1 online.
bool is_lost(const plan::Gate& gate, state::DeviceStatus reached, bool started, std::int8_t online,
             WallTime online_last, WallTime now);

// How many lost devices a stage of `targeted` tolerates.
std::int64_t allowed_lost(const plan::Gate& gate, std::int64_t targeted);

// Run-wide: the counts of every dispatched stage's devices, against the plan's abort_when.
// The reason names the criterion and the numbers when one is met.
std::optional<std::string> abort_criterion_met(const plan::AbortWhen& when, std::int64_t targeted,
                                               const StatusCounts& counts);

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
// devices, max_failed 2% of 20 = 0 devices, max_lost 0 devices (offline 15m mid-update)" (a
// count stays "max_failed 1 device"); as written otherwise.
// Without `with_lost` (the live progress's one line), the last part is left out.
std::string describe_thresholds(const plan::Gate& gate, std::optional<std::int64_t> targeted,
                                bool with_lost = true);

// Before dispatch: can this stage ever pass? A reason when it cannot (too few devices).
std::optional<std::string> check_feasible(const plan::Gate& gate, std::int64_t targeted);

// Failures beyond the budget fail at once, even during the bake; so does a stage that can
// no longer reach its successes. A pass needs the bake to be over. At the timeout without
// either, the verdict is `timeout` (the caller applies on_timeout).
Judgement judge(const plan::Gate& gate, std::int64_t targeted, const StatusCounts& counts,
                Millis since_dispatch);

}  // namespace rollout::engine
