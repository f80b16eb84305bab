// A StateStore that passes everything to another one, except that the n-th write of one
// kind fails as a full disk or a read-only file would: for the tests that inject store
// failures at each kind of write. A fake, not a mock: it has no expectations of its own.
#pragma once

#include <stdexcept>
#include <string>

#include "state/store.h"

namespace rollout::test {

struct InjectedStoreFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class FailingStore : public state::StateStore {
 public:
  // `kind`: one of kWriteKinds; fails its `nth` call (1-based), and only that one.
  FailingStore(state::StateStore& inner, std::string kind, int nth)
      : inner_(inner), kind_(std::move(kind)), nth_(nth) {}

  static constexpr const char* kWriteKinds[] = {
      "set_run_status", "update_stage",    "save_snapshot", "record_intent",
      "record_outcome", "add_observation", "add_event",     "heartbeat"};
  bool failed() const { return failed_; }

  // A batch fails as a whole at the first of its writes that is to fail: nothing of it is
  // written, as a transaction that could not commit.
  std::vector<std::int64_t> write(const state::WriteBatch& b) override {
    for (std::size_t i = 0; i < b.snapshots.size(); ++i) write("save_snapshot");
    for (std::size_t i = 0; i < b.intents.size(); ++i) write("record_intent");
    for (std::size_t i = 0; i < b.outcomes.size(); ++i) write("record_outcome");
    for (std::size_t i = 0; i < b.observations.size(); ++i) write("add_observation");
    for (std::size_t i = 0; i < b.stages.size(); ++i) write("update_stage");
    for (std::size_t i = 0; i < b.events.size(); ++i) write("add_event");
    if (b.run_status) write("set_run_status");
    if (b.heartbeat) write("heartbeat");
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
    write("set_run_status");
    inner_.set_run_status(id, status, reason, at, finished);
  }
  std::vector<state::StageRecord> load_stages(const std::string& run) override {
    return inner_.load_stages(run);
  }
  void update_stage(const state::StageRecord& stage) override {
    write("update_stage");
    inner_.update_stage(stage);
  }
  void save_snapshot(const std::string& run, const std::string& stage,
                     const std::vector<state::SnapshotDevice>& devices) override {
    write("save_snapshot");
    inner_.save_snapshot(run, stage, devices);
  }
  std::optional<std::vector<state::SnapshotDevice>> load_snapshot(
      const std::string& run, const std::string& stage) override {
    return inner_.load_snapshot(run, stage);
  }
  std::int64_t record_intent(const state::ApiCall& call) override {
    write("record_intent");
    return inner_.record_intent(call);
  }
  void record_outcome(std::int64_t id, state::CallOutcome outcome, int http_status,
                      const std::string& message, WallTime at) override {
    write("record_outcome");
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
    write("add_observation");
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
  std::vector<state::Approval> load_approvals(const std::string& run) override {
    return inner_.load_approvals(run);
  }
  void add_event(const state::Event& e) override {
    write("add_event");
    inner_.add_event(e);
  }
  std::vector<state::Event> load_events(const std::string& run) override {
    return inner_.load_events(run);
  }
  void request_abort(const std::string& run, const state::AbortRequest& r) override {
    inner_.request_abort(run, r);
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
    write("heartbeat");
    inner_.heartbeat(run, owner, now);
  }
  std::optional<std::string> check_lease(const std::string& run) override {
    return inner_.check_lease(run);
  }
  void release_lease(const std::string& run, const state::LeaseOwner& owner) override {
    inner_.release_lease(run, owner);
  }
  std::optional<state::Lease> lease(const std::string& run) override { return inner_.lease(run); }

 private:
  void write(const char* kind) {
    if (kind_ == kind && ++seen_ == nth_) {
      failed_ = true;
      throw InjectedStoreFailure(std::string("injected: database or disk is full, at ") + kind);
    }
  }

  state::StateStore& inner_;
  std::string kind_;
  int nth_;
  int seen_ = 0;
  bool failed_ = false;
};

}  // namespace rollout::test
