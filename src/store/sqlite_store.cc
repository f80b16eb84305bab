#include "store/sqlite_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "store/migrations.h"
#include "util/safe_text.h"

namespace rollout::store {

using namespace state;

namespace {

constexpr int kBusyTimeoutMs = 10000;

std::int64_t to_ms(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
WallTime from_ms(std::int64_t ms) {
  return WallTime(std::chrono::milliseconds(ms));
}

}  // namespace

// A prepared statement, kept by the store and reused: bind by position (1-based), step,
// read columns (0-based). It is reset when the handle goes.
class SqliteStore::Statement {
 public:
  Statement(SqliteStore& store, const std::string& sql)
      : db_(store.db_), stmt_(store.prepared(sql)) {}
  ~Statement() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  // The state holds valid UTF-8 only, whatever a server sent: every reader keeps working.
  Statement& bind(int i, const std::string& v) {
    if (!is_valid_utf8(v)) {
      const std::string repaired = valid_utf8(v);
      sqlite3_bind_text(stmt_, i, repaired.data(), static_cast<int>(repaired.size()),
                        SQLITE_TRANSIENT);
      return *this;
    }
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int i, WallTime t) { return bind(i, to_ms(t)); }
  Statement& bind(int i, const std::optional<WallTime>& t) {
    if (t) return bind(i, *t);
    sqlite3_bind_null(stmt_, i);
    return *this;
  }
  Statement& bind(int i, const std::optional<std::string>& v) {
    if (v) return bind(i, *v);
    sqlite3_bind_null(stmt_, i);
    return *this;
  }

  // True while there is a row.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
      throw StoreError(fmt::format(
          "state database '{}': another process has held its write lock for over {} s (one "
          "frozen or stuck in the middle of a write?); nothing was changed: try again",
          sqlite3_db_filename(db_, "main"), kBusyTimeoutMs / 1000));
    }
    throw StoreError(fmt::format("state database '{}': {}", sqlite3_db_filename(db_, "main"),
                                 sqlite3_errmsg(db_)));
  }
  void run() {
    while (step()) {
    }
  }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  static sqlite3_stmt* prepare(sqlite3* db, const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) !=
        SQLITE_OK) {
      throw StoreError(
          fmt::format("state database: cannot prepare a statement: {}", sqlite3_errmsg(db)));
    }
    return stmt;
  }

  std::int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  WallTime time(int col) const { return from_ms(integer(col)); }
  std::optional<WallTime> optional_time(int col) const {
    if (is_null(col)) return std::nullopt;
    return time(col);
  }
  std::optional<std::string> optional_text(int col) const {
    if (is_null(col)) return std::nullopt;
    return text(col);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

sqlite3_stmt* SqliteStore::prepared(const std::string& sql) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return it->second;
  sqlite3_stmt* stmt = Statement::prepare(db_, sql);
  statements_.emplace(sql, stmt);
  return stmt;
}

// BEGIN IMMEDIATE ... COMMIT; rolls back unless committed.
class SqliteStore::Transaction {
 public:
  explicit Transaction(SqliteStore& s) : store_(s) { Statement(store_, "BEGIN IMMEDIATE").run(); }
  ~Transaction() {
    if (!committed_) sqlite3_exec(store_.db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    Statement(store_, "COMMIT").run();
    committed_ = true;
  }

 private:
  SqliteStore& store_;
  bool committed_ = false;
};

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

std::string join_lines(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : "\n") + i;
  return out;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

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

std::optional<RunConflict> SqliteStore::create_run(const RunRecord& r,
                                                   const std::vector<StageRecord>& stages,
                                                   const RunClaim* claim) {
  Transaction t(*this);
  if (claim && !claim->allow_concurrent) {
    if (auto conflict = find_conflict(r, *claim)) return conflict;  // rolls back: nothing written
  }
  Statement(*this,
            "INSERT INTO runs (id, plan_name, plan_path, plan_text, plan_hash, created_by, host, "
            "api_url, status, reason, created_at, updated_at, finished_at, targets) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
      .bind(1, r.id)
      .bind(2, r.plan_name)
      .bind(3, r.plan_path)
      .bind(4, r.plan_text)
      .bind(5, r.plan_hash)
      .bind(6, r.created_by)
      .bind(7, r.host)
      .bind(8, r.api_url)
      .bind(9, r.status)
      .bind(10, r.reason)
      .bind(11, r.created_at)
      .bind(12, r.updated_at)
      .bind(13, r.finished_at)
      .bind(14, join_lines(r.targets))
      .run();
  for (const StageRecord& s : stages) {
    Statement(*this,
              "INSERT INTO stages (run_id, name, position, status, reason) VALUES (?,?,?,?,?)")
        .bind(1, r.id)
        .bind(2, s.name)
        .bind(3, s.position)
        .bind(4, s.status)
        .bind(5, s.reason)
        .run();
  }
  if (claim) insert_lease(r.id, claim->owner, claim->now);
  t.commit();
  return std::nullopt;
}

namespace {
constexpr const char* kRunColumns =
    "SELECT id, plan_name, plan_path, plan_text, plan_hash, created_by, host, api_url, status, "
    "reason, created_at, updated_at, finished_at, targets FROM runs";
}

std::optional<RunRecord> SqliteStore::load_run(const std::string& id) {
  Statement s(*this, fmt::format("{} WHERE id = ?", kRunColumns));
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return RunRecord{s.text(0),           s.text(1),
                   s.text(2),           s.text(3),
                   s.text(4),           s.text(5),
                   s.text(6),           s.text(7),
                   s.text(8),           s.text(9),
                   s.time(10),          s.time(11),
                   s.optional_time(12), split_lines(s.text(13))};
}

std::vector<RunRecord> SqliteStore::list_runs() {
  Statement s(*this, fmt::format("{} ORDER BY created_at, id", kRunColumns));
  std::vector<RunRecord> out;
  while (s.step()) {
    out.push_back({s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5), s.text(6),
                   s.text(7), s.text(8), s.text(9), s.time(10), s.time(11), s.optional_time(12),
                   split_lines(s.text(13))});
  }
  return out;
}

void SqliteStore::set_run_status(const std::string& id, const std::string& status,
                                 const std::string& reason, WallTime at, bool finished) {
  Transaction t(*this);
  fence(id);
  Statement(*this,
            "UPDATE runs SET status = ?, reason = ?, updated_at = ?, finished_at = ? WHERE id = ?")
      .bind(1, status)
      .bind(2, reason)
      .bind(3, at)
      .bind(4, finished ? std::optional<WallTime>(at) : std::nullopt)
      .bind(5, id)
      .run();
  t.commit();
}

std::vector<StageRecord> SqliteStore::load_stages(const std::string& run_id) {
  Statement s(
      *this,
      "SELECT run_id, name, position, status, reason, started_at, dispatched_at, finished_at "
      "FROM stages WHERE run_id = ? ORDER BY position");
  s.bind(1, run_id);
  std::vector<StageRecord> out;
  while (s.step()) {
    out.push_back({s.text(0), s.text(1), static_cast<int>(s.integer(2)), s.text(3), s.text(4),
                   s.optional_time(5), s.optional_time(6), s.optional_time(7)});
  }
  return out;
}

void SqliteStore::update_stage(const StageRecord& st) {
  Transaction t(*this);
  fence(st.run_id);
  Statement(*this,
            "UPDATE stages SET status = ?, reason = ?, started_at = ?, dispatched_at = ?, "
            "finished_at = ? "
            "WHERE run_id = ? AND name = ?")
      .bind(1, st.status)
      .bind(2, st.reason)
      .bind(3, st.started_at)
      .bind(4, st.dispatched_at)
      .bind(5, st.finished_at)
      .bind(6, st.run_id)
      .bind(7, st.name)
      .run();
  t.commit();
}

void SqliteStore::save_snapshot(const std::string& run_id, const std::string& stage,
                                const std::vector<SnapshotDevice>& devices) {
  Transaction t(*this);
  fence(run_id);
  Statement(*this, "INSERT INTO snapshots (run_id, stage) VALUES (?, ?)")
      .bind(1, run_id)
      .bind(2, stage)
      .run();
  Statement insert(
      *this,
      "INSERT INTO snapshot_devices (run_id, stage, device_uuid, device_id, device_name, grp) "
      "VALUES (?,?,?,?,?,?)");
  for (const SnapshotDevice& d : devices) {
    insert.reset();
    insert.bind(1, run_id)
        .bind(2, stage)
        .bind(3, d.uuid)
        .bind(4, d.device_id)
        .bind(5, d.name)
        .bind(6, d.group);
    insert.run();
  }
  t.commit();
}

std::optional<std::vector<SnapshotDevice>> SqliteStore::load_snapshot(const std::string& run_id,
                                                                      const std::string& stage) {
  Statement exists(*this, "SELECT 1 FROM snapshots WHERE run_id = ? AND stage = ?");
  exists.bind(1, run_id).bind(2, stage);
  if (!exists.step()) return std::nullopt;
  Statement s(*this,
              "SELECT device_uuid, device_id, device_name, grp FROM snapshot_devices "
              "WHERE run_id = ? AND stage = ? ORDER BY device_id");
  s.bind(1, run_id).bind(2, stage);
  std::vector<SnapshotDevice> out;
  while (s.step()) out.push_back({s.text(0), s.integer(1), s.text(2), s.text(3)});
  return out;
}

std::int64_t SqliteStore::record_intent(const ApiCall& c) {
  Transaction t(*this);
  fence(c.run_id);
  Statement(*this,
            "INSERT INTO api_calls (run_id, stage, kind, marker, body, devices, intent_at) "
            "VALUES (?,?,?,?,?,?,?)")
      .bind(1, c.run_id)
      .bind(2, c.stage)
      .bind(3, c.kind)
      .bind(4, c.marker)
      .bind(5, c.body)
      .bind(6, c.devices)
      .bind(7, c.intent_at)
      .run();
  const std::int64_t id = sqlite3_last_insert_rowid(db_);
  t.commit();
  return id;
}

void SqliteStore::record_outcome(std::int64_t call_id, const std::string& outcome, int http_status,
                                 const std::string& message, WallTime at) {
  Transaction t(*this);
  {
    Statement owner(*this, "SELECT run_id FROM api_calls WHERE id = ?");
    owner.bind(1, call_id);
    if (owner.step()) {
      const std::string run_id = owner.text(0);
      owner.reset();
      fence(run_id);
    }
  }
  Statement(
      *this,
      "UPDATE api_calls SET outcome = ?, http_status = ?, message = ?, outcome_at = ? WHERE id = ?")
      .bind(1, outcome)
      .bind(2, http_status)
      .bind(3, message)
      .bind(4, at)
      .bind(5, call_id)
      .run();
  t.commit();
}

namespace {
constexpr const char* kCallColumns =
    "SELECT id, run_id, stage, kind, marker, body, devices, intent_at, outcome, http_status, "
    "message, outcome_at FROM api_calls";
}

std::vector<ApiCall> SqliteStore::read_calls(Statement& s) {
  std::vector<ApiCall> out;
  while (s.step()) {
    out.push_back({s.integer(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5),
                   s.integer(6), s.time(7), s.optional_text(8), static_cast<int>(s.integer(9)),
                   s.text(10), s.optional_time(11)});
  }
  return out;
}

std::vector<ApiCall> SqliteStore::load_calls(const std::string& run_id) {
  Statement s(*this, fmt::format("{} WHERE run_id = ? ORDER BY id", kCallColumns));
  s.bind(1, run_id);
  return read_calls(s);
}

std::vector<ApiCall> SqliteStore::load_stage_calls(const std::string& run_id,
                                                   const std::string& stage,
                                                   const std::string& kind) {
  Statement s(*this, fmt::format("{} WHERE run_id = ? AND stage = ? AND kind = ? ORDER BY id",
                                 kCallColumns));
  s.bind(1, run_id).bind(2, stage).bind(3, kind);
  return read_calls(s);
}

void SqliteStore::add_observation(const Observation& o, const DeviceChanges& changed) {
  Transaction t(*this);
  fence(o.run_id);
  if (changed.count > 0) {
    Statement put(*this,
                  "INSERT OR REPLACE INTO device_states (run_id, stage, device_uuid, update_id, "
                  "status, since, online, online_at) VALUES (?,?,?,?,?,?,?,?)");
    for (std::size_t i = 0; i < changed.count; ++i) {
      const DeviceState d = changed.at(i);
      put.bind(1, o.run_id)
          .bind(2, o.stage)
          .bind(3, d.uuid)
          .bind(4, d.update_id)
          .bind(5, d.status)
          .bind(6, d.since)
          .bind(7, d.online)
          .bind(8, d.online_at)
          .run();
      put.reset();
    }
  }
  Statement(
      *this,
      "INSERT INTO observations (run_id, stage, at, elapsed_ms, targeted, pending, in_progress, "
      "success, failed, aborted, missing, verdict, reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)")
      .bind(1, o.run_id)
      .bind(2, o.stage)
      .bind(3, o.at)
      .bind(4, o.elapsed_ms)
      .bind(5, o.targeted)
      .bind(6, o.pending)
      .bind(7, o.in_progress)
      .bind(8, o.success)
      .bind(9, o.failed)
      .bind(10, o.aborted)
      .bind(11, o.missing)
      .bind(12, o.verdict)
      .bind(13, o.reason)
      .run();
  t.commit();
}

std::vector<Observation> SqliteStore::load_observations(const std::string& run_id) {
  Statement s(
      *this,
      "SELECT run_id, stage, at, elapsed_ms, targeted, pending, in_progress, success, failed, "
      "aborted, missing, verdict, reason FROM observations WHERE run_id = ? ORDER BY id");
  s.bind(1, run_id);
  std::vector<Observation> out;
  while (s.step()) {
    out.push_back({s.text(0), s.text(1), s.time(2), s.integer(3), s.integer(4), s.integer(5),
                   s.integer(6), s.integer(7), s.integer(8), s.integer(9), s.integer(10),
                   s.text(11), s.text(12)});
  }
  return out;
}

std::vector<DeviceState> SqliteStore::load_device_states(const std::string& run_id) {
  Statement s(*this,
              "SELECT d.stage, d.device_uuid, d.device_name, d.grp, s.update_id, s.status, "
              "s.since, s.online, s.online_at FROM snapshot_devices d "
              "JOIN stages g ON g.run_id = d.run_id AND g.name = d.stage "
              "LEFT JOIN device_states s ON s.run_id = d.run_id AND s.stage = d.stage "
              "AND s.device_uuid = d.device_uuid "
              "WHERE d.run_id = ? ORDER BY g.position, d.device_id");
  s.bind(1, run_id);
  std::vector<DeviceState> out;
  while (s.step()) {
    DeviceState d{s.text(0), s.text(1), s.text(2), s.text(3),         s.integer(4),
                  s.text(5), s.time(6), s.text(7), s.optional_time(8)};
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<DeviceState> SqliteStore::load_stage_device_states(const std::string& run_id,
                                                               const std::string& stage) {
  Statement s(*this,
              "SELECT device_uuid, update_id, status, since, online, online_at FROM device_states "
              "WHERE run_id = ? AND stage = ?");
  s.bind(1, run_id).bind(2, stage);
  std::vector<DeviceState> out;
  while (s.step()) {
    out.push_back({stage, s.text(0), "", "", s.integer(1), s.text(2), s.time(3), s.text(4),
                   s.optional_time(5)});
  }
  return out;
}

void SqliteStore::add_approval(const Approval& a) {
  Transaction t(*this);
  Statement(*this, "INSERT INTO approvals (run_id, stage, by_user, at, comment) VALUES (?,?,?,?,?)")
      .bind(1, a.run_id)
      .bind(2, a.stage)
      .bind(3, a.by)
      .bind(4, a.at)
      .bind(5, a.comment)
      .run();
  t.commit();
}

std::vector<Approval> SqliteStore::load_approvals(const std::string& run_id) {
  Statement s(*this,
              "SELECT run_id, stage, by_user, at, comment FROM approvals WHERE run_id = ? ORDER BY "
              "at, rowid");
  s.bind(1, run_id);
  std::vector<Approval> out;
  while (s.step()) out.push_back({s.text(0), s.text(1), s.text(2), s.time(3), s.text(4)});
  return out;
}

void SqliteStore::add_event(const Event& e) {
  Transaction t(*this);
  fence(e.run_id);
  Statement(*this, "INSERT INTO events (run_id, at, stage, kind, message) VALUES (?,?,?,?,?)")
      .bind(1, e.run_id)
      .bind(2, e.at)
      .bind(3, e.stage)
      .bind(4, e.kind)
      .bind(5, e.message)
      .run();
  t.commit();
}

std::vector<Event> SqliteStore::load_events(const std::string& run_id) {
  Statement s(
      *this,
      "SELECT id, run_id, at, stage, kind, message FROM events WHERE run_id = ? ORDER BY id");
  s.bind(1, run_id);
  std::vector<Event> out;
  while (s.step())
    out.push_back({s.integer(0), s.text(1), s.time(2), s.text(3), s.text(4), s.text(5)});
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
