#include <doctest/doctest.h>

#include <poll.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <fmt/format.h>
#include <sqlite3.h>

#include "store/migrations.h"
#include "store/postgres_store.h"
#include "store/sqlite_store.h"
#include "test_state.h"

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

TEST_SUITE_BEGIN("sqlite");

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
    const std::string known =
        fmt::format("newer than this rollout knows ({})", store::sqlite_migrations().size());
    CHECK(std::string(e.what()).find("has schema version 99, " + known) != std::string::npos);
  }
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr);
  sqlite3_step(st);
  CHECK(sqlite3_column_int(st, 0) == 99);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_CASE("an event kind this rollout does not know is refused by name when read back") {
  auto path = temp_db("kind");
  {
    store::SqliteStore s(path.string());
    state::RunRecord run;
    run.id = "r-1";
    run.plan_name = "p";
    run.created_at = run.updated_at = WallTime(std::chrono::hours(24 * 365 * 57));
    s.create_run(run, {}, nullptr);
    s.add_event({0, "r-1", run.created_at, "", state::EventKind::pause, "paused"});
    REQUIRE(s.load_events("r-1").size() == 1);
    CHECK(s.load_events("r-1")[0].kind == state::EventKind::pause);
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_exec(db, "UPDATE events SET kind = 'teleported'", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  store::SqliteStore s(path.string());
  try {
    s.load_events("r-1");
    FAIL("an unknown kind must not be taken for another");
  } catch (const store::StoreError& e) {
    CHECK(std::string(e.what()).find("holds 'teleported', which this rollout does not know") !=
          std::string::npos);
  }
}

TEST_SUITE_END();

// From here on, every test runs on SQLite and, as `unit_pg`, on PostgreSQL (test_state.h).

TEST_CASE("runs, stages, calls and leases round-trip") {
  auto owned = test::fresh_store();
  store::SqlStore& s = *owned;
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
  call.kind = state::CallKind::dispatch;
  call.marker = "[m]";
  call.body = "{}";
  call.intent_at = t;
  const auto id = s.record_intent(call);
  CHECK_FALSE(s.load_calls("r-1")[0].outcome);
  s.record_outcome(id, state::CallOutcome::accepted, 200, "", t + 1s);
  CHECK(s.load_calls("r-1")[0].outcome == state::CallOutcome::accepted);

  // An observation with a lost device: counted apart, and the device's row keeps what a
  // resumed gate needs (last read online, lost since, seen in progress).
  state::Observation o{"r-1", "a", t, 0, 2, 0, 0, 1, 0, 0, 0, state::Verdict::wait, "", 1};
  state::DeviceState lost;
  lost.stage = "a";
  lost.uuid = "d-1";
  lost.update_id = 7;
  lost.status = state::DeviceStatus::pending;
  lost.since = t;
  lost.online = state::Online::offline;
  lost.online_at = t + 2s;
  lost.online_last = t + 1s;
  lost.lost_at = t + 2s;
  lost.started = true;
  s.add_observation(o, {1, [&](std::size_t) { return lost; }});
  CHECK(s.load_observations("r-1").at(0).lost == 1);
  const auto rows = s.load_stage_device_states("r-1", "a");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].online_last == t + 1s);
  CHECK(rows[0].lost_at == t + 2s);
  CHECK(rows[0].started);

  const state::LeaseOwner me{"h1", 10, "alice"}, other{"h2", 20, "bob"};
  CHECK_FALSE(s.acquire_lease("r-1", me, t, 30s));
  auto held = s.acquire_lease("r-1", other, t + 10s, 30s);
  REQUIRE(held);
  CHECK(held->owner == me);
  CHECK_FALSE(s.acquire_lease("r-1", other, t + 31s, 30s));  // stale: taken over
  CHECK(s.lease("r-1")->owner == other);
}

namespace {

state::RunRecord run_record(const std::string& id, const std::string& plan,
                            std::vector<std::string> targets, WallTime t) {
  state::RunRecord run;
  run.id = id;
  run.plan_name = plan;
  run.plan_path = plan + ".yaml";
  run.created_at = run.updated_at = t;
  run.targets = std::move(targets);
  return run;
}

state::ApiCall dispatch_call(const std::string& run, const std::string& stage, WallTime t) {
  state::ApiCall call;
  call.run_id = run;
  call.stage = stage;
  call.kind = state::CallKind::dispatch;
  call.body = "{}";
  call.intent_at = t;
  return call;
}

state::StageRecord stage_record(const std::string& run, const std::string& name) {
  state::StageRecord s;
  s.run_id = run;
  s.name = name;
  return s;
}

}  // namespace

// Two processes on one state file: the first is frozen past its lease, the second takes
// the run over. Every write of the first then fails, in its own transaction, and leaves
// nothing behind; the second's work goes on.
TEST_CASE("a pause holds until it is lifted; a new pause replaces the old one") {
  auto owned = test::fresh_store();
  store::SqlStore& s = *owned;
  const WallTime t = WallTime(std::chrono::milliseconds(1'700'000'000'123));
  CHECK_FALSE(s.pause_request("r-1"));
  s.request_pause("r-1", {"carol", t, "dashboards look odd"});
  const auto held = s.pause_request("r-1");
  REQUIRE(held);
  CHECK(held->by == "carol");
  CHECK(held->at == t);
  CHECK(held->comment == "dashboards look odd");
  CHECK_FALSE(s.pause_request("r-2"));
  s.lift_pause("r-1", "dave", t + std::chrono::seconds(1));
  CHECK_FALSE(s.pause_request("r-1"));
  s.lift_pause("r-1", "erin", t + std::chrono::seconds(2));  // nothing to lift: no error
  s.request_pause("r-1", {"frank", t + std::chrono::seconds(3), ""});
  REQUIRE(s.pause_request("r-1"));
  CHECK(s.pause_request("r-1")->by == "frank");
}

TEST_CASE("a process whose lease was taken over writes nothing more") {
  const std::string where = test::fresh_state_location("fencing");
  const WallTime t = WallTime(std::chrono::milliseconds(1'700'000'000'000));
  auto first_store = store::open_state(where, true), second_store = store::open_state(where, true);
  store::SqlStore &first = *first_store, &second = *second_store;
  const state::LeaseOwner frozen{"h1", 10, "alice"}, resumer{"h2", 20, "bob"};
  first.create_run(run_record("r-1", "p", {"Demo/eu"}, t), {stage_record("r-1", "eu")});
  REQUIRE_FALSE(first.acquire_lease("r-1", frozen, t, 30s));
  CHECK(first.lease("r-1")->generation == 1);
  first.heartbeat("r-1", frozen, t + 5s);
  CHECK_FALSE(first.check_lease("r-1"));

  // Stale 30 s after the last heartbeat: taken over.
  CHECK(second.acquire_lease("r-1", resumer, t + 20s, 30s));
  REQUIRE_FALSE(second.acquire_lease("r-1", resumer, t + 36s, 30s));
  CHECK(second.lease("r-1")->generation == 2);

  const state::ApiCall call = dispatch_call("r-1", "eu", t);
  const auto expect_lost = [&](auto write) {
    try {
      write();
      FAIL("a write of a process that lost its lease went through");
    } catch (const state::LeaseLost& e) {
      REQUIRE(e.holder);
      CHECK(e.holder->owner == resumer);
      CHECK(std::string(e.what()).find("taken over by bob@h2 (pid 20)") != std::string::npos);
    }
  };
  expect_lost([&] { first.record_intent(call); });
  expect_lost([&] { first.heartbeat("r-1", frozen, t + 40s); });
  expect_lost([&] { first.add_event({0, "r-1", t, "eu", state::EventKind::dispatch, "x"}); });
  expect_lost([&] { first.save_snapshot("r-1", "eu", {}); });
  expect_lost([&] { first.update_stage(stage_record("r-1", "eu")); });
  expect_lost([&] { first.set_run_status("r-1", state::RunStatus::completed, "", t, true); });
  state::Observation observation;
  observation.run_id = "r-1";
  observation.stage = "eu";
  expect_lost([&] { first.add_observation(observation, {}); });
  auto why = first.check_lease("r-1");
  REQUIRE(why);
  CHECK(why->find("taken over by bob@h2") != std::string::npos);

  const auto id = second.record_intent(call);
  expect_lost([&] { first.record_outcome(id, state::CallOutcome::accepted, 200, "", t); });
  second.record_outcome(id, state::CallOutcome::accepted, 200, "", t);
  CHECK(second.load_calls("r-1").size() == 1);
  CHECK(second.load_events("r-1").empty());
  CHECK_FALSE(second.load_snapshot("r-1", "eu"));

  // The first's release does not end the second's lease; the second's does.
  first.release_lease("r-1", frozen);
  CHECK(second.lease("r-1")->owner == resumer);
  second.release_lease("r-1", resumer);
  CHECK_FALSE(second.lease("r-1"));
  // Generations never repeat, even after a release.
  REQUIRE_FALSE(first.acquire_lease("r-1", frozen, t + 60s, 30s));
  CHECK(first.lease("r-1")->generation == 3);
  CHECK(test::integrity_ok(first));
}

TEST_CASE("a new run is refused beside a live run of the same plan or a shared target") {
  auto owned = test::fresh_store();
  store::SqlStore& s = *owned;
  const WallTime t = WallTime(std::chrono::milliseconds(1'700'000'000'000));
  const state::RunClaim first{{"h1", 10, "alice"}, t, 30s, false};
  REQUIRE_FALSE(s.create_run(run_record("r-1", "europe", {"Demo/eu", "Demo/us"}, t),
                             {stage_record("r-1", "eu")}, &first));
  CHECK(s.lease("r-1")->owner.pid == 10);

  const state::RunClaim next{{"h2", 20, "bob"}, t + 1s, 30s, false};
  auto same_plan = s.create_run(run_record("r-2", "europe", {"Other/x"}, t), {}, &next);
  REQUIRE(same_plan);
  CHECK(same_plan->run.id == "r-1");
  CHECK(same_plan->why == "it runs the same plan 'europe'");
  CHECK_FALSE(s.load_run("r-2"));  // nothing written

  auto shared = s.create_run(run_record("r-3", "other", {"Demo/us"}, t), {}, &next);
  REQUIRE(shared);
  CHECK(shared->why == "both target Demo/us");
  auto project_wide = s.create_run(run_record("r-4", "all", {"Demo/*"}, t), {}, &next);
  REQUIRE(project_wide);
  CHECK(project_wide->why == "it targets Demo/eu, and this plan Demo/*");

  // Other targets, an explicit override, or a stale lease: allowed.
  CHECK_FALSE(s.create_run(run_record("r-5", "other", {"Demo/asia", "Other/*"}, t), {}, &next));
  const state::RunClaim forced{{"h2", 21, "bob"}, t + 1s, 30s, true};
  CHECK_FALSE(s.create_run(run_record("r-6", "europe", {"Demo/eu"}, t), {}, &forced));
  const state::RunClaim later{{"h2", 22, "bob"}, t + 2min, 30s, false};
  CHECK_FALSE(s.create_run(run_record("r-7", "europe", {"Demo/eu"}, t), {}, &later));
}

TEST_CASE("a run that goes on is refused beside a live one; a dead owner holds nothing back") {
  auto owned = test::fresh_store();
  store::SqlStore& s = *owned;
  const WallTime t = WallTime(std::chrono::milliseconds(1'700'000'000'000));
  const state::RunClaim alice{{"h1", 10, "alice"}, t, 30s, false};
  const auto old_run = run_record("r-old", "europe", {"Demo/eu"}, t);
  REQUIRE_FALSE(s.create_run(old_run, {stage_record("r-old", "eu")}, &alice));
  s.release_lease("r-old", alice.owner);  // interrupted: nobody runs it
  const state::RunClaim bob{{"h1", 20, "bob"}, t + 1s, 30s, false};
  REQUIRE_FALSE(s.create_run(run_record("r-new", "europe", {"Demo/eu"}, t), {}, &bob));

  // Resuming the old run while the new one is live: refused, naming the new one; itself is
  // never its own conflict; the override allows it.
  state::RunClaim carol{{"h1", 30, "carol"}, t + 2s, 30s, false};
  auto beside = s.live_conflict(old_run, carol);
  REQUIRE(beside);
  CHECK(beside->run.id == "r-new");
  CHECK_FALSE(s.live_conflict(*s.load_run("r-new"), carol));
  carol.allow_concurrent = true;
  CHECK_FALSE(s.live_conflict(old_run, carol));

  // The new run's process is gone from this host (its pid no longer exists): whatever its
  // heartbeat says, it holds neither a new apply nor a resume back.
  state::RunClaim dave{{"h1", 40, "dave"}, t + 3s, 30s, false};
  dave.owner_gone = [](const state::LeaseOwner& o) { return o.pid == 20; };
  CHECK_FALSE(s.live_conflict(old_run, dave));
  CHECK_FALSE(s.create_run(run_record("r-third", "europe", {"Demo/eu"}, t), {}, &dave));
}

TEST_CASE("approvals come back in the order they were given, not the order they were written") {
  auto owned = test::fresh_store();
  store::SqlStore& s = *owned;
  const WallTime t = WallTime(std::chrono::milliseconds(1'700'000'000'000));
  // A time-scaled run's records are ahead of the wall clock: an approval written later may
  // carry an earlier time than one written before it.
  s.add_approval({"r-1", "us", "bob", t + std::chrono::minutes(10), "second"});
  s.add_approval({"r-1", "eu", "alice", t, "first"});
  const auto approvals = s.load_approvals("r-1");
  REQUIRE(approvals.size() == 2);
  CHECK(approvals[0].comment == "first");
  CHECK(approvals[1].comment == "second");
}

// Two machines claim runs of the same plan at the same moment: one wins, the other is told
// who holds it, however the two interleave. On PostgreSQL that rests on the claims' lock.
TEST_CASE("of two processes racing to start runs of one plan, exactly one starts") {
  const std::string where = test::fresh_state_location("race");
  auto a = store::open_state(where, true), b = store::open_state(where, true);
  const WallTime t = WallTime(std::chrono::milliseconds(1'700'000'000'000));
  for (int round = 0; round < 20; ++round) {
    const std::string plan = fmt::format("plan-{}", round);
    std::atomic<int> ready{0};
    std::optional<state::RunConflict> lost_a, lost_b;
    const auto claim = [&](store::SqlStore& s, const std::string& id, std::int64_t pid,
                           std::optional<state::RunConflict>& lost) {
      const state::RunClaim c{{fmt::format("h{}", pid), pid, "u"}, t, 30s, false};
      ++ready;
      while (ready < 2) {
      }
      lost = s.create_run(run_record(id, plan, {"Demo/eu"}, t), {stage_record(id, "eu")}, &c);
    };
    std::thread first([&] { claim(*a, plan + "-a", 1, lost_a); });
    std::thread second([&] { claim(*b, plan + "-b", 2, lost_b); });
    first.join();
    second.join();
    CHECK((lost_a.has_value() != lost_b.has_value()));  // exactly one was refused
    // The refused one wrote nothing; the other holds a lease that says who it is.
    const std::string winner = lost_a ? plan + "-b" : plan + "-a";
    const std::string loser = lost_a ? plan + "-a" : plan + "-b";
    CHECK(a->load_run(winner));
    CHECK_FALSE(a->load_run(loser));
    REQUIRE(a->lease(winner));
    CHECK(a->lease(winner)->generation == 1);
    // Both end their leases for the next round's plan to be free.
    a->release_lease(winner, a->lease(winner)->owner);
  }
}

TEST_CASE("a PostgreSQL URL with a password is refused, and no message shows it") {
  for (const char* url : {"postgresql://ops:s3cret@db.example:5432/rollout",
                          "postgres://db.example/rollout?sslmode=require&password=s3cret",
                          "postgresql://ops@db.example/rollout?sslpassword=s3cret"}) {
    const auto why = store::postgres_url_refusal(url);
    REQUIRE(why);
    CHECK(why->find("s3cret") == std::string::npos);
    CHECK(why->find("PGPASSWORD") != std::string::npos);
    CHECK(store::redact_postgres_url(url).find("s3cret") == std::string::npos);
    try {
      auto s = store::open_state(url, false, std::chrono::seconds(0));
      FAIL("a URL with a password was used");
    } catch (const store::StoreError& e) {
      CHECK(std::string(e.what()).find("s3cret") == std::string::npos);
    }
  }
  CHECK_FALSE(
      store::postgres_url_refusal("postgresql://ops@db.example:5432/rollout?sslmode=verify-full"));
  CHECK_FALSE(store::postgres_url_refusal("postgresql://db.example/rollout"));
  CHECK(store::redact_postgres_url("postgresql://ops:pw@h/db") == "postgresql://ops:***@h/db");
  CHECK(store::is_postgres_url("postgres://h/db"));
  CHECK_FALSE(store::is_postgres_url("rollout.db"));
  CHECK_FALSE(store::is_postgres_url("./postgresql://x"));
}

#if ROLLOUT_WITH_POSTGRESQL
TEST_SUITE_BEGIN("postgresql");

TEST_CASE("PostgreSQL: a database from a newer rollout is refused and left alone") {
  const std::string url = test::new_postgres_database();
  { store::PostgresStore s(url); }
  PGconn* c = PQconnectdb(url.c_str());
  PQclear(PQexec(c, "UPDATE rollout_schema SET version = 99"));
  try {
    store::PostgresStore s(url);
    FAIL("a newer schema must be refused");
  } catch (const store::StoreError& e) {
    CHECK(std::string(e.what()).find(
              fmt::format("has schema version 99, newer than this rollout knows ({})",
                          store::PostgresStore::latest_schema_version())) != std::string::npos);
  }
  PGresult* r = PQexec(c, "SELECT version FROM rollout_schema");
  CHECK(std::string(PQgetvalue(r, 0, 0)) == "99");
  PQclear(r);
  PQfinish(c);
  CHECK(store::PostgresStore::latest_schema_version() ==
        store::SqliteStore::latest_schema_version());
}

TEST_CASE("PostgreSQL: an approval, an abort request or a pause wakes a waiting process at once") {
  const std::string url = test::new_postgres_database();
  store::PostgresStore running(url), elsewhere(url);
  const int fd = running.news_fd();
  REQUIRE(fd >= 0);
  const auto wait_readable = [&] {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 5000) == 1;
  };
  const WallTime t = WallTime(std::chrono::milliseconds(1'700'000'000'000));
  elsewhere.add_approval({"r-1", "us", "bob", t, ""});
  REQUIRE(wait_readable());
  CHECK(running.news_for("r-1"));
  CHECK_FALSE(running.news_for("r-1"));  // taken
  elsewhere.request_abort("r-2", {true, "carol", t});
  REQUIRE(wait_readable());
  CHECK_FALSE(running.news_for("r-1"));
  CHECK(running.news_for("r-2"));
  elsewhere.request_pause("r-3", {"dave", t, ""});
  REQUIRE(wait_readable());
  CHECK(running.news_for("r-3"));
}

namespace {

// Ends the server processes that serve this test's database (not the other suites' on the
// same server), as a server restart or a network cut would end its connections.
void end_connections(const std::string& url) {
  PGconn* admin = PQconnectdb(url.c_str());
  PQclear(PQexec(admin,
                 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                 "application_name = 'rollout' AND pid <> pg_backend_pid() AND "
                 "datname = current_database()"));
  PQfinish(admin);
}

}  // namespace

TEST_CASE("PostgreSQL: a connection the server ended is made again before the next write") {
  const std::string url = test::new_postgres_database();
  store::PostgresStore s(url);  // --state-retry's default
  const WallTime t = WallTime(std::chrono::milliseconds(1'700'000'000'000));
  const state::RunClaim claim{{"h1", 10, "alice"}, t, 30s, false};
  REQUIRE_FALSE(
      s.create_run(run_record("r-1", "p", {"Demo/eu"}, t), {stage_record("r-1", "eu")}, &claim));
  end_connections(url);
  // The write goes through on a new connection, fenced as ever; so do reads and the check
  // before a send, with the statements prepared again.
  const std::int64_t id = s.record_intent(dispatch_call("r-1", "eu", t));
  CHECK(id > 0);
  end_connections(url);
  CHECK(s.load_calls("r-1").size() == 1);
  end_connections(url);
  CHECK_FALSE(s.check_lease("r-1"));
  CHECK(s.load_stage_calls("r-1", "eu", state::CallKind::dispatch).size() == 1);
}

TEST_CASE(
    "PostgreSQL: with --state-retry 0s, a connection the server ended stops writes and sends") {
  const std::string url = test::new_postgres_database();
  store::PostgresStore s(url, 30s, 0s);
  const WallTime t = WallTime(std::chrono::milliseconds(1'700'000'000'000));
  const state::RunClaim claim{{"h1", 10, "alice"}, t, 30s, false};
  REQUIRE_FALSE(
      s.create_run(run_record("r-1", "p", {"Demo/eu"}, t), {stage_record("r-1", "eu")}, &claim));
  CHECK_FALSE(s.check_lease("r-1"));
  end_connections(url);
  const state::ApiCall call = dispatch_call("r-1", "eu", t);
  CHECK_THROWS_WITH_AS(s.record_intent(call), doctest::Contains("lost the connection"),
                       store::StoreError);
  const auto why = s.check_lease("r-1");
  REQUIRE(why);
  CHECK(why->find("connection") != std::string::npos);
}

TEST_CASE("PostgreSQL: a server that stops answering is an error within the timeout, not a hang") {
  const std::string url = test::new_postgres_database();
  store::PostgresStore s(url, 1s, 0s);
  const WallTime t = WallTime(std::chrono::milliseconds(1'700'000'000'000));
  const state::RunClaim claim{{"h1", 10, "alice"}, t, 30s, false};
  REQUIRE_FALSE(
      s.create_run(run_record("r-1", "p", {"Demo/eu"}, t), {stage_record("r-1", "eu")}, &claim));
  // Freeze the server process that serves this store (SIGSTOP: it accepts, never answers).
  PGconn* admin = PQconnectdb(url.c_str());
  PGresult* r = PQexec(admin,
                       "SELECT pid FROM pg_stat_activity WHERE application_name = 'rollout' AND "
                       "datname = current_database()");
  REQUIRE(PQntuples(r) == 1);
  const pid_t backend = std::atoi(PQgetvalue(r, 0, 0));
  PQclear(r);
  PQfinish(admin);
  REQUIRE(::kill(backend, SIGSTOP) == 0);
  const state::ApiCall call = dispatch_call("r-1", "eu", t);
  const auto started = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH_AS(s.record_intent(call), doctest::Contains("did not answer within 1 s"),
                       store::StoreError);
  CHECK(std::chrono::steady_clock::now() - started < 5s);
  // Given up: the last check before a send says so, at once.
  const auto why = s.check_lease("r-1");
  REQUIRE(why);
  ::kill(backend, SIGCONT);
}

TEST_CASE("PostgreSQL: text PostgreSQL cannot hold (NUL) is kept readable, not refused") {
  auto owned = test::fresh_store();
  const WallTime t = WallTime(std::chrono::milliseconds(1'700'000'000'000));
  owned->add_approval({"r-1", "us", std::string("bo\0b", 4), t, "\xff"});
  const auto approvals = owned->load_approvals("r-1");
  REQUIRE(approvals.size() == 1);
  CHECK(approvals[0].by ==
        "bo\xEF\xBF\xBD"
        "b");
  CHECK(approvals[0].comment == "\xEF\xBF\xBD");
}

TEST_SUITE_END();
#else
TEST_CASE("a build without PostgreSQL refuses a postgresql:// state by name") {
  try {
    auto s =
        store::open_state("postgresql://ops@db.example/rollout", false, std::chrono::seconds(0));
    FAIL("opened");
  } catch (const store::StoreError& e) {
    CHECK(std::string(e.what()).find("built without PostgreSQL support") != std::string::npos);
  }
}
#endif
