// The engine's view of persisted state. Every call is one transaction: a crash between
// two calls leaves the database as it was after the first.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "state/records.h"
#include "util/time_text.h"

namespace rollout::state {

// Thrown by any write of a run's process once another process has taken the run's lease
// over (a newer generation): that one runs it now, so this one must send and write nothing
// more. `holder` is who has it (nullopt: the lease was released or removed).
struct LeaseLost : std::runtime_error {
  LeaseLost(std::string run, std::optional<Lease> by)
      : std::runtime_error(describe(run, by)), run_id(std::move(run)), holder(std::move(by)) {}
  std::string run_id;
  std::optional<Lease> holder;

 private:
  static std::string describe(const std::string& run, const std::optional<Lease>& by) {
    if (!by) {
      return fmt::format(
          "run {}: this process no longer holds the run's lease (it was released or removed); "
          "it sent and wrote nothing more",
          run);
    }
    return fmt::format(
        "run {} was taken over by {}@{} (pid {}) at {} (lease generation {}): this process had "
        "lost its lease (frozen or cut off for longer than the lease lasts) and sent and wrote "
        "nothing more; see `rollout status {}`",
        run, by->owner.user, by->owner.host, by->owner.pid, local_time(by->acquired_at),
        by->generation, run);
  }
};

// A call's outcome, as recorded after its answer (or after settling it).
struct CallResult {
  std::int64_t call_id = 0;
  CallOutcome outcome = CallOutcome::unknown;
  int http_status = 0;
  std::string message;
  WallTime at{};
};

struct RunStatusChange {
  RunStatus status = RunStatus::running;
  std::string reason;
  WallTime at{};
  bool finished = false;
};

// Records of one run that commit together, in one transaction with one fencing check: what
// the engine recorded in one turn of its loop, and the intents of the calls it is about to
// send. Nothing of it is written unless all of it is.
struct WriteBatch {
  struct Snapshot {
    std::string key;                                       // a stage, or a retry's/rollback's key
    const std::vector<SnapshotDevice>* devices = nullptr;  // alive until write() returns
  };
  std::string run_id;
  std::vector<Snapshot> snapshots;
  std::vector<ApiCall> intents;  // ids assigned by the store, returned by write()
  std::vector<CallResult> outcomes;
  std::vector<std::pair<Observation, DeviceChanges>> observations;
  // Device rows without an observation: a rollback's check, under rollback_key(stage).
  std::vector<std::pair<std::string, DeviceChanges>> device_states;
  std::vector<StageRecord> stages;
  std::vector<Event> events;
  std::optional<RunStatusChange> run_status;
  std::optional<std::pair<LeaseOwner, WallTime>> heartbeat;

  bool empty() const {
    return snapshots.empty() && intents.empty() && outcomes.empty() && observations.empty() &&
           device_states.empty() && stages.empty() && events.empty() && !run_status && !heartbeat;
  }
};

// Fencing: once this store object has acquired a run's lease, every write it makes for
// that run (stage, snapshot, intent, outcome, observation, event, status, heartbeat) runs in
// one transaction with a check that the lease still has the generation it acquired, and
// throws LeaseLost otherwise. Writes of other processes' requests (approvals, abort
// requests) and of runs it holds no lease on are not fenced.
class StateStore {
 public:
  virtual ~StateStore() = default;

  // Without a claim: the records only. With one: also takes the run's lease for
  // claim->owner (fencing from then on), unless a live run conflicts, which is returned and
  // nothing is written.
  // Everything in `batch`, in one transaction (fenced as every write is); returns the ids of
  // its intents, in order.
  virtual std::vector<std::int64_t> write(const WriteBatch& batch) = 0;

  virtual std::optional<RunConflict> create_run(const RunRecord& run,
                                                const std::vector<StageRecord>& stages,
                                                const RunClaim* claim = nullptr) = 0;
  virtual std::optional<RunRecord> load_run(const std::string& id) = 0;
  // A live run (a fresh lease, not `run` itself) of the same plan or of an overlapping
  // target: what a resumed run would run beside. Checked by a process of `run` after it took
  // the run's lease, so that of two racing processes one sees the other.
  virtual std::optional<RunConflict> live_conflict(const RunRecord& run, const RunClaim& claim) = 0;
  virtual std::vector<RunRecord> list_runs() = 0;
  virtual void set_run_status(const std::string& id, RunStatus status, const std::string& reason,
                              WallTime at, bool finished) = 0;

  virtual std::vector<StageRecord> load_stages(const std::string& run_id) = 0;
  virtual void update_stage(const StageRecord& stage) = 0;

  virtual void save_snapshot(const std::string& run_id, const std::string& stage,
                             const std::vector<SnapshotDevice>& devices) = 0;
  virtual std::optional<std::vector<SnapshotDevice>> load_snapshot(const std::string& run_id,
                                                                   const std::string& stage) = 0;

  // Write-ahead: the intent is durable before the call is sent; returns its id.
  virtual std::int64_t record_intent(const ApiCall& call) = 0;
  virtual void record_outcome(std::int64_t call_id, CallOutcome outcome, int http_status,
                              const std::string& message, WallTime at) = 0;
  virtual std::vector<ApiCall> load_calls(const std::string& run_id) = 0;
  virtual std::vector<ApiCall> load_stage_calls(const std::string& run_id, const std::string& stage,
                                                CallKind kind) = 0;

  // The observation, and the device states that changed with it, in one transaction.
  virtual void add_observation(const Observation& o, const DeviceChanges& changed) = 0;
  virtual std::vector<Observation> load_observations(const std::string& run_id) = 0;
  // Every device of every stage's snapshot, by stage position and device_id, with the
  // state its gate last saw (status empty when none did).
  virtual std::vector<DeviceState> load_device_states(const std::string& run_id) = 0;
  // The states recorded for one stage's devices (name and group left empty): what its gate
  // goes on from after a resume.
  virtual std::vector<DeviceState> load_stage_device_states(const std::string& run_id,
                                                            const std::string& stage) = 0;

  virtual void add_approval(const Approval& a) = 0;
  virtual std::vector<Approval> load_approvals(const std::string& run_id) = 0;
  // The latest time any record of the run carries (events, observations, calls, its status):
  // a resumed time-scaled run's clock goes on from there. nullopt for a run with none.
  virtual std::optional<WallTime> latest_record(const std::string& run_id) = 0;

  virtual void add_event(const Event& e) = 0;
  virtual std::vector<Event> load_events(const std::string& run_id) = 0;

  virtual void request_abort(const std::string& run_id, const AbortRequest& request) = 0;
  // A pause replaces the run's earlier one; lifting it records who and when. pause_request
  // is the pause that holds now, if any.
  virtual void request_pause(const std::string& run_id, const PauseRequest& request) = 0;
  virtual void lift_pause(const std::string& run_id, const std::string& by, WallTime at) = 0;
  virtual std::optional<PauseRequest> pause_request(const std::string& run_id) = 0;
  virtual std::optional<AbortRequest> abort_request(const std::string& run_id) = 0;

  // Takes the run's lease unless someone else holds a fresh one (heartbeat within
  // `stale_after`); returns the holder it could not take it from. `take_over` takes it
  // regardless: for a holder known to be dead (its process is gone from this host).
  virtual std::optional<Lease> acquire_lease(const std::string& run_id, const LeaseOwner& owner,
                                             WallTime now, Millis stale_after,
                                             bool take_over = false) = 0;
  // Throws LeaseLost when the lease is no longer this store's.
  virtual void heartbeat(const std::string& run_id, const LeaseOwner& owner, WallTime now) = 0;
  // Reads the lease: nullopt while this store still holds the run's lease, else why not.
  // Asked just before a deploy_update leaves.
  virtual std::optional<std::string> check_lease(const std::string& run_id) = 0;
  virtual void release_lease(const std::string& run_id, const LeaseOwner& owner) = 0;
  virtual std::optional<Lease> lease(const std::string& run_id) = 0;

  // News from other processes (an approval, an abort request) the moment it is committed:
  // a descriptor to wait on for reading, or -1 where only polling finds it (SQLite). Once it
  // is readable, news_for says whether any of what arrived is about `run_id`.
  virtual int news_fd() { return -1; }
  virtual bool news_for(const std::string& /*run_id*/) { return false; }
};

}  // namespace rollout::state
