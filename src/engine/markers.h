// The names a run gives what it writes: the markers its calls carry in metadata.comment
// (which find their updates on devices later), the keys its snapshots are kept under, and
// the points where the kill-and-resume tests stop a process. One place for each.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "state/records.h"

namespace rollout::engine {

// "[rollout RUN/STAGE]": the stage's dispatch, found by its gate and by settling.
std::string dispatch_marker(const std::string& run_id, const std::string& stage);
// "[rollout RUN/STAGE/rollback]", and a `retry --rollback`'s "... (retry N)": the rollback's
// check reads each device's latest update carrying the first, so a retry's too.
std::string rollback_marker(const std::string& run_id, const std::string& stage, int retry = 0);
// The marker of a stage's dispatch calls: a retry's also names the retry, so that settling
// its call finds that call's update and not the first one; both contain the stage's marker.
std::string call_marker(const std::string& run_id, const std::string& stage, int retry);
// The comment a call carries: the plan's comment, if any, then the marker.
std::string with_marker(const std::optional<std::string>& comment, const std::string& marker);

// Snapshot keys beside the stage's own (its name): the devices a rollback targets
// (state::rollback_key), the devices a `rollout retry` of the stage re-dispatches to, by
// attempt, and those a `rollout retry --rollback` sends the rollback again to.
using state::rollback_key;
std::string retry_key(const std::string& stage, int attempt);
std::string rollback_retry_key(const std::string& stage, int attempt);

// Where the kill-and-resume tests may deliver SIGKILL (ROLLOUT_TEST_CRASH_AT), in the order
// a stage reaches them. The engine reaches no other; the CLI refuses any other name.
inline constexpr std::array<std::string_view, 7> kCrashPoints = {
    "after_snapshot", "before_intent",     "after_intent",         "after_answer",
    "after_outcome",  "after_observation", "after_rollback_intent"};
bool is_crash_point(std::string_view name);

}  // namespace rollout::engine
