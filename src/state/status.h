// The statuses a run's records carry, as enums. Their words (name/parse) are used only
// where records leave the program or come back: the state database, JSON output, and the
// text a person reads. Everything else compares enums.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace rollout::state {

// running; paused (an approval or an inconclusive gate; resumable); completed; stopped (a
// gate failed, on_failure ran); aborted; failed (an error a person must look at);
// interrupted (a signal or a crash; resumable).
enum class RunStatus : std::uint8_t {
  running,
  paused,
  completed,
  stopped,
  aborted,
  failed,
  interrupted
};

// paused: an inconclusive gate; stopped: the run stopped before the stage finished;
// rolled_back: its rollback's update succeeded on every device it was sent to;
// rollback_failed: it failed (or did not finish in rollback.timeout) on some of them.
enum class StageStatus : std::uint8_t {
  waiting,
  awaiting_approval,
  dispatching,
  gating,
  passed,
  failed,
  paused,
  stopped,
  rolling_back,
  rolled_back,
  rollback_failed
};

enum class CallKind : std::uint8_t { dispatch, rollback };

// failed: certainly not applied (it never got through); unknown: the answer was lost, to be
// settled by reading the devices.
enum class CallOutcome : std::uint8_t {
  accepted,
  refused,
  failed,
  unknown,
  settled_applied,
  settled_not_applied
};

// A gate's verdict at one poll; timeout: neither passed nor failed by the gate's timeout.
enum class Verdict : std::uint8_t { wait, pass, fail, timeout };

// How far the update of a run's stage has got on a targeted device: unlisted (it left the
// stage's groups), missing (listed, the update is not on it), Upswift's statuses, other (a
// status word this version does not know).
enum class DeviceStatus : std::uint8_t {
  unlisted,
  missing,
  pending,
  in_progress,
  success,
  failed,
  aborted,
  other
};

// What an event records: its word is what the event stream, `show` and the state database
// carry. run_<status>: the run ended (for now) with that status (run_ended).
enum class EventKind : std::uint8_t {
  abort,
  abort_criteria,
  abort_requested,
  api_retry,
  approval_needed,
  approved,
  device_back,
  device_lost,
  dispatch,
  dispatch_unknown,
  dispatched,
  error,
  interrupt,
  notify,
  pause,
  pause_lifted,
  retry,
  rollback,
  rollback_check,
  rollback_failed,
  rolled_back,
  settle,
  snapshot,
  stage_failed,
  stage_passed,
  stage_paused,
  stage_started,
  window_wait,
  run_running,
  run_paused,
  run_completed,
  run_stopped,
  run_aborted,
  run_failed,
  run_interrupted,
};

// A device's online state as read from get_devices_state.
enum class Online : std::uint8_t { online, offline };

template <typename E>
struct Words;
template <>
struct Words<RunStatus> {
  static constexpr std::array<std::string_view, 7> names = {
      "running", "paused", "completed", "stopped", "aborted", "failed", "interrupted"};
};
template <>
struct Words<StageStatus> {
  static constexpr std::array<std::string_view, 11> names = {
      "waiting", "awaiting_approval", "dispatching",  "gating",      "passed",         "failed",
      "paused",  "stopped",           "rolling_back", "rolled_back", "rollback_failed"};
};
template <>
struct Words<CallKind> {
  static constexpr std::array<std::string_view, 2> names = {"dispatch", "rollback"};
};
template <>
struct Words<CallOutcome> {
  static constexpr std::array<std::string_view, 6> names = {
      "accepted", "refused", "failed", "unknown", "settled_applied", "settled_not_applied"};
};
template <>
struct Words<Verdict> {
  static constexpr std::array<std::string_view, 4> names = {"wait", "pass", "fail", "timeout"};
};
template <>
struct Words<DeviceStatus> {
  static constexpr std::array<std::string_view, 8> names = {
      "unlisted", "missing", "pending", "in_progress", "success", "failed", "aborted", "other"};
};

template <>
struct Words<Online> {
  static constexpr std::array<std::string_view, 2> names = {"online", "offline"};
};
template <>
struct Words<EventKind> {
  static constexpr std::array<std::string_view, 35> names = {
      "abort",         "abort_criteria", "abort_requested", "api_retry",      "approval_needed",
      "approved",      "device_back",    "device_lost",     "dispatch",       "dispatch_unknown",
      "dispatched",    "error",          "interrupt",       "notify",         "pause",
      "pause_lifted",  "retry",          "rollback",        "rollback_check", "rollback_failed",
      "rolled_back",   "settle",         "snapshot",        "stage_failed",   "stage_passed",
      "stage_paused",  "stage_started",  "window_wait",     "run_running",    "run_paused",
      "run_completed", "run_stopped",    "run_aborted",     "run_failed",     "run_interrupted",
  };
};

template <typename E>
constexpr std::string_view name(E value) {
  return Words<E>::names[static_cast<std::size_t>(value)];
}

template <typename E>
constexpr std::optional<E> parse(std::string_view word) {
  for (std::size_t i = 0; i < Words<E>::names.size(); ++i) {
    if (Words<E>::names[i] == word) return static_cast<E>(i);
  }
  return std::nullopt;
}

// JSON output carries a status as its word (found by nlohmann-json through ADL; no JSON
// library is needed here). More specialised than the library's own enum-as-number rule.
#define ROLLOUT_STATUS_TO_JSON(E)  \
  template <typename Json>         \
  void to_json(Json& j, E value) { \
    j = std::string(name(value));  \
  }
ROLLOUT_STATUS_TO_JSON(RunStatus)
ROLLOUT_STATUS_TO_JSON(StageStatus)
ROLLOUT_STATUS_TO_JSON(CallKind)
ROLLOUT_STATUS_TO_JSON(CallOutcome)
ROLLOUT_STATUS_TO_JSON(Verdict)
ROLLOUT_STATUS_TO_JSON(DeviceStatus)
ROLLOUT_STATUS_TO_JSON(EventKind)
ROLLOUT_STATUS_TO_JSON(Online)
#undef ROLLOUT_STATUS_TO_JSON

// The event that says a run ended (for now) with `status`.
constexpr EventKind run_ended(RunStatus status) {
  switch (status) {
    case RunStatus::running:
      return EventKind::run_running;
    case RunStatus::paused:
      return EventKind::run_paused;
    case RunStatus::completed:
      return EventKind::run_completed;
    case RunStatus::stopped:
      return EventKind::run_stopped;
    case RunStatus::aborted:
      return EventKind::run_aborted;
    case RunStatus::failed:
      return EventKind::run_failed;
    case RunStatus::interrupted:
      return EventKind::run_interrupted;
  }
  return EventKind::run_failed;
}

// completed, stopped or aborted: nothing more will happen to the run.
constexpr bool is_final(RunStatus s) {
  return s == RunStatus::completed || s == RunStatus::stopped || s == RunStatus::aborted;
}

// The stage is over: passed, failed, rolled back (or its rollback failed), or stopped with
// its run.
constexpr bool is_terminal(StageStatus s) {
  return s == StageStatus::passed || s == StageStatus::failed || s == StageStatus::rolled_back ||
         s == StageStatus::rollback_failed || s == StageStatus::stopped;
}

// The stage holds one of the run's max_parallel places.
constexpr bool is_active(StageStatus s) {
  return s == StageStatus::dispatching || s == StageStatus::gating;
}

// The call reached the devices (Upswift said so, or its update was found on them).
constexpr bool went_through(CallOutcome o) {
  return o == CallOutcome::accepted || o == CallOutcome::settled_applied;
}

// The update is on the device, whatever its status.
constexpr bool arrived(DeviceStatus s) {
  return s != DeviceStatus::unlisted && s != DeviceStatus::missing;
}

template <typename E>
concept Status = requires {
  Words<E>::names;
};

}  // namespace rollout::state

// Text for a person carries a status as its word: fmt::format("{}", stage.status).
template <rollout::state::Status E>
struct fmt::formatter<E> : fmt::formatter<std::string_view> {
  auto format(E value, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(rollout::state::name(value), ctx);
  }
};
