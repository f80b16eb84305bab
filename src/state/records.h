// What the state database holds, as plain values. The engine reads and writes these
// through StateStore; only store/ knows they live in SQLite.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "state/status.h"
#include "util/time.h"

namespace rollout::state {

struct RunRecord {
  std::string id;
  std::string plan_name;
  std::string plan_path;
  std::string plan_text;
  std::string plan_hash;
  std::string created_by;
  std::string host;
  std::string api_url;
  RunStatus status = RunStatus::running;
  std::string reason;
  WallTime created_at{};
  WallTime updated_at{};
  std::optional<WallTime> finished_at;
  // What the run's stages select, as "project/group" (or "project/*" for a stage that
  // names no group): two live runs that share one are refused unless asked for.
  std::vector<std::string> targets;
};

// The reason of a stage that passed with nothing left to update (the views call it skipped):
// the engine writes it, followed by the numbers; the views recognise it by this start.
inline constexpr std::string_view kSkippedReason = "skipped: nothing left to update";

struct StageRecord {
  std::string run_id;
  std::string name;
  int position = 0;
  StageStatus status = StageStatus::waiting;
  std::string reason;
  std::optional<WallTime> started_at;
  std::optional<WallTime> dispatched_at;
  std::optional<WallTime> finished_at;
};

struct SnapshotDevice {
  std::string uuid;
  std::int64_t device_id = 0;
  std::string name;
  std::string group;
  bool operator==(const SnapshotDevice&) const = default;
};

// One deploy_update, written before it is sent (outcome empty) and completed after.
struct ApiCall {
  std::int64_t id = 0;
  std::string run_id;
  std::string stage;
  CallKind kind = CallKind::dispatch;
  std::string marker;  // carried in metadata.comment: finds this call's updates on devices
  std::string body;    // the exact body, token redacted
  std::int64_t devices = 0;
  WallTime intent_at{};
  std::optional<CallOutcome> outcome;
  int http_status = 0;
  std::string message;
  std::optional<WallTime> outcome_at;
};

// Its outcome is not known: written ahead and never answered, or its answer lost. Such a call
// is settled (its update looked for on the devices) before its run may end.
inline bool unsettled(const ApiCall& call) {
  return !call.outcome || *call.outcome == CallOutcome::unknown;
}

struct Observation {
  std::string run_id;
  std::string stage;
  WallTime at{};
  std::int64_t elapsed_ms = 0;  // since dispatch
  std::int64_t targeted = 0, pending = 0, in_progress = 0, success = 0, failed = 0, aborted = 0,
               missing = 0;
  Verdict verdict = Verdict::wait;
  std::string reason;
  std::int64_t lost = 0;  // counted apart: a lost device is in none of the counts above
};

// A targeted device's state at its stage's gate. name and group come from the stage's
// snapshot; status is empty for a device no gate has read yet.
struct DeviceState {
  std::string stage;
  std::string uuid;
  std::string name;
  std::string group;
  std::int64_t update_id = 0;  // 0: no update of this run's on it
  std::optional<DeviceStatus> status;
  WallTime since{};
  std::optional<Online> online;  // nullopt: not read
  std::optional<WallTime> online_at;
  // When it was last read online after the dispatch: a lost device's time offline counts
  // from here (from the dispatch when it never was).
  std::optional<WallTime> online_last;
  std::optional<WallTime> lost_at;  // lost since then: its update under way, the device dark
  bool started = false;             // its update was seen in progress
  // Where the stage was rolled back: how far the rollback's update got on it (empty: no
  // rollback check read it), its update id, since when (load_device_states only).
  std::optional<DeviceStatus> rollback_status;
  std::int64_t rollback_update_id = 0;
  WallTime rollback_since{};
};

// A stage's rollback keeps its records beside the stage's own, under the stage's name and
// this: its targets (a snapshot) and what its check last read of each (device states).
inline constexpr std::string_view kRollbackSuffix = "/rollback";
inline std::string rollback_key(const std::string& stage) {
  return stage + std::string(kRollbackSuffix);
}

// The devices whose state one gate observation changed: `count` of them, each made as the
// store writes it, so that a first poll of a large stage (which changes every device) holds
// no second copy of the fleet.
struct DeviceChanges {
  std::size_t count = 0;
  std::function<DeviceState(std::size_t)> at;
};

struct Approval {
  std::string run_id;
  std::string stage;
  std::string by;
  WallTime at{};
  std::string comment;
};

struct Event {
  std::int64_t id = 0;
  std::string run_id;
  WallTime at{};
  std::string stage;  // may be empty
  EventKind kind = EventKind::error;
  std::string message;
};

// A person's pause of a run: no new stage starts while it holds (until `rollout resume`).
struct PauseRequest {
  std::string by;
  WallTime at{};
  std::string comment;
};

struct AbortRequest {
  bool rollback = false;
  std::string by;
  WallTime at{};
};

struct LeaseOwner {
  std::string host;
  std::int64_t pid = 0;
  std::string user;
  bool operator==(const LeaseOwner&) const = default;
};

struct Lease {
  LeaseOwner owner;
  WallTime acquired_at{};
  WallTime heartbeat_at{};
  // Grows by one at every acquisition: the fencing token. A process's writes carry the
  // generation it acquired, and fail once the lease has a newer one.
  std::int64_t generation = 0;
};

// Everything the state database holds about one run's course, read together: what `show`,
// `status` and the report are made from.
struct RunHistory {
  std::vector<StageRecord> stages;
  std::map<std::string, std::int64_t> devices;  // snapshot sizes by stage
  std::vector<Observation> observations;
  std::vector<ApiCall> calls;
  std::vector<Approval> approvals;
  std::vector<Event> events;
  std::vector<DeviceState> device_states;
  std::optional<PauseRequest> pause;  // a person's pause that holds now
};

// A new run and the lease its process takes on it, in one transaction with the check that
// no live run (a fresh lease) of the same plan or of overlapping targets holds one.
struct RunClaim {
  LeaseOwner owner;
  WallTime now{};
  Millis stale_after{30000};
  bool allow_concurrent = false;
  // A holder known to be dead (its process gone from this host) holds nothing back, however
  // fresh its last heartbeat.
  std::function<bool(const LeaseOwner&)> owner_gone{};
};

// The live run that a new one would have run beside.
struct RunConflict {
  RunRecord run;
  Lease lease;
  std::string why;  // "the same plan", "both target Demo/eu"
};

}  // namespace rollout::state
