// Every key the plan language knows, per object. The loader rejects anything else, and a
// test holds schema/plan.schema.json to exactly these sets, so the two cannot drift.
#pragma once

#include <array>
#include <string_view>

namespace rollout::plan::keys {

inline constexpr std::array<std::string_view, 15> kPlan = {
    "version", "name",       "flow_id", "project", "app",    "comment", "defaults",  "max_parallel",
    "stages",  "on_failure", "api",     "windows", "freeze", "notify",  "abort_when"};
inline constexpr std::array<std::string_view, 3> kAbortWhen = {"failed", "lost", "min_finished"};
inline constexpr std::array<std::string_view, 3> kNotify = {"url", "events", "format"};
inline constexpr std::array<std::string_view, 12> kNotifyEvents = {
    "run_started",      "run_paused",     "run_completed", "run_failed",
    "stage_dispatched", "stage_passed",   "stage_failed",  "approval_needed",
    "device_lost",      "abort_criteria", "rolled_back",   "rollback_failed"};
inline constexpr std::array<std::string_view, 2> kNotifyFormats = {"json", "slack"};
inline constexpr std::array<std::string_view, 1> kDefaults = {"gate"};
inline constexpr std::array<std::string_view, 9> kGate = {
    "bake",        "timeout",    "poll",     "min_success", "max_failed",
    "min_devices", "on_timeout", "max_lost", "lost_after"};
inline constexpr std::array<std::string_view, 15> kStage = {
    "name", "needs",   "groups", "filters", "gate",   "approval", "flow_id",   "project",
    "app",  "comment", "sample", "windows", "freeze", "ramp",     "on_failure"};
inline constexpr std::array<std::string_view, 3> kRamp = {"steps", "from", "factor"};
inline constexpr std::array<std::string_view, 4> kWindow = {"days", "from", "to", "tz"};
inline constexpr std::array<std::string_view, 4> kFreeze = {"from", "to", "tz", "reason"};
inline constexpr std::array<std::string_view, 7> kDays = {"mon", "tue", "wed", "thu",
                                                          "fri", "sat", "sun"};
inline constexpr std::array<std::string_view, 2> kSample = {"percent", "count"};
inline constexpr std::array<std::string_view, 3> kFilter = {"type", "operand", "value"};
inline constexpr std::array<std::string_view, 2> kApp = {"name", "version"};
inline constexpr std::array<std::string_view, 3> kOnFailure = {"action", "rollback", "scope"};
inline constexpr std::array<std::string_view, 4> kRollback = {"flow_id", "app", "comment",
                                                              "timeout"};
inline constexpr std::array<std::string_view, 2> kApi = {"url", "rate_limit"};

inline constexpr std::array<std::string_view, 3> kOnTimeoutValues = {"pause", "fail", "pass"};
inline constexpr std::array<std::string_view, 2> kFailureActions = {"stop", "rollback"};
inline constexpr std::array<std::string_view, 2> kScopeValues = {"stage", "run"};
inline constexpr std::array<std::string_view, 2> kApprovalValues = {"required", "none"};

}  // namespace rollout::plan::keys
