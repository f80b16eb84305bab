#include "store/sqlite_store.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "store/migrations.h"
#include "store/statement.h"

namespace rollout::store {

using namespace state;

sqlite3_stmt* SqliteStore::prepared(const std::string& sql) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return it->second;
  sqlite3_stmt* stmt = Statement::prepare(db_, sql);
  statements_.emplace(sql, stmt);
  return stmt;
}

SqliteStore::SqliteStore(const std::string& path, bool create) : path_(path) {
  struct stat file {};
  const bool in_memory = path == ":memory:";
  if (!in_memory && !create && ::stat(path.c_str(), &file) != 0) {
    throw StoreError(fmt::format(
        "no state database at '{}' ({}): give the right one with --state PATH or ROLLOUT_STATE; "
        "only `rollout apply` creates one",
        path, std::strerror(errno)));
  }
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0),
                      nullptr) != SQLITE_OK) {
    const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw StoreError(fmt::format("cannot open the state database '{}': {}", path, why));
  }
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);  // another rollout command may be writing
  try {
    // Switching a new database to WAL takes an exclusive lock and does not wait for a
    // busy handler: two commands opening a new file at once would see "database is locked".
    for (int attempt = 0;; ++attempt) {
      char* error = nullptr;
      const int rc = sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, &error);
      sqlite3_free(error);
      if (rc == SQLITE_OK) break;
      if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || attempt == 200) {
        exec("PRAGMA journal_mode=WAL");  // throws with SQLite's reason
        break;
      }
      sqlite3_sleep(50);
    }
    exec("PRAGMA synchronous=FULL");
    exec("PRAGMA foreign_keys=ON");
    migrate();
    if (!in_memory && ::stat(path.c_str(), &file) == 0) {
      device_ = static_cast<std::uint64_t>(file.st_dev);
      inode_ = static_cast<std::uint64_t>(file.st_ino);
    }
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

SqliteStore::~SqliteStore() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  if (db_) sqlite3_close(db_);
}

void SqliteStore::exec(const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string why = error ? error : sqlite3_errmsg(db_);
    sqlite3_free(error);
    throw StoreError(fmt::format("state database '{}': {}", path_, why));
  }
}

int SqliteStore::schema_version() const {
  sqlite3_stmt* stmt = Statement::prepare(db_, "PRAGMA user_version");
  sqlite3_step(stmt);
  const int version = sqlite3_column_int(stmt, 0);
  sqlite3_finalize(stmt);
  return version;
}

int SqliteStore::latest_schema_version() {
  return static_cast<int>(migrations().size());
}

void SqliteStore::migrate() {
  const int latest = latest_schema_version();
  const auto refuse_newer = [&](int current) {
    if (current > latest) {
      throw StoreError(
          fmt::format("the state database '{}' has schema version {}, newer than this "
                      "rollout knows ({}): use a newer rollout; nothing was changed",
                      path_, current, latest));
    }
  };
  refuse_newer(schema_version());
  if (schema_version() == latest) return;
  // The version is read again under the write lock: another process opening the same new
  // database may have migrated it meanwhile.
  Transaction t(*this);
  const int current = schema_version();
  refuse_newer(current);
  for (int v = current; v < latest; ++v) {
    exec(std::string(migrations()[static_cast<std::size_t>(v)].sql).c_str());
    exec(fmt::format("PRAGMA user_version = {}", v + 1).c_str());
  }
  t.commit();
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

std::optional<std::pair<Lease, bool>> SqliteStore::lease_row(const std::string& run_id) {
  Statement s(*this,
              "SELECT owner_host, owner_pid, owner_user, acquired_at, heartbeat_at, generation, "
              "released_at IS NOT NULL FROM leases WHERE run_id = ?");
  s.bind(1, run_id);
  if (!s.step()) return std::nullopt;
  return std::make_pair(
      Lease{{s.text(0), s.integer(1), s.text(2)}, s.time(3), s.time(4), s.integer(5)},
      s.integer(6) != 0);
}

void SqliteStore::fence(const std::string& run_id) {
  const auto held = held_.find(run_id);
  if (held == held_.end()) return;
  auto row = lease_row(run_id);
  if (row && !row->second && row->first.generation == held->second) return;
  // Taken over (even if that process has released it since): say by whom.
  const bool taken_over = row && row->first.generation != held->second;
  throw LeaseLost(run_id, taken_over ? std::optional<Lease>(row->first) : std::nullopt);
}

void SqliteStore::check_file() const {
  if (inode_ == 0) return;
  struct stat file {};
  if (::stat(path_.c_str(), &file) != 0) {
    throw StoreError(fmt::format(
        "the state database '{}' was removed while this run was using it ({}): stopping, so "
        "that nothing is sent that no record keeps",
        path_, std::strerror(errno)));
  }
  if (static_cast<std::uint64_t>(file.st_dev) != device_ ||
      static_cast<std::uint64_t>(file.st_ino) != inode_) {
    throw StoreError(fmt::format(
        "the state database '{}' was replaced by another file while this run was using it: "
        "stopping, so that nothing is sent that no record keeps",
        path_));
  }
}

std::optional<std::string> SqliteStore::check_lease(const std::string& run_id) {
  try {
    check_file();
    if (held_.find(run_id) == held_.end())
      return fmt::format("this process holds no lease on run {}", run_id);
    fence(run_id);
    return std::nullopt;
  } catch (const std::exception& e) {
    return std::string(e.what());
  }
}

void SqliteStore::insert_lease(const std::string& run_id, const LeaseOwner& owner, WallTime now) {
  const auto row = lease_row(run_id);
  const std::int64_t generation = (row ? row->first.generation : 0) + 1;
  Statement(*this,
            "INSERT OR REPLACE INTO leases (run_id, owner_host, owner_pid, owner_user, "
            "acquired_at, heartbeat_at, generation, released_at) VALUES (?,?,?,?,?,?,?,NULL)")
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

std::optional<RunConflict> SqliteStore::find_conflict(const RunRecord& run, const RunClaim& claim) {
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

std::optional<RunConflict> SqliteStore::live_conflict(const RunRecord& run, const RunClaim& claim) {
  if (claim.allow_concurrent) return std::nullopt;
  return find_conflict(run, claim);
}

std::string SqliteStore::integrity_check() {
  Statement s(*this, "PRAGMA integrity_check");
  std::string out;
  while (s.step()) out += s.text(0);
  return out;
}

void SqliteStore::request_abort(const std::string& run_id, const AbortRequest& r) {
  Transaction t(*this);
  Statement(
      *this,
      "INSERT OR REPLACE INTO abort_requests (run_id, rollback, by_user, at) VALUES (?,?,?,?)")
      .bind(1, run_id)
      .bind(2, r.rollback ? 1 : 0)
      .bind(3, r.by)
      .bind(4, r.at)
      .run();
  t.commit();
}

std::optional<AbortRequest> SqliteStore::abort_request(const std::string& run_id) {
  Statement s(*this, "SELECT rollback, by_user, at FROM abort_requests WHERE run_id = ?");
  s.bind(1, run_id);
  if (!s.step()) return std::nullopt;
  return AbortRequest{s.integer(0) != 0, s.text(1), s.time(2)};
}

std::optional<Lease> SqliteStore::lease(const std::string& run_id) {
  auto row = lease_row(run_id);
  if (!row || row->second) return std::nullopt;
  return row->first;
}

std::optional<Lease> SqliteStore::acquire_lease(const std::string& run_id, const LeaseOwner& owner,
                                                WallTime now, Millis stale_after, bool take_over) {
  Transaction t(*this);
  if (auto held = lease(run_id);
      held && !take_over && !(held->owner == owner) && now - held->heartbeat_at < stale_after) {
    return held;  // someone else holds a fresh lease; the transaction rolls back
  }
  insert_lease(run_id, owner, now);
  t.commit();
  return std::nullopt;
}

void SqliteStore::heartbeat(const std::string& run_id, const LeaseOwner& owner, WallTime now) {
  check_file();
  Transaction t(*this);
  fence(run_id);
  Statement(*this,
            "UPDATE leases SET heartbeat_at = ? WHERE run_id = ? AND owner_host = ? AND "
            "owner_pid = ? AND released_at IS NULL")
      .bind(1, now)
      .bind(2, run_id)
      .bind(3, owner.host)
      .bind(4, owner.pid)
      .run();
  t.commit();
}

void SqliteStore::release_lease(const std::string& run_id, const LeaseOwner& owner) {
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

}  // namespace rollout::store
