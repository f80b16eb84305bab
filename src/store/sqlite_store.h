// StateStore on SQLite (WAL, synchronous=FULL: an intent that was committed survives a
// crash or a power cut). sqlite3 lives here and nowhere else.
#pragma once

#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "state/store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace rollout::store {

// Why the database could not be used, for a person.
struct StoreError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class SqliteStore : public state::StateStore {
 public:
  // Opens and migrates; creates the file only when `create` (a new run does; commands that
  // read or continue runs must not leave an empty database behind a mistyped path). Refuses
  // a database whose schema is newer than this build knows. ":memory:" for tests.
  explicit SqliteStore(const std::string& path, bool create = true);
  ~SqliteStore() override;

  int schema_version() const;
  static int latest_schema_version();
  std::string integrity_check();

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
  void add_event(const state::Event& e) override;
  std::vector<state::Event> load_events(const std::string& run_id) override;
  void request_abort(const std::string& run_id, const state::AbortRequest& request) override;
  std::optional<state::AbortRequest> abort_request(const std::string& run_id) override;
  std::optional<state::Lease> acquire_lease(const std::string& run_id,
                                            const state::LeaseOwner& owner, WallTime now,
                                            Millis stale_after, bool take_over = false) override;
  void heartbeat(const std::string& run_id, const state::LeaseOwner& owner, WallTime now) override;
  void release_lease(const std::string& run_id, const state::LeaseOwner& owner) override;
  std::optional<state::Lease> lease(const std::string& run_id) override;
  std::optional<std::string> check_lease(const std::string& run_id) override;

 public:  // to store/'s own files
  class Statement;
  class Transaction;

 private:
  void exec(const char* sql);
  std::vector<state::ApiCall> read_calls(Statement& s);
  void migrate();
  // The lease row as it is, released or not.
  std::optional<std::pair<state::Lease, bool /*released*/>> lease_row(const std::string& run_id);
  // Inside a write's transaction: throws LeaseLost when this store acquired the run's lease
  // and it has since moved on.
  void fence(const std::string& run_id);
  void insert_lease(const std::string& run_id, const state::LeaseOwner& owner, WallTime now);
  std::optional<state::RunConflict> find_conflict(const state::RunRecord& run,
                                                  const state::RunClaim& claim);

  sqlite3_stmt* prepared(const std::string& sql);

  // Throws when the file at path_ is gone or is another file than the one opened.
  void check_file() const;

  std::string path_;
  sqlite3* db_ = nullptr;
  std::uint64_t device_ = 0, inode_ = 0;             // the file opened; 0 in memory
  std::map<std::string, sqlite3_stmt*> statements_;  // prepared once, reused
  std::map<std::string, std::int64_t> held_;         // run -> the lease generation it acquired
};

}  // namespace rollout::store
