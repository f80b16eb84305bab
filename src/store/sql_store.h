// StateStore in SQL, on SQLite (sqlite_store.h: a file, the default) or PostgreSQL
// (postgres_store.h: a server a team shares). The records, the leases and the fencing are
// written once, here; each engine is a Database (store/database.h) under it.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>

#include "state/store.h"

namespace rollout::store {

class Database;

// Why the database could not be used, for a person.
struct StoreError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class SqlStore : public state::StateStore {
 public:
  ~SqlStore() override;

  int schema_version();
  // How messages name the database (a PostgreSQL URL never with a password).
  std::string name() const;

  std::vector<std::int64_t> write(const state::WriteBatch& batch) override;
  std::optional<state::RunConflict> create_run(const state::RunRecord& run,
                                               const std::vector<state::StageRecord>& stages,
                                               const state::RunClaim* claim = nullptr) override;
  std::optional<state::RunRecord> load_run(const std::string& id) override;
  std::optional<state::RunConflict> live_conflict(const state::RunRecord& run,
                                                  const state::RunClaim& claim) override;
  std::vector<state::RunRecord> list_runs() override;
  void set_run_status(const std::string& id, state::RunStatus status, const std::string& reason,
                      WallTime at, bool finished) override;
  std::vector<state::StageRecord> load_stages(const std::string& run_id) override;
  void update_stage(const state::StageRecord& stage) override;
  void save_snapshot(const std::string& run_id, const std::string& stage,
                     const std::vector<state::SnapshotDevice>& devices) override;
  std::optional<std::vector<state::SnapshotDevice>> load_snapshot(
      const std::string& run_id, const std::string& stage) override;
  std::int64_t record_intent(const state::ApiCall& call) override;
  void record_outcome(std::int64_t call_id, state::CallOutcome outcome, int http_status,
                      const std::string& message, WallTime at) override;
  std::vector<state::ApiCall> load_calls(const std::string& run_id) override;
  std::vector<state::ApiCall> load_stage_calls(const std::string& run_id, const std::string& stage,
                                               state::CallKind kind) override;
  void add_observation(const state::Observation& o, const state::DeviceChanges& changed) override;
  std::vector<state::Observation> load_observations(const std::string& run_id) override;
  std::vector<state::DeviceState> load_device_states(const std::string& run_id) override;
  std::vector<state::DeviceState> load_stage_device_states(const std::string& run_id,
                                                           const std::string& stage) override;
  void add_approval(const state::Approval& a) override;
  std::vector<state::Approval> load_approvals(const std::string& run_id) override;
  std::optional<WallTime> latest_record(const std::string& run_id) override;
  void add_event(const state::Event& e) override;
  std::vector<state::Event> load_events(const std::string& run_id) override;
  void request_abort(const std::string& run_id, const state::AbortRequest& request) override;
  std::optional<state::AbortRequest> abort_request(const std::string& run_id) override;
  void request_pause(const std::string& run_id, const state::PauseRequest& request) override;
  void lift_pause(const std::string& run_id, const std::string& by, WallTime at) override;
  std::optional<state::PauseRequest> pause_request(const std::string& run_id) override;
  std::optional<state::Lease> acquire_lease(const std::string& run_id,
                                            const state::LeaseOwner& owner, WallTime now,
                                            Millis stale_after, bool take_over = false) override;
  void heartbeat(const std::string& run_id, const state::LeaseOwner& owner, WallTime now) override;
  void release_lease(const std::string& run_id, const state::LeaseOwner& owner) override;
  std::optional<state::Lease> lease(const std::string& run_id) override;
  std::optional<std::string> check_lease(const std::string& run_id) override;
  int news_fd() override;
  bool news_for(const std::string& run_id) override;

 public:  // to store/'s own files
  class Statement;
  class Transaction;
  Database& database() { return *db_; }

 protected:
  explicit SqlStore(std::unique_ptr<Database> db);

 private:
  std::vector<std::int64_t> write_once(const state::WriteBatch& batch);
  std::vector<state::ApiCall> read_calls(Statement& s);
  // The writes themselves, inside a transaction whose fencing check their caller made.
  void put_run_status(const std::string& id, const state::RunStatusChange& change);
  void put_stage(const state::StageRecord& stage);
  void put_snapshot(const std::string& run_id, const std::string& key,
                    const std::vector<state::SnapshotDevice>& devices);
  std::int64_t put_intent(const state::ApiCall& call);
  void put_outcome(const state::CallResult& result);
  void put_observation(const state::Observation& o, const state::DeviceChanges& changed);
  void put_device_states(const std::string& run_id, const std::string& key,
                         const state::DeviceChanges& changed);
  void put_event(const state::Event& e);
  void put_heartbeat(const std::string& run_id, const state::LeaseOwner& owner, WallTime now);
  // The lease row as it is, released or not; with `lock`, it stays as read until the
  // transaction ends (Database::lock_row).
  std::optional<std::pair<state::Lease, bool /*released*/>> lease_row(const std::string& run_id,
                                                                      bool lock = false);
  // Throws LeaseLost when this store acquired the run's lease and it has since moved on.
  // `in_write`: inside a write's transaction, holding the lease row until it commits (a
  // takeover waits for it); otherwise a read (the check just before a send).
  void fence(const std::string& run_id, bool in_write = true);
  void insert_lease(const std::string& run_id, const state::LeaseOwner& owner, WallTime now);
  std::optional<state::RunConflict> find_conflict(const state::RunRecord& run,
                                                  const state::RunClaim& claim);

  std::unique_ptr<Database> db_;
  std::map<std::string, std::int64_t> held_;  // run -> the lease generation it acquired
  std::set<std::string> news_;                // runs named by news not yet asked for, each once
};

// "postgresql://..." or "postgres://...": a PostgreSQL server; anything else is a SQLite
// file's path.
bool is_postgres_url(const std::string& location);

// Opens (and migrates) the state at `location`. A SQLite file is created only when
// `create`; a PostgreSQL database must exist. Throws StoreError saying why not.
std::unique_ptr<SqlStore> open_state(const std::string& location, bool create,
                                     Millis reconnect_for = std::chrono::seconds(60));

}  // namespace rollout::store
