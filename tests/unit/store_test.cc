#include <doctest/doctest.h>

#include <filesystem>

#include <sqlite3.h>

#include "store/sqlite_store.h"

using namespace rollout;
using namespace std::chrono_literals;

namespace {
std::filesystem::path temp_db(const char* name) {
  auto p = std::filesystem::temp_directory_path() / (std::string("rollout-test-") + name + ".db");
  std::filesystem::remove(p);
  std::filesystem::remove(p.string() + "-wal");
  std::filesystem::remove(p.string() + "-shm");
  return p;
}
}  // namespace

TEST_CASE("a new database is migrated to the latest schema, in WAL mode") {
  auto path = temp_db("migrate");
  {
    store::SqliteStore s(path.string());
    CHECK(s.schema_version() == store::SqliteStore::latest_schema_version());
    CHECK(s.integrity_check() == "ok");
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))) == "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_CASE("a database from a newer rollout is refused and left alone") {
  auto path = temp_db("newer");
  { store::SqliteStore s(path.string()); }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  try {
    store::SqliteStore s(path.string());
    FAIL("a newer schema must be refused");
  } catch (const store::StoreError& e) {
    CHECK(std::string(e.what()).find("has schema version 99, newer than this rollout knows (2)") !=
          std::string::npos);
  }
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr);
  sqlite3_step(st);
  CHECK(sqlite3_column_int(st, 0) == 99);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_CASE("runs, stages, calls and leases round-trip") {
  store::SqliteStore s(":memory:");
  const WallTime t = WallTime(std::chrono::milliseconds(1'700'000'000'123));
  state::RunRecord run;
  run.id = "r-1";
  run.plan_name = "p";
  run.plan_path = "p.yaml";
  run.plan_text = "version: 1";
  run.plan_hash = "h";
  run.created_by = "alice";
  run.host = "h1";
  run.api_url = "u";
  run.created_at = run.updated_at = t;
  state::StageRecord a, b;
  a.run_id = b.run_id = "r-1";
  a.name = "a";
  b.name = "b";
  b.position = 1;
  s.create_run(run, {a, b});
  auto loaded = s.load_run("r-1");
  REQUIRE(loaded);
  CHECK(loaded->created_at == t);
  CHECK(s.load_stages("r-1").size() == 2);
  CHECK_FALSE(s.load_snapshot("r-1", "a"));
  s.save_snapshot("r-1", "a", {});
  CHECK(s.load_snapshot("r-1", "a")->empty());  // taken, and empty: not the same as not taken

  state::ApiCall call;
  call.run_id = "r-1";
  call.stage = "a";
  call.kind = "dispatch";
  call.marker = "[m]";
  call.body = "{}";
  call.intent_at = t;
  const auto id = s.record_intent(call);
  CHECK_FALSE(s.load_calls("r-1")[0].outcome);
  s.record_outcome(id, "accepted", 200, "", t + 1s);
  CHECK(s.load_calls("r-1")[0].outcome == "accepted");

  const state::LeaseOwner me{"h1", 10, "alice"}, other{"h2", 20, "bob"};
  CHECK_FALSE(s.acquire_lease("r-1", me, t, 30s));
  auto held = s.acquire_lease("r-1", other, t + 10s, 30s);
  REQUIRE(held);
  CHECK(held->owner == me);
  CHECK_FALSE(s.acquire_lease("r-1", other, t + 31s, 30s));  // stale: taken over
  CHECK(s.lease("r-1")->owner == other);
}
