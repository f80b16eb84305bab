#include "store/sql_store.h"

#include "store/postgres_store.h"
#include "store/sqlite_store.h"
#include "store/statement.h"

namespace rollout::store {

using namespace state;

SqlStore::SqlStore(std::unique_ptr<Database> db) : db_(std::move(db)) {}

SqlStore::~SqlStore() = default;

int SqlStore::schema_version() {
  return db_->schema_version();
}

std::string SqlStore::name() const {
  return db_->name();
}

int SqlStore::news_fd() {
  return db_->news_fd();
}

bool SqlStore::news_for(const std::string& run_id) {
  for (std::string& run : db_->take_news()) news_.insert(std::move(run));
  return news_.erase(run_id) > 0;
}

namespace {

// "P/G" and "P/G" overlap, and "P/*" overlaps every "P/...".
bool targets_overlap(const std::string& a, const std::string& b) {
  if (a == b) return true;
  const auto project_wide = [](const std::string& x, const std::string& y) {
    return x.size() >= 2 && x.compare(x.size() - 2, 2, "/*") == 0 &&
           y.compare(0, x.size() - 1, x, 0, x.size() - 1) == 0;
  };
  return project_wide(a, b) || project_wide(b, a);
}

}  // namespace

std::optional<std::pair<Lease, bool>> SqlStore::lease_row(const std::string& run_id, bool lock) {
  Statement s(*this,
              fmt::format("SELECT owner_host, owner_pid, owner_user, acquired_at, heartbeat_at, "
                          "generation, CASE WHEN released_at IS NULL THEN 0 ELSE 1 END "
                          "FROM leases WHERE run_id = ?{}",
                          lock ? db_->lock_row() : ""));
  s.bind(1, run_id);
  if (!s.step()) return std::nullopt;
  return std::make_pair(
      Lease{{s.text(0), s.integer(1), s.text(2)}, s.time(3), s.time(4), s.integer(5)},
      s.integer(6) != 0);
}

void SqlStore::fence(const std::string& run_id, bool in_write) {
  const auto held = held_.find(run_id);
  if (held == held_.end()) return;
  auto row = lease_row(run_id, in_write);
  if (row && !row->second && row->first.generation == held->second) return;
  // Taken over (even if that process has released it since): say by whom.
  const bool taken_over = row && row->first.generation != held->second;
  throw LeaseLost(run_id, taken_over ? std::optional<Lease>(row->first) : std::nullopt);
}

std::optional<std::string> SqlStore::check_lease(const std::string& run_id) {
  try {
    db_->check_alive();
    if (held_.find(run_id) == held_.end())
      return fmt::format("this process holds no lease on run {}", run_id);
    fence(run_id, /*in_write=*/false);
    return std::nullopt;
  } catch (const std::exception& e) {
    return std::string(e.what());
  }
}

void SqlStore::insert_lease(const std::string& run_id, const LeaseOwner& owner, WallTime now) {
  const auto row = lease_row(run_id);
  const std::int64_t generation = (row ? row->first.generation : 0) + 1;
  Statement(*this,
            "INSERT INTO leases (run_id, owner_host, owner_pid, owner_user, acquired_at, "
            "heartbeat_at, generation, released_at) VALUES (?,?,?,?,?,?,?,NULL) "
            "ON CONFLICT (run_id) DO UPDATE SET owner_host = excluded.owner_host, owner_pid = "
            "excluded.owner_pid, owner_user = excluded.owner_user, acquired_at = "
            "excluded.acquired_at, heartbeat_at = excluded.heartbeat_at, generation = "
            "excluded.generation, released_at = NULL")
      .bind(1, run_id)
      .bind(2, owner.host)
      .bind(3, owner.pid)
      .bind(4, owner.user)
      .bind(5, now)
      .bind(6, now)
      .bind(7, generation)
      .run();
  held_[run_id] = generation;
}

std::optional<RunConflict> SqlStore::find_conflict(const RunRecord& run, const RunClaim& claim) {
  Statement s(*this,
              "SELECT runs.id FROM runs JOIN leases ON leases.run_id = runs.id "
              "WHERE leases.released_at IS NULL AND leases.heartbeat_at > ? "
              "ORDER BY runs.created_at");
  s.bind(1, claim.now - claim.stale_after);
  std::vector<std::string> live;
  while (s.step()) live.push_back(s.text(0));
  s.reset();
  for (const std::string& id : live) {
    if (id == run.id) continue;
    auto other = load_run(id);
    auto held = lease_row(id);
    if (!other || !held) continue;
    if (claim.owner_gone && claim.owner_gone(held->first.owner)) continue;
    std::string why;
    if (other->plan_name == run.plan_name) {
      why = fmt::format("it runs the same plan '{}'", run.plan_name);
    } else {
      for (const auto& mine : run.targets) {
        for (const auto& theirs : other->targets) {
          if (why.empty() && targets_overlap(mine, theirs))
            why = mine == theirs ? fmt::format("both target {}", mine)
                                 : fmt::format("it targets {}, and this plan {}", theirs, mine);
        }
      }
    }
    if (!why.empty()) return RunConflict{*other, held->first, why};
  }
  return std::nullopt;
}

std::optional<RunConflict> SqlStore::live_conflict(const RunRecord& run, const RunClaim& claim) {
  if (claim.allow_concurrent) return std::nullopt;
  return find_conflict(run, claim);
}

void SqlStore::request_abort(const std::string& run_id, const AbortRequest& r) {
  Transaction t(*this);
  Statement(
      *this,
      "INSERT INTO abort_requests (run_id, rollback, by_user, at) VALUES (?,?,?,?) ON CONFLICT "
      "(run_id) DO UPDATE SET rollback = excluded.rollback, by_user = excluded.by_user, at = "
      "excluded.at")
      .bind(1, run_id)
      .bind(2, r.rollback ? 1 : 0)
      .bind(3, r.by)
      .bind(4, r.at)
      .run();
  db_->notify(run_id);
  t.commit();
}

std::optional<AbortRequest> SqlStore::abort_request(const std::string& run_id) {
  Statement s(*this, "SELECT rollback, by_user, at FROM abort_requests WHERE run_id = ?");
  s.bind(1, run_id);
  if (!s.step()) return std::nullopt;
  return AbortRequest{s.integer(0) != 0, s.text(1), s.time(2)};
}

// Told to the run's process at once on PostgreSQL, as an abort is.
void SqlStore::request_pause(const std::string& run_id, const PauseRequest& r) {
  Transaction t(*this);
  Statement(*this,
            "INSERT INTO pauses (run_id, by_user, at, comment) VALUES (?,?,?,?) ON CONFLICT "
            "(run_id) DO UPDATE SET by_user = excluded.by_user, at = excluded.at, comment = "
            "excluded.comment, lifted_by = NULL, lifted_at = NULL")
      .bind(1, run_id)
      .bind(2, r.by)
      .bind(3, r.at)
      .bind(4, r.comment)
      .run();
  db_->notify(run_id);
  t.commit();
}

void SqlStore::lift_pause(const std::string& run_id, const std::string& by, WallTime at) {
  Transaction t(*this);
  Statement(*this,
            "UPDATE pauses SET lifted_by = ?, lifted_at = ? WHERE run_id = ? AND lifted_at IS "
            "NULL")
      .bind(1, by)
      .bind(2, at)
      .bind(3, run_id)
      .run();
  db_->notify(run_id);
  t.commit();
}

std::optional<PauseRequest> SqlStore::pause_request(const std::string& run_id) {
  Statement s(*this,
              "SELECT by_user, at, comment FROM pauses WHERE run_id = ? AND lifted_at IS NULL");
  s.bind(1, run_id);
  if (!s.step()) return std::nullopt;
  return PauseRequest{s.text(0), s.time(1), s.text(2)};
}

std::optional<Lease> SqlStore::lease(const std::string& run_id) {
  auto row = lease_row(run_id);
  if (!row || row->second) return std::nullopt;
  return row->first;
}

std::optional<Lease> SqlStore::acquire_lease(const std::string& run_id, const LeaseOwner& owner,
                                             WallTime now, Millis stale_after, bool take_over) {
  Transaction t(*this);
  db_->serialize_claims();
  if (auto held = lease(run_id);
      held && !take_over && !(held->owner == owner) && now - held->heartbeat_at < stale_after) {
    return held;  // someone else holds a fresh lease; the transaction rolls back
  }
  insert_lease(run_id, owner, now);
  t.commit();
  return std::nullopt;
}

void SqlStore::heartbeat(const std::string& run_id, const LeaseOwner& owner, WallTime now) {
  db_->check_alive();
  Transaction t(*this);
  fence(run_id);
  put_heartbeat(run_id, owner, now);
  t.commit();
}

void SqlStore::put_heartbeat(const std::string& run_id, const LeaseOwner& owner, WallTime now) {
  Statement(*this,
            "UPDATE leases SET heartbeat_at = ? WHERE run_id = ? AND owner_host = ? AND "
            "owner_pid = ? AND released_at IS NULL")
      .bind(1, now)
      .bind(2, run_id)
      .bind(3, owner.host)
      .bind(4, owner.pid)
      .run();
}

void SqlStore::release_lease(const std::string& run_id, const LeaseOwner& owner) {
  Transaction t(*this);
  const auto held = held_.find(run_id);
  if (held != held_.end()) {
    // Only the generation this store acquired: a lease taken over since is not ours to end.
    Statement(*this, "UPDATE leases SET released_at = ? WHERE run_id = ? AND generation = ?")
        .bind(1, std::chrono::system_clock::now())
        .bind(2, run_id)
        .bind(3, held->second)
        .run();
  } else {
    Statement(*this,
              "UPDATE leases SET released_at = ? WHERE run_id = ? AND owner_host = ? AND "
              "owner_pid = ?")
        .bind(1, std::chrono::system_clock::now())
        .bind(2, run_id)
        .bind(3, owner.host)
        .bind(4, owner.pid)
        .run();
  }
  t.commit();
  held_.erase(run_id);
}

bool is_postgres_url(const std::string& location) {
  return location.rfind("postgresql://", 0) == 0 || location.rfind("postgres://", 0) == 0;
}

std::unique_ptr<SqlStore> open_state(const std::string& location, bool create,
                                     Millis reconnect_for) {
  if (is_postgres_url(location)) {
#if ROLLOUT_WITH_POSTGRESQL
    return std::make_unique<PostgresStore>(location, std::chrono::seconds(30), reconnect_for);
#else
    (void)reconnect_for;
    throw StoreError(fmt::format(
        "{}: this rollout was built without PostgreSQL support (ROLLOUT_POSTGRESQL=OFF), so "
        "it keeps its state in SQLite files only: give --state a file path, or use a build "
        "with PostgreSQL",
        redact_postgres_url(location)));
#endif
  }
  return std::make_unique<SqliteStore>(location, create);
}

}  // namespace rollout::store
