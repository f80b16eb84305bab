// The run's records: runs, stages, snapshots, calls, observations, device states,
// approvals, events. Every write of a run's process is fenced by its lease.
#include "store/sql_store.h"
#include "store/statement.h"

namespace rollout::store {

using namespace state;

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

}  // namespace

std::optional<RunConflict> SqlStore::create_run(const RunRecord& r,
                                                const std::vector<StageRecord>& stages,
                                                const RunClaim* claim) {
  Transaction t(*this);
  if (claim) db_->serialize_claims();
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

RunRecord read_run(const SqlStore::Statement& s) {
  return {s.text(0),
          s.text(1),
          s.text(2),
          s.text(3),
          s.text(4),
          s.text(5),
          s.text(6),
          s.text(7),
          s.word<RunStatus>(8),
          s.text(9),
          s.time(10),
          s.time(11),
          s.optional_time(12),
          split_lines(s.text(13))};
}

}  // namespace

std::optional<RunRecord> SqlStore::load_run(const std::string& id) {
  Statement s(*this, fmt::format("{} WHERE id = ?", kRunColumns));
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return read_run(s);
}

std::vector<RunRecord> SqlStore::list_runs() {
  Statement s(*this, fmt::format("{} ORDER BY created_at, id", kRunColumns));
  std::vector<RunRecord> out;
  while (s.step()) {
    out.push_back(read_run(s));
  }
  return out;
}

void SqlStore::set_run_status(const std::string& id, RunStatus status, const std::string& reason,
                              WallTime at, bool finished) {
  Transaction t(*this);
  fence(id);
  put_run_status(id, {status, reason, at, finished});
  t.commit();
}

void SqlStore::put_run_status(const std::string& id, const RunStatusChange& c) {
  Statement(*this,
            "UPDATE runs SET status = ?, reason = ?, updated_at = ?, finished_at = ? WHERE id = ?")
      .bind(1, c.status)
      .bind(2, c.reason)
      .bind(3, c.at)
      .bind(4, c.finished ? std::optional<WallTime>(c.at) : std::nullopt)
      .bind(5, id)
      .run();
}

std::vector<StageRecord> SqlStore::load_stages(const std::string& run_id) {
  Statement s(
      *this,
      "SELECT run_id, name, position, status, reason, started_at, dispatched_at, finished_at "
      "FROM stages WHERE run_id = ? ORDER BY position");
  s.bind(1, run_id);
  std::vector<StageRecord> out;
  while (s.step()) {
    out.push_back({s.text(0), s.text(1), static_cast<int>(s.integer(2)), s.word<StageStatus>(3),
                   s.text(4), s.optional_time(5), s.optional_time(6), s.optional_time(7)});
  }
  return out;
}

void SqlStore::update_stage(const StageRecord& st) {
  Transaction t(*this);
  fence(st.run_id);
  put_stage(st);
  t.commit();
}

void SqlStore::put_stage(const StageRecord& st) {
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
}

void SqlStore::save_snapshot(const std::string& run_id, const std::string& stage,
                             const std::vector<SnapshotDevice>& devices) {
  Transaction t(*this);
  fence(run_id);
  put_snapshot(run_id, stage, devices);
  t.commit();
}

void SqlStore::put_snapshot(const std::string& run_id, const std::string& stage,
                            const std::vector<SnapshotDevice>& devices) {
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
}

std::optional<std::vector<SnapshotDevice>> SqlStore::load_snapshot(const std::string& run_id,
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

std::int64_t SqlStore::record_intent(const ApiCall& c) {
  Transaction t(*this);
  fence(c.run_id);
  const std::int64_t id = put_intent(c);
  t.commit();
  return id;
}

std::int64_t SqlStore::put_intent(const ApiCall& c) {
  Statement insert(*this,
                   "INSERT INTO api_calls (run_id, stage, kind, marker, body, devices, intent_at) "
                   "VALUES (?,?,?,?,?,?,?) RETURNING id");
  insert.bind(1, c.run_id)
      .bind(2, c.stage)
      .bind(3, c.kind)
      .bind(4, c.marker)
      .bind(5, c.body)
      .bind(6, c.devices)
      .bind(7, c.intent_at);
  std::int64_t id = 0;
  if (insert.step()) id = insert.integer(0);
  insert.run();
  return id;
}

void SqlStore::record_outcome(std::int64_t call_id, CallOutcome outcome, int http_status,
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
  put_outcome({call_id, outcome, http_status, message, at});
  t.commit();
}

void SqlStore::put_outcome(const CallResult& r) {
  Statement(
      *this,
      "UPDATE api_calls SET outcome = ?, http_status = ?, message = ?, outcome_at = ? WHERE id = ?")
      .bind(1, r.outcome)
      .bind(2, r.http_status)
      .bind(3, r.message)
      .bind(4, r.at)
      .bind(5, r.call_id)
      .run();
}

namespace {
constexpr const char* kCallColumns =
    "SELECT id, run_id, stage, kind, marker, body, devices, intent_at, outcome, http_status, "
    "message, outcome_at FROM api_calls";
}

std::vector<ApiCall> SqlStore::read_calls(Statement& s) {
  std::vector<ApiCall> out;
  while (s.step()) {
    out.push_back({s.integer(0), s.text(1), s.text(2), s.word<CallKind>(3), s.text(4), s.text(5),
                   s.integer(6), s.time(7), s.optional_word<CallOutcome>(8),
                   static_cast<int>(s.integer(9)), s.text(10), s.optional_time(11)});
  }
  return out;
}

std::vector<ApiCall> SqlStore::load_calls(const std::string& run_id) {
  Statement s(*this, fmt::format("{} WHERE run_id = ? ORDER BY id", kCallColumns));
  s.bind(1, run_id);
  return read_calls(s);
}

std::vector<ApiCall> SqlStore::load_stage_calls(const std::string& run_id, const std::string& stage,
                                                CallKind kind) {
  Statement s(*this, fmt::format("{} WHERE run_id = ? AND stage = ? AND kind = ? ORDER BY id",
                                 kCallColumns));
  s.bind(1, run_id).bind(2, stage).bind(3, kind);
  return read_calls(s);
}

void SqlStore::add_observation(const Observation& o, const DeviceChanges& changed) {
  Transaction t(*this);
  fence(o.run_id);
  put_observation(o, changed);
  t.commit();
}

// The rows of the devices that changed, under `key`: a stage's gate, or its rollback's check.
void SqlStore::put_device_states(const std::string& run_id, const std::string& key,
                                 const DeviceChanges& changed) {
  if (changed.count == 0) return;
  Statement put(*this,
                "INSERT INTO device_states (run_id, stage, device_uuid, update_id, status, "
                "since, online, online_at, online_last, lost_at, started) VALUES "
                "(?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (run_id, stage, device_uuid) DO UPDATE SET "
                "update_id = excluded.update_id, status = excluded.status, since = "
                "excluded.since, online = excluded.online, online_at = excluded.online_at, "
                "online_last = excluded.online_last, lost_at = excluded.lost_at, started = "
                "excluded.started");
  for (std::size_t i = 0; i < changed.count; ++i) {
    const DeviceState d = changed.at(i);
    put.bind(1, run_id)
        .bind(2, key)
        .bind(3, d.uuid)
        .bind(4, d.update_id)
        .bind(5, d.status)
        .bind(6, d.since)
        .bind(7, d.online ? std::string(state::name(*d.online)) : std::string())  // '': not read
        .bind(8, d.online_at)
        .bind(9, d.online_last)
        .bind(10, d.lost_at)
        .bind(11, std::int64_t{d.started})
        .run();
    put.reset();
  }
}

void SqlStore::put_observation(const Observation& o, const DeviceChanges& changed) {
  put_device_states(o.run_id, o.stage, changed);
  Statement(
      *this,
      "INSERT INTO observations (run_id, stage, at, elapsed_ms, targeted, pending, in_progress, "
      "success, failed, aborted, missing, verdict, reason, lost) VALUES "
      "(?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
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
      .bind(14, o.lost)
      .run();
}

std::vector<Observation> SqlStore::load_observations(const std::string& run_id) {
  Statement s(
      *this,
      "SELECT run_id, stage, at, elapsed_ms, targeted, pending, in_progress, success, failed, "
      "aborted, missing, verdict, reason, lost FROM observations WHERE run_id = ? ORDER BY id");
  s.bind(1, run_id);
  std::vector<Observation> out;
  while (s.step()) {
    out.push_back({s.text(0), s.text(1), s.time(2), s.integer(3), s.integer(4), s.integer(5),
                   s.integer(6), s.integer(7), s.integer(8), s.integer(9), s.integer(10),
                   s.word<Verdict>(11), s.text(12), s.integer(13)});
  }
  return out;
}

namespace {

// A device_states row's gate columns, `update_id, status, since, online, online_at,
// online_last, lost_at`, from column `at` on.
void read_gate_columns(const SqlStore::Statement& s, int at, DeviceState& d) {
  d.update_id = s.integer(at);
  d.status = s.optional_word<DeviceStatus>(at + 1);
  d.since = s.time(at + 2);
  d.online = s.optional_word<Online>(at + 3);
  d.online_at = s.optional_time(at + 4);
  d.online_last = s.optional_time(at + 5);
  d.lost_at = s.optional_time(at + 6);
}

}  // namespace

std::vector<DeviceState> SqlStore::load_device_states(const std::string& run_id) {
  Statement s(
      *this, fmt::format(
                 "SELECT d.stage, d.device_uuid, d.device_name, d.grp, s.update_id, s.status, "
                 "s.since, s.online, s.online_at, s.online_last, s.lost_at, r.update_id, r.status, "
                 "r.since FROM snapshot_devices d "
                 "JOIN stages g ON g.run_id = d.run_id AND g.name = d.stage "
                 "LEFT JOIN device_states s ON s.run_id = d.run_id AND s.stage = d.stage "
                 "AND s.device_uuid = d.device_uuid "
                 "LEFT JOIN device_states r ON r.run_id = d.run_id AND r.stage = d.stage || "
                 "'{}' AND r.device_uuid = d.device_uuid "
                 "WHERE d.run_id = ? ORDER BY g.position, d.device_id",
                 kRollbackSuffix));
  s.bind(1, run_id);
  std::vector<DeviceState> out;
  while (s.step()) {
    DeviceState d;
    d.stage = s.text(0);
    d.uuid = s.text(1);
    d.name = s.text(2);
    d.group = s.text(3);
    read_gate_columns(s, 4, d);
    d.rollback_update_id = s.integer(11);
    d.rollback_status = s.optional_word<DeviceStatus>(12);
    if (d.rollback_status) d.rollback_since = s.time(13);
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<DeviceState> SqlStore::load_stage_device_states(const std::string& run_id,
                                                            const std::string& stage) {
  Statement s(*this,
              "SELECT device_uuid, update_id, status, since, online, online_at, online_last, "
              "lost_at, started FROM device_states WHERE run_id = ? AND stage = ?");
  s.bind(1, run_id).bind(2, stage);
  std::vector<DeviceState> out;
  while (s.step()) {
    DeviceState d;
    d.stage = stage;
    d.uuid = s.text(0);
    read_gate_columns(s, 1, d);
    d.started = s.integer(8) != 0;
    out.push_back(std::move(d));
  }
  return out;
}

void SqlStore::add_approval(const Approval& a) {
  Transaction t(*this);
  Statement(*this, "INSERT INTO approvals (run_id, stage, by_user, at, comment) VALUES (?,?,?,?,?)")
      .bind(1, a.run_id)
      .bind(2, a.stage)
      .bind(3, a.by)
      .bind(4, a.at)
      .bind(5, a.comment)
      .run();
  db_->notify(a.run_id);
  t.commit();
}

std::vector<Approval> SqlStore::load_approvals(const std::string& run_id) {
  Statement s(*this, fmt::format("SELECT run_id, stage, by_user, at, comment FROM approvals WHERE "
                                 "run_id = ? ORDER BY at, {}",
                                 db_->insertion_order()));
  s.bind(1, run_id);
  std::vector<Approval> out;
  while (s.step()) out.push_back({s.text(0), s.text(1), s.text(2), s.time(3), s.text(4)});
  return out;
}

std::optional<WallTime> SqlStore::latest_record(const std::string& run_id) {
  Statement s(
      *this,
      "SELECT MAX(t) FROM (SELECT MAX(at) AS t FROM events WHERE run_id = ? "
      "UNION ALL SELECT MAX(at) FROM observations WHERE run_id = ? "
      "UNION ALL SELECT MAX(COALESCE(outcome_at, intent_at)) FROM api_calls WHERE run_id = ? "
      "UNION ALL SELECT updated_at FROM runs WHERE id = ?) AS latest");
  for (int i = 1; i <= 4; ++i) s.bind(i, run_id);
  if (!s.step()) return std::nullopt;
  return s.optional_time(0);
}

void SqlStore::add_event(const Event& e) {
  Transaction t(*this);
  fence(e.run_id);
  put_event(e);
  t.commit();
}

void SqlStore::put_event(const Event& e) {
  Statement(*this, "INSERT INTO events (run_id, at, stage, kind, message) VALUES (?,?,?,?,?)")
      .bind(1, e.run_id)
      .bind(2, e.at)
      .bind(3, e.stage)
      .bind(4, e.kind)
      .bind(5, e.message)
      .run();
}

// Within the batch, the order in which a process records them: what the calls were and
// how they ended, then what was seen, the stages, their events, the run.
std::vector<std::int64_t> SqlStore::write(const WriteBatch& b) {
  // A connection lost before the COMMIT went out took the whole transaction with it: once it
  // is made again, the batch is written again, once (a server restarting in the middle of a
  // turn is ridden out as one between turns is).
  try {
    return write_once(b);
  } catch (const StoreError&) {
    if (!db_->retry_transaction()) throw;
  }
  return write_once(b);
}

std::vector<std::int64_t> SqlStore::write_once(const WriteBatch& b) {
  if (b.empty()) return {};
  if (b.heartbeat) db_->check_alive();
  Transaction t(*this);
  fence(b.run_id);
  for (const auto& snapshot : b.snapshots) put_snapshot(b.run_id, snapshot.key, *snapshot.devices);
  std::vector<std::int64_t> ids;
  ids.reserve(b.intents.size());
  for (const ApiCall& c : b.intents) ids.push_back(put_intent(c));
  for (const CallResult& r : b.outcomes) put_outcome(r);
  for (const auto& [o, changed] : b.observations) put_observation(o, changed);
  for (const auto& [key, changed] : b.device_states) put_device_states(b.run_id, key, changed);
  for (const StageRecord& st : b.stages) put_stage(st);
  for (const Event& e : b.events) put_event(e);
  if (b.run_status) put_run_status(b.run_id, *b.run_status);
  if (b.heartbeat) put_heartbeat(b.run_id, b.heartbeat->first, b.heartbeat->second);
  t.commit();
  return ids;
}

std::vector<Event> SqlStore::load_events(const std::string& run_id) {
  Statement s(
      *this,
      "SELECT id, run_id, at, stage, kind, message FROM events WHERE run_id = ? ORDER BY id");
  s.bind(1, run_id);
  std::vector<Event> out;
  while (s.step())
    out.push_back({s.integer(0), s.text(1), s.time(2), s.text(3), s.word<EventKind>(4), s.text(5)});
  return out;
}

}  // namespace rollout::store
