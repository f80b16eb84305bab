// The engine's view of persisted state. Every call is one transaction: a crash between
// two calls leaves the database as it was after the first.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "state/records.h"

namespace rollout::state {

class StateStore {
 public:
  virtual ~StateStore() = default;

  virtual void create_run(const RunRecord& run, const std::vector<StageRecord>& stages) = 0;
  virtual std::optional<RunRecord> load_run(const std::string& id) = 0;
  virtual std::vector<RunRecord> list_runs() = 0;
  virtual void set_run_status(const std::string& id, const std::string& status,
                              const std::string& reason, WallTime at, bool finished) = 0;

  virtual std::vector<StageRecord> load_stages(const std::string& run_id) = 0;
  virtual void update_stage(const StageRecord& stage) = 0;

  virtual void save_snapshot(const std::string& run_id, const std::string& stage,
                             const std::vector<SnapshotDevice>& devices) = 0;
  virtual std::optional<std::vector<SnapshotDevice>> load_snapshot(const std::string& run_id,
                                                                   const std::string& stage) = 0;

  // Write-ahead: the intent is durable before the call is sent; returns its id.
  virtual std::int64_t record_intent(const ApiCall& call) = 0;
  virtual void record_outcome(std::int64_t call_id, const std::string& outcome, int http_status,
                              const std::string& message, WallTime at) = 0;
  virtual std::vector<ApiCall> load_calls(const std::string& run_id) = 0;
  virtual std::vector<ApiCall> load_stage_calls(const std::string& run_id, const std::string& stage,
                                                const std::string& kind) = 0;

  virtual void add_observation(const Observation& o) = 0;
  virtual std::vector<Observation> load_observations(const std::string& run_id) = 0;

  virtual void add_approval(const Approval& a) = 0;
  virtual std::vector<Approval> load_approvals(const std::string& run_id) = 0;

  virtual void add_event(const Event& e) = 0;
  virtual std::vector<Event> load_events(const std::string& run_id) = 0;

  virtual void request_abort(const std::string& run_id, const AbortRequest& request) = 0;
  virtual std::optional<AbortRequest> abort_request(const std::string& run_id) = 0;

  // Takes the run's lease unless someone else holds a fresh one (heartbeat within
  // `stale_after`); returns the holder it could not take it from. `take_over` takes it
  // regardless: for a holder known to be dead (its process is gone from this host).
  virtual std::optional<Lease> acquire_lease(const std::string& run_id, const LeaseOwner& owner,
                                             WallTime now, Millis stale_after,
                                             bool take_over = false) = 0;
  virtual void heartbeat(const std::string& run_id, const LeaseOwner& owner, WallTime now) = 0;
  virtual void release_lease(const std::string& run_id, const LeaseOwner& owner) = 0;
  virtual std::optional<Lease> lease(const std::string& run_id) = 0;
};

}  // namespace rollout::state
