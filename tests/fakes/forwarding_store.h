// A StateStore that passes everything to another one, with a hook before each write: what
// the fakes that fail or record writes are made of.
#pragma once

#include <string>
#include <vector>

#include "state/store.h"

namespace rollout::test {

class ForwardingStore : public state::StateStore {
 public:
  explicit ForwardingStore(state::StateStore& inner) : inner_(inner) {}

  std::vector<std::int64_t> write(const state::WriteBatch& b) override {
    on_batch(b);
    return inner_.write(b);
  }
  std::optional<state::RunConflict> create_run(const state::RunRecord& r,
                                               const std::vector<state::StageRecord>& s,
                                               const state::RunClaim* claim = nullptr) override {
    return inner_.create_run(r, s, claim);
  }
  std::optional<state::RunConflict> live_conflict(const state::RunRecord& run,
                                                  const state::RunClaim& claim) override {
    return inner_.live_conflict(run, claim);
  }
  std::optional<state::RunRecord> load_run(const std::string& id) override {
    return inner_.load_run(id);
  }
  std::vector<state::RunRecord> list_runs() override { return inner_.list_runs(); }
  void set_run_status(const std::string& id, state::RunStatus status, const std::string& reason,
                      WallTime at, bool finished) override {
    on_write("set_run_status");
    inner_.set_run_status(id, status, reason, at, finished);
  }
  std::vector<state::StageRecord> load_stages(const std::string& run) override {
    return inner_.load_stages(run);
  }
  void update_stage(const state::StageRecord& stage) override {
    on_write("update_stage");
    inner_.update_stage(stage);
  }
  void save_snapshot(const std::string& run, const std::string& stage,
                     const std::vector<state::SnapshotDevice>& devices) override {
    on_write("save_snapshot");
    inner_.save_snapshot(run, stage, devices);
  }
  std::optional<std::vector<state::SnapshotDevice>> load_snapshot(
      const std::string& run, const std::string& stage) override {
    return inner_.load_snapshot(run, stage);
  }
  std::int64_t record_intent(const state::ApiCall& call) override {
    on_write("record_intent");
    return inner_.record_intent(call);
  }
  void record_outcome(std::int64_t id, state::CallOutcome outcome, int http_status,
                      const std::string& message, WallTime at) override {
    on_write("record_outcome");
    inner_.record_outcome(id, outcome, http_status, message, at);
  }
  std::vector<state::ApiCall> load_calls(const std::string& run) override {
    return inner_.load_calls(run);
  }
  std::vector<state::ApiCall> load_stage_calls(const std::string& run, const std::string& stage,
                                               state::CallKind kind) override {
    return inner_.load_stage_calls(run, stage, kind);
  }
  void add_observation(const state::Observation& o, const state::DeviceChanges& changed) override {
    on_write("add_observation");
    inner_.add_observation(o, changed);
  }
  std::vector<state::Observation> load_observations(const std::string& run) override {
    return inner_.load_observations(run);
  }
  std::vector<state::DeviceState> load_device_states(const std::string& run) override {
    return inner_.load_device_states(run);
  }
  std::vector<state::DeviceState> load_stage_device_states(const std::string& run,
                                                           const std::string& stage) override {
    return inner_.load_stage_device_states(run, stage);
  }
  void add_approval(const state::Approval& a) override { inner_.add_approval(a); }
  std::optional<WallTime> latest_record(const std::string& run) override {
    return inner_.latest_record(run);
  }
  std::vector<state::Approval> load_approvals(const std::string& run) override {
    return inner_.load_approvals(run);
  }
  void add_event(const state::Event& e) override {
    on_write("add_event");
    inner_.add_event(e);
  }
  std::vector<state::Event> load_events(const std::string& run) override {
    return inner_.load_events(run);
  }
  void request_abort(const std::string& run, const state::AbortRequest& r) override {
    inner_.request_abort(run, r);
  }
  void request_pause(const std::string& run, const state::PauseRequest& r) override {
    inner_.request_pause(run, r);
  }
  void lift_pause(const std::string& run, const std::string& by, WallTime at) override {
    inner_.lift_pause(run, by, at);
  }
  std::optional<state::PauseRequest> pause_request(const std::string& run) override {
    return inner_.pause_request(run);
  }
  std::optional<state::AbortRequest> abort_request(const std::string& run) override {
    return inner_.abort_request(run);
  }
  std::optional<state::Lease> acquire_lease(const std::string& run, const state::LeaseOwner& owner,
                                            WallTime now, Millis stale_after,
                                            bool take_over = false) override {
    return inner_.acquire_lease(run, owner, now, stale_after, take_over);
  }
  void heartbeat(const std::string& run, const state::LeaseOwner& owner, WallTime now) override {
    on_write("heartbeat");
    inner_.heartbeat(run, owner, now);
  }
  std::optional<std::string> check_lease(const std::string& run) override {
    return inner_.check_lease(run);
  }
  void release_lease(const std::string& run, const state::LeaseOwner& owner) override {
    inner_.release_lease(run, owner);
  }
  std::optional<state::Lease> lease(const std::string& run) override { return inner_.lease(run); }

 protected:
  // Before a record of one kind is written on its own, and before a batch is.
  virtual void on_write(const char* /*kind*/) {}
  virtual void on_batch(const state::WriteBatch& /*batch*/) {}

 private:
  state::StateStore& inner_;
};

}  // namespace rollout::test
