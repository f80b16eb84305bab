#include "store/state_copy.h"

#include <algorithm>

#include <fmt/format.h>

#include "store/statement.h"
#include "util/sha256.h"

namespace rollout::store {

namespace {

// A table as it is copied: its columns but the id each database numbers itself, and
// whether the order of its rows is part of its content (then kept: rows are inserted in
// the source's order, so the destination numbers them in the same order).
struct TableSpec {
  const char* name;
  const char* columns;
  bool ordered;  // by id (SQLite's rowid for approvals): events, calls, observations, approvals
};

constexpr TableSpec kTables[] = {
    {"runs",
     "id, plan_name, plan_path, plan_text, plan_hash, created_by, host, api_url, status, reason, "
     "created_at, updated_at, finished_at, targets",
     false},
    {"stages", "run_id, name, position, status, reason, started_at, dispatched_at, finished_at",
     false},
    {"snapshots", "run_id, stage, taken", false},
    {"snapshot_devices", "run_id, stage, device_uuid, device_id, device_name, grp", false},
    {"api_calls",
     "run_id, stage, kind, marker, body, devices, intent_at, outcome, http_status, message, "
     "outcome_at",
     true},
    {"observations",
     "run_id, stage, at, elapsed_ms, targeted, pending, in_progress, success, failed, aborted, "
     "missing, verdict, reason, lost",
     true},
    {"approvals", "run_id, stage, by_user, at, comment", true},
    {"events", "run_id, at, stage, kind, message", true},
    {"abort_requests", "run_id, rollback, by_user, at", false},
    {"pauses", "run_id, by_user, at, comment, lifted_by, lifted_at", false},
    {"leases",
     "run_id, owner_host, owner_pid, owner_user, acquired_at, heartbeat_at, generation, "
     "released_at",
     false},
    {"device_states",
     "run_id, stage, device_uuid, update_id, status, since, online, online_at, online_last, "
     "lost_at, started",
     false},
};

using Row = std::vector<std::optional<std::string>>;

int column_count(const TableSpec& t) {
  return static_cast<int>(
             std::count(t.columns, t.columns + std::string_view(t.columns).size(), ',')) +
         1;
}

// One run's rows of a table, in the order that is part of its content.
std::vector<Row> read_rows(SqlStore& s, const TableSpec& t, const std::string& run_id) {
  const std::string key = std::string_view(t.name) == "runs" ? "id" : "run_id";
  const std::string order = t.ordered ? std::string(std::string_view(t.name) == "approvals"
                                                        ? s.database().insertion_order()
                                                        : "id")
                                      : key;
  SqlStore::Statement q(
      s, fmt::format("SELECT {} FROM {} WHERE {} = ? ORDER BY {}", t.columns, t.name, key, order));
  q.bind(1, run_id);
  const int n = column_count(t);
  std::vector<Row> rows;
  while (q.step()) {
    Row row;
    for (int c = 0; c < n; ++c) row.push_back(q.optional_text(c));
    rows.push_back(std::move(row));
  }
  // Rows without an order of their own are compared sorted: each database lists them in
  // its own order.
  if (!t.ordered) std::sort(rows.begin(), rows.end());
  return rows;
}

void add_rows(std::string& hashed, const std::vector<Row>& rows) {
  for (const Row& row : rows) {
    for (const auto& v : row) {
      hashed += v ? "v" + *v : std::string("\x01NULL");
      hashed += '\x1f';
    }
    hashed += '\x1e';
  }
}

void insert_rows(SqlStore& to, const TableSpec& t, const std::vector<Row>& rows) {
  const int n = column_count(t);
  std::string marks;
  for (int c = 0; c < n; ++c) marks += c ? ",?" : "?";
  SqlStore::Statement insert(
      to, fmt::format("INSERT INTO {} ({}) VALUES ({})", t.name, t.columns, marks));
  for (const Row& row : rows) {
    // Text into every column: each database reads a number back as its number.
    for (int c = 0; c < n; ++c) insert.bind(c + 1, row[static_cast<std::size_t>(c)]);
    insert.run();
    insert.reset();
  }
}

// Per table: its rows for `runs`, hashed in order; each row written into `into` as it is
// read, when given (the source is read once).
std::vector<CopiedTable> summarise(SqlStore& s, const std::vector<std::string>& runs,
                                   SqlStore* into = nullptr) {
  std::vector<CopiedTable> out;
  for (const TableSpec& t : kTables) {
    std::string hashed;
    std::int64_t count = 0;
    for (const std::string& run : runs) {
      const auto rows = read_rows(s, t, run);
      count += static_cast<std::int64_t>(rows.size());
      add_rows(hashed, rows);
      if (into) insert_rows(*into, t, rows);
    }
    out.push_back({t.name, count, sha256_hex(hashed)});
  }
  return out;
}

}  // namespace

CopyReport copy_state(SqlStore& from, SqlStore& to, WallTime now, Millis stale_after) {
  CopyReport report;
  for (const state::RunRecord& run : from.list_runs()) {
    if (auto lease = from.lease(run.id); lease && now - lease->heartbeat_at < stale_after) {
      throw StoreError(fmt::format(
          "run {} is being run by {}@{} (pid {}) in {}: let it end (or stop it) first; nothing "
          "was copied",
          run.id, lease->owner.user, lease->owner.host, lease->owner.pid, from.name()));
    }
    if (to.load_run(run.id)) {
      throw StoreError(
          fmt::format("run {} is in {} already: nothing was copied", run.id, to.name()));
    }
    report.runs.push_back(run.id);
  }
  SqlStore::Transaction t(to);
  report.tables = summarise(from, report.runs, &to);
  // Read back inside the transaction: it commits only as the source's exact copy.
  const auto copied = summarise(to, report.runs);
  for (std::size_t i = 0; i < copied.size(); ++i) {
    const CopiedTable &a = report.tables[i], &b = copied[i];
    if (a.rows != b.rows || a.sha256 != b.sha256) {
      throw StoreError(fmt::format(
          "the copy of table {} does not match its source ({} rows, sha256 {} in {}; {} rows, "
          "sha256 {} in the copy): nothing was copied",
          a.name, a.rows, a.sha256.substr(0, 12), from.name(), b.rows, b.sha256.substr(0, 12)));
    }
  }
  t.commit();
  return report;
}

}  // namespace rollout::store
