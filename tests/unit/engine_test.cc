// The engine on a driven clock against FakeFleet and an in-memory state database:
// hour-long bakes pass in milliseconds, and every crash point is resumed exactly once.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "check_plan.h"
#include "engine/engine.h"
#include "engine/run.h"
#include "engine/selection.h"
#include "failing_store.h"
#include "fake_fleet.h"
#include "fleet_builder.h"
#include "forwarding_store.h"
#include "store/sqlite_store.h"
#include "test_state.h"
#include "util/asio_clock.h"
#include "words.h"

using namespace rollout;
using namespace std::chrono_literals;
using test::FakeFleet;
using test::word;

namespace {

const std::string kPlan = R"(version: 1
name: fw-3
flow_id: f-new
project: Demo
app: {name: fw, version: v3}
comment: firmware 3
defaults:
  gate: {bake: 1h, timeout: 6h, poll: 5m, min_success: 90%, max_failed: 10%}
stages:
  - name: canary
    groups: [Canary]
    gate: {min_success: 100%, max_failed: 0, bake: 2h}
  - name: eu
    needs: [canary]
    groups: [EU]
  - name: us
    needs: [canary]
    groups: [US]
  - name: everyone
    needs: [eu, us]
    filters:
      - {type: update_status, operand: is_not, value: success}
on_failure:
  action: rollback
  rollback: {flow_id: f-old, app: {name: fw, version: v2}}
)";

sim::FleetSpec fleet_spec(double canary_failure = 0.0) {
  test::FleetBuilder fleet(5);
  fleet.flows({"f-new", "f-old"})
      .group("Canary", 5, {"canary"})
      .group("EU", 20)
      .group("US", 20)
      .group("Rest", 12);
  if (canary_failure > 0) fleet.failing("Canary", canary_failure);
  return fleet;
}

struct Crash {};

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

class NullObserver : public engine::Observer {
 public:
  void on_event(const state::Event& e) override {
    kinds.push_back(e.stage + ":" + word(e.kind));
    if (hook) hook(e);
  }
  std::vector<std::string> kinds;
  std::function<void(const state::Event&)> hook;  // a test acting as an event is committed
};

// A fleet and a state database that outlive any number of engine "processes".
struct Harness {
  explicit Harness(const std::string& plan_text = kPlan, sim::FleetSpec spec = fleet_spec(),
                   WallTime start = WallTime(std::chrono::hours(24 * 365 * 50)))
      : checked(test::check_plan(plan_text)),
        now(start),
        fleet(spec, std::chrono::duration_cast<sim::Millis>(now.time_since_epoch())),
        owned_store(test::fresh_store()),
        store(*owned_store) {
    REQUIRE(checked.report == "");
    REQUIRE(checked.graph);
    engine::create_run(store, *checked.loaded.plan,
                       {"plan.yaml", plan_text, "tester", "host", "fake"}, run_id, now);
  }

  // One process: runs the engine until it ends, or until `crash_at` (the n-th time that
  // point is reached) throws, as a SIGKILL would stop it. nullopt when it crashed.
  std::optional<engine::Outcome> run(std::function<void(FakeFleet&)> script = {},
                                     std::string crash_at = {}, int crash_on = 1) {
    asio::io_context io;
    ManualClock clock(io, now);
    FakeFleet api(io, fleet, clock);
    if (script) script(api);
    engine::EngineOptions options;
    options.owner = {"host", 1, "tester"};
    options.settle_delay = settle_delay;
    int reached = 0;
    // Only the engine's own crash points (engine/markers.h): a misspelt one never crashes.
    REQUIRE((crash_at.empty() || engine::is_crash_point(crash_at)));
    engine::Engine* running = nullptr;
    options.crash_point = [&](std::string_view point) {
      CHECK(engine::is_crash_point(point));
      if (at_point && running) at_point(*running, point);
      if (point == crash_at && ++reached == crash_on) throw Crash{};
    };
    REQUIRE_FALSE(store.acquire_lease(run_id, options.owner, clock.now(), 30s));
    engine::Engine engine(io, *checked.loaded.plan, *checked.graph, api,
                          engine_store ? *engine_store : store, clock, observer, run_id, options);
    running = &engine;
    current = &engine;
    std::optional<engine::Outcome> outcome;
    bool crashed = false;
    try {
      engine.start([&](engine::Outcome o) { outcome = o; });
      // A stuck engine would spin on its heartbeat forever: a month of simulated time ends it.
      const WallTime deadline = clock.now() + std::chrono::hours(24 * 30);
      run_on_manual_clock(io, clock, [&] { return outcome.has_value() || clock.now() > deadline; });
    } catch (const Crash&) {
      crashed = true;
    } catch (const test::InjectedStoreFailure&) {
      crashed = true;  // the process ends with the error; its records stay as they were
      store_failed = true;
    }
    current = nullptr;
    now = clock.now();
    check_nothing_unknown_once_final();
    deploys_sent += api.deploys_sent;
    deploys_applied += api.deploys_applied;
    states_asked.insert(states_asked.end(), api.states_asked.begin(), api.states_asked.end());
    for (const auto& r : api.applied) {
      applied_comments.push_back(r.comment.value_or(""));
      for (const auto& f : r.filters) {
        if (f.type == upswift::FilterType::specific_device) applied_devices.push_back(f.value);
      }
    }
    if (crashed) {
      store.release_lease(run_id, options.owner);  // a stale lease: the next process takes it over
      return std::nullopt;
    }
    REQUIRE(outcome);
    return outcome;
  }

  // The invariant every run keeps, whatever ended it: a terminal run has no call whose
  // outcome is unknown (it stays resumable until each is settled).
  void check_nothing_unknown_once_final() {
    const auto run = store.load_run(run_id);
    if (!run || !state::is_final(run->status)) return;
    for (const auto& call : store.load_calls(run_id)) {
      INFO("call ", call.id, " of stage ", call.stage, " in a ", word(run->status), " run");
      CHECK_FALSE(state::unsettled(call));
    }
  }

  std::map<std::string, std::string> stage_status() {
    std::map<std::string, std::string> out;
    for (const auto& s : store.load_stages(run_id)) out[s.name] = word(s.status);
    return out;
  }

  // Per-device calls: exactly `devices` devices were sent an applied update, each once.
  void check_each_applied_once(std::size_t devices) const {
    std::map<std::string, int> per_device;
    for (const auto& d : applied_devices) ++per_device[d];
    CHECK(per_device.size() == devices);
    for (const auto& [device, n] : per_device) CHECK(n == 1);
  }

  int applied_for(const std::string& marker) {
    int n = 0;
    for (const auto& c : applied_comments) n += c.find(marker) != std::string::npos;
    return n;
  }

  test::Checked checked;
  WallTime now;
  sim::Fleet fleet;
  std::unique_ptr<store::SqlStore> owned_store;  // SQLite, or PostgreSQL (test_state.h)
  store::SqlStore& store;
  state::StateStore* engine_store = nullptr;  // the engine's view of `store`, when not itself
  // Called at each of the engine's crash points, with the engine: a signal at that moment.
  std::function<void(engine::Engine&, std::string_view)> at_point;
  bool store_failed = false;  // a run ended by an injected store failure
  NullObserver observer;
  engine::Engine* current = nullptr;  // the engine of the process running now
  Millis settle_delay = 2min;
  std::string run_id = "r-test";
  int deploys_sent = 0;
  int deploys_applied = 0;
  std::vector<std::string> applied_comments;
  std::vector<std::string> applied_devices;        // specific_device filters of applied calls
  std::vector<upswift::StatesQuery> states_asked;  // get_devices_state, in order
};

}  // namespace

state::StageRecord stage_record(Harness& h, const std::string& name) {
  for (const auto& s : h.store.load_stages(h.run_id)) {
    if (s.name == name) return s;
  }
  FAIL("no stage " << name);
  return {};
}

TEST_CASE("a four-stage plan with hour-long bakes completes on a driven clock") {
  Harness h;
  const WallTime started = h.now;
  auto outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::completed);
  CHECK(h.stage_status() ==
        std::map<std::string, std::string>{
            {"canary", "passed"}, {"eu", "passed"}, {"us", "passed"}, {"everyone", "passed"}});
  CHECK(h.deploys_sent == 4);
  for (const char* stage : {"canary", "eu", "us", "everyone"}) {
    CHECK(h.applied_for(engine::dispatch_marker("r-test", stage)) == 1);
  }
  // Simulated time: canary bakes 2h, eu/us 1h in parallel, everyone 1h.
  CHECK(h.now - started >= 4h);
  CHECK(h.now - started < 5h);
  CHECK(word(h.store.load_run("r-test")->status) == "completed");
  // "everyone" snapshotted only the devices without a successful update: the 12 in Rest.
  CHECK(h.store.load_snapshot("r-test", "everyone")->size() == 12);
  // The comment carries the marker after the plan's comment.
  CHECK(h.applied_comments[0] == "firmware 3 [rollout r-test/canary]");
  // Gate decisions have their numbers.
  auto observations = h.store.load_observations("r-test");
  REQUIRE_FALSE(observations.empty());
  CHECK(word(observations.back().verdict) == "pass");
  CHECK(observations.back().success == 12);
}

TEST_CASE("eu and us run in parallel, unless max_parallel says one at a time") {
  Harness parallel;
  REQUIRE(parallel.run()->ending == engine::Ending::completed);
  auto stages = parallel.store.load_stages("r-test");
  CHECK(*stages[1].started_at == *stages[2].started_at);

  const std::string serial_plan = replaced(kPlan, "stages:", "max_parallel: 1\nstages:");
  Harness serial(serial_plan);
  REQUIRE(serial.run()->ending == engine::Ending::completed);
  auto s = serial.store.load_stages("r-test");
  CHECK(*s[2].started_at >= *s[1].finished_at);
}

TEST_CASE("a failing canary rolls back its devices and stops the run") {
  Harness h(kPlan, fleet_spec(/*canary_failure=*/0.5));
  auto outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::stopped);
  auto status = h.stage_status();
  CHECK(status["canary"] == "rolled_back");
  CHECK(status["eu"] == "waiting");
  CHECK(status["everyone"] == "waiting");
  CHECK(word(h.store.load_run("r-test")->status) == "stopped");
  // One dispatch, then one rollback call: every device of the canary (a static group) had
  // taken the update when its gate failed, so the rollback is sent to the group itself.
  CHECK(h.applied_for("[rollout r-test/canary]") == 1);
  auto targets = h.store.load_snapshot("r-test", "canary/rollback");
  REQUIRE(targets);
  CHECK(targets->size() == h.store.load_snapshot("r-test", "canary")->size());
  CHECK(h.applied_for("[rollout r-test/canary/rollback]") == 1);
  for (const auto& call : h.store.load_calls("r-test")) {
    CHECK(word(call.outcome) == "accepted");
    if (word(call.kind) == "rollback")
      CHECK(call.body.find("\"flow_id\":\"f-old\"") != std::string::npos);
  }
}

TEST_CASE("a rollback that fails on the devices is a failed rollback, never rolled back") {
  sim::FleetSpec spec = fleet_spec(/*canary_failure=*/0.5);
  spec.overrides.push_back({.group = "Canary", .flow = "f-old", .failure_rate = 1.0});
  Harness h(kPlan, spec);
  auto outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::failed);
  CHECK(outcome->next == "rollout retry r-test canary --rollback");
  CHECK(outcome->reason.find("stage canary's rollback: 0 of 5 back on fw v2, 5 failed (") !=
        std::string::npos);
  CHECK(word(h.store.load_run("r-test")->status) == "failed");
  const auto canary = stage_record(h, "canary");
  CHECK(word(canary.status) == "rollback_failed");
  CHECK(canary.reason.find("; rollback: 0 of 5 back on fw v2, 5 failed (") != std::string::npos);
  const auto& kinds = h.observer.kinds;
  CHECK(std::count(kinds.begin(), kinds.end(), "canary:rollback_failed") == 1);
  CHECK(std::count(kinds.begin(), kinds.end(), "canary:rolled_back") == 0);
  // Each device's rollback recorded beside its forward update.
  std::vector<state::SnapshotDevice> failed;
  for (const auto& d : h.store.load_device_states("r-test")) {
    if (d.stage != "canary") {
      CHECK_FALSE(d.rollback_status);
      continue;
    }
    CHECK(word(d.rollback_status) == "failed");
    CHECK(d.rollback_update_id != 0);
    CHECK(d.rollback_update_id != d.update_id);
    if (failed.size() < 2) failed.push_back({d.uuid, 0, d.name, d.group});
  }
  REQUIRE(failed.size() == 2);
  const int sent = h.deploys_sent;

  // Resumed as is: it ends failed again, sending nothing.
  auto resumed = h.run();
  REQUIRE(resumed);
  CHECK(resumed->ending == engine::Ending::failed);
  CHECK(h.deploys_sent == sent);

  // Sent again to two of them: one call each, then checked again (it fails there again).
  for (auto& d : failed) {
    const auto snapshot = *h.store.load_snapshot("r-test", "canary");
    d = *std::find_if(snapshot.begin(), snapshot.end(),
                      [&](const auto& s) { return s.uuid == d.uuid; });
  }
  CHECK(engine::prepare_rollback_retry(h.store, "r-test", "canary", failed, h.now) == 1);
  auto retried = h.run();
  REQUIRE(retried);
  CHECK(retried->ending == engine::Ending::failed);
  CHECK(h.deploys_sent == sent + 2);
  CHECK(h.applied_for("[rollout r-test/canary/rollback] (retry 1)") == 2);
  const auto again = stage_record(h, "canary");
  CHECK(word(again.status) == "rollback_failed");
  CHECK(again.reason.find("; rollback retry 1 to 2 device(s); rollback: 0 of 5 back") !=
        std::string::npos);
}

TEST_CASE("which devices: each one's update, status, since when, and online at a failed gate") {
  Harness h(kPlan, fleet_spec(/*canary_failure=*/0.5));
  REQUIRE(h.run()->ending == engine::Ending::stopped);
  const auto canary = *h.store.load_snapshot("r-test", "canary");
  const auto stage_finished = *h.store.load_stages("r-test")[0].finished_at;
  std::map<std::string, state::DeviceState> by_uuid;
  for (const auto& d : h.store.load_device_states("r-test")) {
    if (d.stage == "canary") by_uuid[d.uuid] = d;
  }
  REQUIRE(by_uuid.size() == canary.size());
  int failed = 0;
  for (const auto& device : canary) {
    const state::DeviceState& d = by_uuid[device.uuid];
    CHECK(d.name == device.name);
    CHECK(d.group == "Canary");
    CHECK(d.status.has_value());
    CHECK(d.since <= stage_finished);
    // Read at the decision, since some did not succeed.
    CHECK(d.online == state::Online::online);
    REQUIRE(d.online_at);
    if (word(d.status) == "failed") {
      ++failed;
      CHECK(d.update_id > 0);
      // The device's own update of this run carries that id.
      const auto& sim_device =
          *std::find_if(h.fleet.devices().begin(), h.fleet.devices().end(),
                        [&](const sim::SimDevice& s) { return s.uuid == device.uuid; });
      CHECK(std::any_of(sim_device.updates.begin(), sim_device.updates.end(),
                        [&](const sim::SimUpdate& u) { return u.update_id == d.update_id; }));
    }
  }
  CHECK(failed >= 1);
  // The stages never reached have no devices.
  for (const auto& d : h.store.load_device_states("r-test")) CHECK(d.stage != "eu");
}

TEST_CASE("which devices: a passing gate keeps when each device first succeeded, across a resume") {
  Harness h;
  // Killed at the canary's third poll, when some of its devices have succeeded.
  REQUIRE_FALSE(h.run({}, "after_observation", 3));
  REQUIRE(h.run()->ending == engine::Ending::completed);
  const auto devices = h.store.load_device_states("r-test");
  for (const auto& d : devices) {
    CHECK(word(d.status) == "success");
    // Online states were read while updates were under way (lost devices are looked for);
    // every device was online when last read, and none was lost.
    CHECK(d.online == state::Online::online);
    CHECK(d.online_last.has_value());
    CHECK_FALSE(d.lost_at.has_value());
  }
  // At every poll, before and after the kill, the devices recorded as successful since
  // then are exactly the successes it counted: each `since` is the first poll that saw it.
  int polls = 0;
  for (const auto& o : h.store.load_observations("r-test")) {
    const auto since_then = std::count_if(devices.begin(), devices.end(), [&](const auto& d) {
      return d.stage == o.stage && d.since <= o.at;
    });
    CHECK(since_then == o.success);
    polls += o.stage == "canary";
  }
  CHECK(polls > 3);
}

TEST_CASE("a stage with nothing left to update is skipped; one that matches nothing stops") {
  const std::string plan = R"(version: 1
name: left
flow_id: f-new
project: Demo
app: {name: fw, version: v3}
defaults:
  gate: {bake: 10m, timeout: 6h, poll: 5m, min_success: 100%, max_failed: 0}
stages:
  - name: rest
    groups: [Rest]
  - name: rest-left
    needs: [rest]
    groups: [Rest]
    filters:
      - {type: update_status, operand: is_not, value: success}
)";
  Harness h(plan);
  REQUIRE(h.run()->ending == engine::Ending::completed);
  const auto stages = h.store.load_stages("r-test");
  CHECK(word(stages[1].status) == "passed");
  CHECK(stages[1].reason ==
        "skipped: nothing left to update (its filters leave none of its 12 candidate(s))");
  CHECK(h.deploys_sent == 1);
  CHECK_FALSE(h.store.load_snapshot("r-test", "rest-left"));

  // A tag that matches nothing is a mistake, not "done": min_devices stops the run.
  Harness typo(replaced(plan, "value: success}",
                        "value: success}\n      - {type: tag, operand: is, value: nope}"));
  REQUIRE(typo.run()->ending == engine::Ending::stopped);
  CHECK(typo.store.load_stages("r-test")[1].reason.find("fewer than min_devices 1") !=
        std::string::npos);
}

TEST_CASE("an approval pauses the run; approve and resume complete it") {
  const std::string plan =
      replaced(kPlan, "    groups: [US]\n", "    groups: [US]\n    approval: required\n");
  Harness h(plan);
  auto first = h.run();
  REQUIRE(first);
  CHECK(first->ending == engine::Ending::paused);
  CHECK(first->reason == "waiting for us (approval)");
  CHECK(h.stage_status()["eu"] == "passed");  // the other branch went on meanwhile
  CHECK(h.stage_status()["us"] == "awaiting_approval");
  CHECK(word(h.store.load_run("r-test")->status) == "paused");
  // Resuming without an approval pauses again, and sends nothing.
  const int sent = h.deploys_sent;
  CHECK(h.run()->ending == engine::Ending::paused);
  CHECK(h.deploys_sent == sent);
  h.store.add_approval({"r-test", "us", "alice", h.now, "looks good"});
  auto second = h.run();
  REQUIRE(second);
  CHECK(second->ending == engine::Ending::completed);
  CHECK(h.deploys_sent == 4);
}

TEST_CASE("an unknown outcome that went through is settled from the devices, not re-sent") {
  Harness h;
  auto outcome = h.run([](FakeFleet& f) { f.script(FakeFleet::Script::unknown_applied); });
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::completed);
  CHECK(h.applied_for("[rollout r-test/canary]") == 1);
  CHECK(h.deploys_sent == 4);
  auto calls = h.store.load_calls("r-test");
  CHECK(word(calls[0].outcome) == "settled_applied");
}

TEST_CASE("an unknown outcome that did not go through is sent again, once") {
  Harness h;
  auto outcome = h.run([](FakeFleet& f) { f.script(FakeFleet::Script::unknown_not_applied); });
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::completed);
  CHECK(h.applied_for("[rollout r-test/canary]") == 1);
  CHECK(h.deploys_sent == 5);
  auto calls = h.store.load_calls("r-test");
  CHECK(word(calls[0].outcome) == "settled_not_applied");
  CHECK(word(calls[1].outcome) == "accepted");
}

TEST_CASE("a refused deploy_update fails the run with Upswift's words, and sends nothing more") {
  Harness h;
  auto outcome = h.run([](FakeFleet& f) { f.script(FakeFleet::Script::refuse); });
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::failed);
  CHECK(outcome->reason ==
        "stage canary: Upswift refused deploy_update: \"scripted refusal\"; fix the cause, then "
        "continue with rollout resume r-test");
  CHECK(h.deploys_sent == 1);
  CHECK(h.deploys_applied == 0);
  // A person fixes the cause at Upswift and resumes: the refused call, certainly not
  // applied, is sent again, once, and the run goes on.
  auto resumed = h.run();
  REQUIRE(resumed);
  CHECK(resumed->ending == engine::Ending::completed);
  CHECK(h.applied_for("[rollout r-test/canary]") == 1);
  CHECK(h.store.load_stage_calls("r-test", "canary", state::CallKind::dispatch).size() == 2);
}

TEST_CASE("an API that cannot be reached fails the run resumably; resume sends it") {
  Harness h;
  auto outcome = h.run([](FakeFleet& f) { f.script(FakeFleet::Script::fail); });
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::failed);
  CHECK(h.deploys_applied == 0);
  auto resumed = h.run();
  REQUIRE(resumed);
  CHECK(resumed->ending == engine::Ending::completed);
  CHECK(h.applied_for("[rollout r-test/canary]") == 1);
}

TEST_CASE("a stage with too few devices fails before anything is sent") {
  const std::string plan = replaced(kPlan, "bake: 2h}", "bake: 2h, min_devices: 6}");
  Harness h(plan);
  auto outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::stopped);
  CHECK(h.deploys_sent == 0);
  auto stages = h.store.load_stages("r-test");
  CHECK(word(stages[0].status) == "failed");
  CHECK(stages[0].reason == "not dispatched: targets 5 device(s), fewer than min_devices 6");
}

TEST_CASE("an inconclusive gate pauses; an approval lets it pass") {
  const std::string plan = replaced(kPlan, "bake: 2h}", "bake: 2h, timeout: 3h}");
  sim::FleetSpec spec = fleet_spec();
  spec.projects[0].groups[0].online =
      0.6;  // 2 of 5 canaries are offline until 8h: they stay pending
  spec.behavior.offline_return = sim::Range{8h, 8h};
  Harness h(plan, spec);
  auto outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::paused);
  CHECK(h.stage_status()["canary"] == "paused");
  h.store.add_approval({"r-test", "canary", "bob", h.now, "2 devices are in a ship's hold"});
  auto resumed = h.run();
  REQUIRE(resumed);
  CHECK(resumed->ending == engine::Ending::completed);
  CHECK(h.store.load_stages("r-test")[0].reason == "approved after an inconclusive gate");
}

TEST_CASE("an abort request stops the run; with rollback, dispatched stages are rolled back") {
  Harness h;
  h.store.request_abort("r-test", {true, "carol", h.now});
  auto outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::stopped);
  CHECK(word(h.store.load_run("r-test")->status) == "aborted");
  CHECK(h.deploys_sent == 0);
}

// Every named point where a process can die, at its first and later occurrences: the run,
// resumed, completes with each stage's deploy_update applied exactly once.
TEST_CASE("killed at any crash point and resumed, every dispatch is applied exactly once") {
  const std::vector<std::string> points = {"after_snapshot", "before_intent", "after_intent",
                                           "after_answer", "after_outcome"};
  int scenarios = 0;
  for (const std::string& point : points) {
    for (int occurrence = 1; occurrence <= 4; ++occurrence) {
      CAPTURE(point);
      CAPTURE(occurrence);
      Harness h;
      auto first = h.run({}, point, occurrence);
      CHECK_FALSE(first);
      std::optional<engine::Outcome> outcome;
      for (int attempt = 0; attempt < 3 && !outcome; ++attempt) outcome = h.run();
      REQUIRE(outcome);
      CHECK(outcome->ending == engine::Ending::completed);
      for (const char* stage : {"canary", "eu", "us", "everyone"}) {
        CHECK(h.applied_for(engine::dispatch_marker("r-test", stage)) == 1);
      }
      ++scenarios;
    }
  }
  CHECK(scenarios == 20);
}

TEST_CASE("killed mid-rollback and resumed, each rollback call is applied exactly once") {
  for (int occurrence = 1; occurrence <= 3; ++occurrence) {
    CAPTURE(occurrence);
    Harness h(kPlan, fleet_spec(0.5));
    auto first = h.run({}, "after_rollback_intent", occurrence);
    std::optional<engine::Outcome> outcome = first;
    for (int attempt = 0; attempt < 3 && !outcome; ++attempt) outcome = h.run();
    REQUIRE(outcome);
    CHECK(outcome->ending == engine::Ending::stopped);
    auto targets = h.store.load_snapshot("r-test", "canary/rollback");
    REQUIRE(targets);
    std::map<std::string, int> per_body;
    for (const auto& c : h.store.load_calls("r-test")) {
      if (word(c.kind) == "rollback" &&
          (word(c.outcome) == "accepted" || word(c.outcome) == "settled_applied"))
        ++per_body[c.body];
    }
    for (const auto& [body, n] : per_body) CHECK(n == 1);
    CHECK(h.applied_for("[rollout r-test/canary/rollback]") == static_cast<int>(per_body.size()));
  }
}

namespace {

// eu takes the EU; the wave draws a quarter of what is left of EU and US: only US devices.
const std::string kSampledPlan = R"(version: 1
name: sampled
flow_id: f-new
project: Demo
app: {name: fw, version: v3}
defaults:
  gate: {bake: 1h, timeout: 6h, poll: 5m, min_success: 100%, max_failed: 0}
stages:
  - name: eu
    groups: [EU]
  - name: wave
    needs: [eu]
    groups: [EU, US]
    sample: {percent: 25}
on_failure:
  action: rollback
  rollback: {flow_id: f-old, app: {name: fw, version: v2}}
)";

std::vector<std::string> uuids(const std::vector<state::SnapshotDevice>& devices) {
  std::vector<std::string> out;
  for (const auto& d : devices) out.push_back(d.uuid);
  return out;
}

}  // namespace

TEST_CASE("a sampled wave draws from what earlier stages left, one deploy_update per device") {
  Harness h(kSampledPlan);
  REQUIRE(h.run()->ending == engine::Ending::completed);
  const auto wave = h.store.load_snapshot("r-test", "wave");
  REQUIRE(wave);
  CHECK(wave->size() == 5);  // 25% of the 20 US devices; the 20 EU ones were eu's
  for (const auto& d : *wave) CHECK(d.group == "US");
  // eu's one call, then one specific_device call per drawn device, each applied once.
  CHECK(h.deploys_sent == 6);
  std::vector<std::string> sent = h.applied_devices;
  std::sort(sent.begin(), sent.end());
  std::vector<std::string> drawn = uuids(*wave);
  std::sort(drawn.begin(), drawn.end());
  CHECK(sent == drawn);
  CHECK(h.applied_for(engine::dispatch_marker("r-test", "wave")) == 5);
  auto calls = h.store.load_stage_calls("r-test", "wave", state::CallKind::dispatch);
  REQUIRE(calls.size() == 5);
  for (const auto& c : calls) {
    CHECK(c.devices == 1);
    CHECK(word(c.outcome) == "accepted");
  }
  // The gate judged the drawn devices.
  CHECK(h.store.load_observations("r-test").back().success == 5);
}

TEST_CASE("a sampled wave's draw follows the run id: the same run draws the same devices") {
  const auto draw = [](const std::string& seed) {
    std::vector<state::SnapshotDevice> candidates;
    for (int i = 0; i < 40; ++i) candidates.push_back({fmt::format("d-{:04}", i), i, "", "G"});
    return uuids(engine::draw_sample(candidates, {plan::Sample::Kind::count, 0, 7}, seed));
  };
  CHECK(draw("r-1/wave") == draw("r-1/wave"));
  CHECK(draw("r-1/wave") != draw("r-2/wave"));
  CHECK(draw("r-1/wave").size() == 7);
  std::vector<state::SnapshotDevice> three{{"a", 1, "", "G"}, {"b", 2, "", "G"}, {"c", 3, "", "G"}};
  CHECK(engine::draw_sample(three, {plan::Sample::Kind::count, 0, 10}, "s").size() == 3);
  CHECK(engine::draw_sample(three, {plan::Sample::Kind::percent, 34, 0}, "s").size() == 2);
  CHECK(engine::draw_sample(three, {plan::Sample::Kind::percent, 1, 0}, "s").size() == 1);
}

TEST_CASE("a sampled wave killed between its per-device calls resumes with the same devices") {
  // eu's call reaches each point first. Then the wave's: its intents are committed
  // together (after_intent 2: none of them sent), its answers come one by one (after_answer
  // 3: the second), their outcomes are committed as they come (after_outcome 2: the first).
  for (const auto& [point, nth] : std::vector<std::pair<const char*, int>>{
           {"after_intent", 2}, {"after_answer", 3}, {"after_outcome", 2}}) {
    CAPTURE(point);
    Harness h(kSampledPlan);
    CHECK_FALSE(h.run({}, point, nth));
    const auto drawn = h.store.load_snapshot("r-test", "wave");
    REQUIRE(drawn);
    auto outcome = h.run();
    REQUIRE(outcome);
    CHECK(outcome->ending == engine::Ending::completed);
    CHECK(uuids(*h.store.load_snapshot("r-test", "wave")) == uuids(*drawn));
    // Every drawn device got exactly one applied update, however the crash fell.
    h.check_each_applied_once(5);
  }
}

// What each of the engine's transactions held; and any record written on its own.
class RecordingStore : public test::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  struct Batch {
    std::size_t snapshots = 0, intents = 0, outcomes = 0, observations = 0, stages = 0, events = 0;
  };
  std::vector<Batch> batches;
  std::vector<std::string> singles;

 protected:
  void on_write(const char* kind) override { singles.push_back(kind); }
  void on_batch(const state::WriteBatch& b) override {
    batches.push_back({b.snapshots.size(), b.intents.size(), b.outcomes.size(),
                       b.observations.size(), b.stages.size(), b.events.size()});
  }
};

TEST_CASE("what one turn of the loop records commits in one transaction, intents with it") {
  const std::string plan = R"(version: 1
name: quick
flow_id: f-new
project: Demo
app: {name: fw, version: v3}
defaults:
  gate: {bake: 0s, timeout: 1h, poll: 1m, min_success: 100%, max_failed: 0}
stages:
  - {name: eu, groups: [EU]}
  - {name: us, needs: [eu], groups: [US]}
)";
  // Updates that succeed at once: each gate passes at its first poll.
  Harness h(plan, test::FleetBuilder(1).flows({"f-new"}).group("EU", 8).group("US", 8).timing(
                      {0s, 0s}, {0s, 0s}));
  RecordingStore recording(h.store);
  h.engine_store = &recording;
  auto outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::completed);
  CHECK(recording.singles.empty());  // every record of the run rides in a batch
  // Each stage's snapshot commits with its deploy_update's intent, before the call leaves.
  std::size_t with_intent = 0;
  for (const auto& b : recording.batches) {
    if (b.intents == 0) continue;
    ++with_intent;
    CHECK(b.intents == 1);
    CHECK(b.snapshots == 1);
    CHECK(b.events >= 2);  // the snapshot's and the dispatch's
  }
  CHECK(with_intent == 2);
  // Three transactions a stage (its start, its intent, its outcome; the gate's verdict rides
  // with the next start) and the run's own: not one per record (there are 17 a stage).
  CHECK(recording.batches.size() <= 2 * 3 + 2);
  std::size_t records = 0;
  for (const auto& b : recording.batches)
    records += b.snapshots + b.intents + b.outcomes + b.observations + b.stages + b.events;
  CHECK(records >= 2 * 8);
  CHECK(h.applied_for("[rollout r-test/eu]") == 1);
  CHECK(h.applied_for("[rollout r-test/us]") == 1);
}

TEST_CASE(
    "a sampled wave's intents are committed together; after a crash, one reading settles them") {
  Harness h(kSampledPlan);
  RecordingStore recording(h.store);
  h.engine_store = &recording;
  // eu's intent is the 1st; the wave's five are the 2nd, in one transaction: killed before any
  // of them was sent.
  CHECK_FALSE(h.run({}, "after_intent", 2));
  REQUIRE_FALSE(recording.batches.empty());
  CHECK(recording.batches.back().intents == 5);
  CHECK(h.deploys_sent == 1);
  h.engine_store = nullptr;
  auto outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::completed);
  std::vector<std::string> settles;
  for (const auto& e : h.store.load_events("r-test")) {
    if (word(e.kind) == "settle") settles.push_back(e.message);
  }
  REQUIRE(settles.size() == 2);  // "reading the devices in ...", then what the reading found
  CHECK(settles[1] ==
        "of the 5 deploy_update calls to single devices, 0 had gone through (found "
        "on the devices) and 5 had not: those are sent again");
  h.check_each_applied_once(5);
}

TEST_CASE("interrupted mid-batch, a wave's calls not sent yet are recorded as not sent") {
  const std::string plan = R"(version: 1
name: wide
flow_id: f-new
project: Demo
app: {name: fw, version: v3}
defaults:
  gate: {bake: 0s, timeout: 6h, poll: 5m, min_success: 100%, max_failed: 0}
stages:
  - name: wave
    groups: [US]
    sample: {count: 12}
)";
  Harness h(plan);
  bool signalled = false;
  h.at_point = [&](engine::Engine& e, std::string_view point) {
    if (point == "after_answer" && !signalled) {
      signalled = true;
      e.interrupt();  // SIGINT as the first answer of the batch comes in
    }
  };
  auto outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::interrupted);
  // 12 written ahead together, 8 sent (the first at once), 4 recorded as never sent.
  const auto calls = h.store.load_calls("r-test");
  REQUIRE(calls.size() == 12);
  CHECK(h.deploys_sent == 8);
  int not_sent = 0;
  for (const auto& c : calls) {
    CHECK(c.outcome);
    if (c.message == "not sent: the run was stopping") ++not_sent;
  }
  CHECK(not_sent == 4);
  h.at_point = {};
  outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::completed);
  h.check_each_applied_once(12);
  CHECK(h.deploys_sent == 12);  // the 4 not sent went out on resume, nothing else again
}

TEST_CASE("a sampled wave's unknown outcomes are settled per device, never sent twice") {
  Harness h(kSampledPlan);
  auto outcome = h.run([](FakeFleet& api) {
    api.script(FakeFleet::Script::normal);               // eu
    api.script(FakeFleet::Script::unknown_applied);      // the wave's first device
    api.script(FakeFleet::Script::unknown_not_applied);  // its second
  });
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::completed);
  h.check_each_applied_once(5);
  auto calls = h.store.load_stage_calls("r-test", "wave", state::CallKind::dispatch);
  std::map<std::string, int> outcomes;
  for (const auto& c : calls) ++outcomes[c.outcome ? word(c.outcome) : "none"];
  CHECK(outcomes["settled_applied"] == 1);
  CHECK(outcomes["settled_not_applied"] == 1);
  CHECK(outcomes["accepted"] == 4);  // three first tries, and the second device's resend
}

TEST_CASE("a failed sampled wave rolls back its drawn devices one by one, not its groups") {
  sim::FleetSpec spec = fleet_spec();
  spec.overrides.push_back({.group = "US", .flow = "f-new", .failure_rate = 1.0});
  Harness h(kSampledPlan, spec);
  auto outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::stopped);
  CHECK(h.stage_status()["wave"] == "rolled_back");
  auto rollbacks = h.store.load_stage_calls("r-test", "wave", state::CallKind::rollback);
  CHECK(rollbacks.size() == 5);
  for (const auto& c : rollbacks) CHECK(c.devices == 1);
}

namespace {

// The canary's update fails on some devices; the run stops (no rollback), and a retry
// sends it again to those devices only.
std::vector<state::SnapshotDevice> failed_devices(Harness& h, const std::string& stage) {
  asio::io_context io;
  ManualClock clock(io, h.now);
  FakeFleet api(io, h.fleet, clock);
  const auto snapshot = h.store.load_snapshot(h.run_id, stage);
  REQUIRE(snapshot);
  std::optional<upswift::Result<std::vector<engine::Reached>>> reached;
  engine::read_reached(api, h.checked.loaded.plan->stages[0].deploy_request(), *snapshot,
                       engine::dispatch_marker(h.run_id, stage),
                       [&](upswift::Result<std::vector<engine::Reached>> r) { reached = r; });
  io.run();
  REQUIRE(reached);
  REQUIRE(reached->ok());
  std::vector<state::SnapshotDevice> out;
  for (std::size_t i = 0; i < snapshot->size(); ++i) {
    if ((*reached->value)[i] == engine::Reached::failed) out.push_back((*snapshot)[i]);
  }
  return out;
}

}  // namespace

TEST_CASE("a retry sends the stage's update again to its failed devices only, then goes on") {
  const std::string plan =
      replaced(replaced(kPlan, "  action: rollback\n", "  action: stop\n"),
               "  rollback: {flow_id: f-old, app: {name: fw, version: v2}}\n", "");
  Harness h(plan, fleet_spec(/*canary_failure=*/0.5));
  REQUIRE(h.run()->ending == engine::Ending::stopped);
  CHECK(h.stage_status()["canary"] == "failed");
  const auto failed = failed_devices(h, "canary");
  REQUIRE_FALSE(failed.empty());
  REQUIRE(failed.size() < 5);
  const int sent_before = h.deploys_sent;
  h.applied_devices.clear();

  CHECK(engine::prepare_retry(h.store, h.run_id, "canary", failed, h.now) == 1);
  CHECK(word(h.store.load_run(h.run_id)->status) == "interrupted");
  CHECK(h.stage_status()["canary"] == "dispatching");
  auto outcome = h.run();
  REQUIRE(outcome);
  // One specific_device call per failed device, and nothing else for the canary.
  std::vector<std::string> retried = h.applied_devices;
  std::sort(retried.begin(), retried.end());
  std::vector<std::string> expected = uuids(failed);
  std::sort(expected.begin(), expected.end());
  CHECK(retried == expected);
  const auto calls = h.store.load_stage_calls(h.run_id, "canary", state::CallKind::dispatch);
  REQUIRE(calls.size() == 1 + failed.size());
  for (std::size_t i = 1; i < calls.size(); ++i) {
    CHECK(calls[i].devices == 1);
    CHECK(calls[i].marker == "[rollout r-test/canary] (retry 1)");
  }
  // The gate judged all five canaries again after the retry, the retried ones by their
  // new update.
  const auto observations = h.store.load_observations(h.run_id);
  REQUIRE_FALSE(observations.empty());
  const auto& last = observations.back();
  CHECK(last.stage == "canary");
  CHECK(last.targeted == 5);
  CHECK(last.missing == 0);
  CHECK(last.success + last.failed + last.in_progress + last.pending == 5);
  CHECK(last.failed >= 1);  // with this seed one retried device fails again: the run stops
  CHECK(word(last.verdict) == "fail");
  CHECK(outcome->ending == engine::Ending::stopped);
  CHECK(h.deploys_sent == sent_before + static_cast<int>(failed.size()));
  // A second retry is attempt 2, and its calls are told apart from the first's.
  CHECK(engine::prepare_retry(h.store, h.run_id, "canary", failed, h.now) == 2);
}

TEST_CASE("a stage waits for its maintenance window, dispatches inside it, and is not cut off") {
  const std::string plan = replaced(
      kSampledPlan.substr(0, kSampledPlan.find("  - name: wave")),
      "  - name: eu\n    groups: [EU]\n",
      "  - name: eu\n    groups: [EU]\n    windows:\n      - {days: [mon, tue, wed, thu, fri], "
      "from: \"02:00\", to: \"05:00\", tz: Europe/Berlin}\n    gate: {bake: 4h}\n");
  // Saturday 28 November 2026, 10:00 UTC.
  const WallTime saturday = std::chrono::sys_days{std::chrono::year{2026} / 11 / 28} + 10h;
  Harness h(plan, fleet_spec(), saturday);
  auto outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::completed);
  const auto stages = h.store.load_stages("r-test");
  REQUIRE(stages[0].dispatched_at);
  // Monday 02:00 in Berlin (CET) is 01:00 UTC; the call is answered within seconds.
  const WallTime monday = std::chrono::sys_days{std::chrono::year{2026} / 11 / 30} + 1h;
  CHECK(*stages[0].dispatched_at >= monday);
  CHECK(*stages[0].dispatched_at < monday + 1min);
  // The 4h bake ran on past the window's close at 05:00 local: the gate was not cut off.
  CHECK(*stages[0].finished_at >= monday + 4h);
  bool waited = false;
  for (const auto& e : h.store.load_events("r-test")) {
    if (word(e.kind) == "window_wait") {
      waited = true;
      CHECK(e.message == "waiting: outside its maintenance windows until 2026-11-30T01:00 UTC");
    }
  }
  CHECK(waited);
}

// A store write that fails (a full disk, a read-only file) ends the engine with that error,
// whatever the write: the state stays consistent, and the next process completes the run
// with every stage applied exactly once.
TEST_CASE("a failed store write of any kind leaves a run that resumes exactly once") {
  int failed_cases = 0;
  for (const char* kind : test::FailingStore::kWriteKinds) {
    for (int nth : {1, 2, 5}) {
      CAPTURE(std::string(kind));
      CAPTURE(nth);
      Harness h;
      test::FailingStore failing(h.store, kind, nth);
      h.engine_store = &failing;
      auto outcome = h.run();
      CHECK(h.store_failed == failing.failed());
      // Every kind of write happens in a run: its first one fails, so no kind's case passes
      // without having tested anything. A later one may not come (fewer writes than nth).
      if (nth == 1) REQUIRE(h.store_failed);
      if (!h.store_failed) {
        CHECK(outcome);
        continue;
      }
      ++failed_cases;
      h.engine_store = nullptr;
      outcome = h.run();
      REQUIRE(outcome);
      CHECK(outcome->ending == engine::Ending::completed);
      for (const char* stage : {"canary", "eu", "us", "everyone"}) {
        CHECK(h.applied_for(fmt::format("[rollout r-test/{}]", stage)) == 1);
      }
      CHECK(test::integrity_ok(h.store));
    }
  }
  // Most kinds are written at least five times in a run (the one-shot ones, such as a
  // stage's snapshot per stage, too): most cases are failures resumed, not runs untouched.
  CHECK(failed_cases >= 2 * static_cast<int>(std::size(test::FailingStore::kWriteKinds)));
}

// Health gates: lost devices, run-wide abort criteria, ramps.
namespace {

const std::string kLostPlan = R"(version: 1
name: fw-3
flow_id: f-new
project: Demo
app: {name: fw, version: v3}
defaults:
  gate: {bake: 30m, timeout: 6h, poll: 1m, min_success: 80%, max_failed: 0, lost_after: 15m, max_lost: MAX_LOST}
stages:
  - name: eu
    groups: [EU]
  - name: us
    needs: [eu]
    groups: [US]
on_failure:
  action: rollback
  rollback: {flow_id: f-old, app: {name: fw, version: v2}}
)";

std::string lost_plan(const std::string& max_lost) {
  return replaced(kLostPlan, "MAX_LOST", max_lost);
}

// EU's 10 devices and one more with the tag "brick", whose updates go dark for good (or come
// back after `dark_for`); the US's 10 are fine.
sim::FleetSpec fleet_with_brick(std::optional<sim::Range> dark_for = {}) {
  test::FleetBuilder fleet(5);
  fleet.flows({"f-new", "f-old"}).group("EU", 10).group("US", 10);
  fleet.device({.uuid = "d-brick",
                .name = "brick",
                .group = "EU",
                .tags = {"brick"},
                .apps = {{"fw", "v2"}}});
  fleet.behave({.tag = "brick", .offline_mid_update = 1.0, .dark_for = dark_for});
  return fleet;
}

// Devices tagged "bad", one per group named (a group named twice has two), whose updates
// always fail.
test::FleetBuilder& with_bad_devices(test::FleetBuilder& fleet,
                                     const std::vector<std::string>& groups) {
  int n = 0;
  for (const std::string& group : groups) {
    fleet.device({.uuid = fmt::format("d-bad-{}", ++n),
                  .name = "bad",
                  .group = group,
                  .tags = {"bad"},
                  .apps = {{"fw", "v2"}}});
  }
  return fleet.behave({.tag = "bad", .flow = "f-new", .failure_rate = 1.0});
}

std::vector<state::DeviceState> lost_devices(store::SqlStore& store) {
  std::vector<state::DeviceState> out;
  for (auto& d : store.load_device_states("r-test"))
    if (d.lost_at) out.push_back(std::move(d));
  return out;
}

}  // namespace

// When the stage's first `kind` event was recorded.
WallTime event_at(Harness& h, const std::string& stage, const std::string& kind) {
  for (const auto& e : h.store.load_events(h.run_id)) {
    if (e.stage == stage && word(e.kind) == kind) return e.at;
  }
  FAIL("no event " << kind << " of stage " << stage);
  return {};
}

// A device gone dark for good cannot take its rollback either: the rollback is not finished
// on it by its timeout, and the stage's rollback failed, naming it.
void check_dark_rollback_failed(Harness& h, const engine::Outcome& outcome,
                                const state::StageRecord& eu) {
  CHECK(outcome.ending == engine::Ending::failed);
  CHECK(outcome.next == "rollout retry r-test eu --rollback");
  CHECK(word(eu.status) == "rollback_failed");
  for (const auto& d : lost_devices(h.store)) {
    const auto listed = eu.reason.find("not finished within");
    REQUIRE(listed != std::string::npos);
    CHECK(eu.reason.find(d.uuid, listed) != std::string::npos);
  }
}

TEST_CASE("devices that go dark mid-update fail a max_lost 0 stage at once, and it rolls back") {
  test::FleetBuilder fleet(5);
  fleet.flows({"f-new", "f-old"}).group("EU", 20).group("US", 10).dark("EU", 0.3);
  Harness h(lost_plan("0"), fleet);
  auto outcome = h.run();
  REQUIRE(outcome);
  const auto stages = h.store.load_stages("r-test");
  const auto& eu = stages[0];
  check_dark_rollback_failed(h, *outcome, eu);
  CHECK(eu.reason.find("lost, more than max_lost 0 allows (0)") != std::string::npos);
  // Failed well before its 6-hour timeout: 15 minutes after a device was last seen online.
  REQUIRE(eu.dispatched_at);
  CHECK(event_at(h, "eu", "stage_failed") - *eu.dispatched_at < 1h);
  // Every lost device is named in the reason and recorded as lost, its update in progress.
  const auto lost = lost_devices(h.store);
  REQUIRE_FALSE(lost.empty());
  for (const auto& d : lost) {
    CHECK(eu.reason.find(d.uuid) != std::string::npos);
    CHECK(word(d.status) == "in_progress");
    CHECK(d.online == state::Online::offline);
    CHECK(d.stage == "eu");
  }
  const auto decisive = h.store.load_observations("r-test").back();
  CHECK(decisive.lost == static_cast<std::int64_t>(lost.size()));
  CHECK(decisive.in_progress + decisive.pending + decisive.success + decisive.failed +
            decisive.aborted + decisive.missing + decisive.lost ==
        decisive.targeted);
  CHECK(std::count(h.observer.kinds.begin(), h.observer.kinds.end(), "eu:device_lost") ==
        static_cast<std::ptrdiff_t>(lost.size()));
  // The rollback went out; us never started.
  CHECK(h.applied_for(engine::rollback_marker("r-test", "eu")) >= 1);
  CHECK(word(stages[1].status) == "waiting");
}

TEST_CASE("one lost device within max_lost 2: the stage passes, the device listed as lost") {
  Harness h(lost_plan("2"), fleet_with_brick());
  auto outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::completed);
  const auto lost = lost_devices(h.store);
  REQUIRE(lost.size() == 1);
  CHECK(lost[0].uuid == "d-brick");
  const auto eu = h.store.load_stages("r-test")[0];
  CHECK(word(eu.status) == "passed");
  CHECK(eu.reason.find("1 lost") != std::string::npos);
  CHECK(eu.reason.find("lost: d-brick (brick)") != std::string::npos);
  // A lost device never counts as a success.
  const auto observations = h.store.load_observations("r-test");
  const auto last_eu = *std::find_if(observations.rbegin(), observations.rend(),
                                     [](const auto& o) { return o.stage == "eu"; });
  CHECK(last_eu.lost == 1);
  CHECK(last_eu.success == 10);
  // us, with no device whose update was under way at a poll past the first minutes, read
  // online states only while its updates ran.
  CHECK(word(h.store.load_stages("r-test")[1].status) == "passed");
}

TEST_CASE("a lost device that comes back online is no longer lost") {
  // Dark for 40 minutes: lost 15 minutes after it was last seen, back before the 2h bake ends.
  Harness h(replaced(lost_plan("1"), "bake: 30m", "bake: 2h"),
            fleet_with_brick(sim::Range{40min, 40min}));
  auto outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::completed);
  CHECK(std::count(h.observer.kinds.begin(), h.observer.kinds.end(), "eu:device_lost") == 1);
  CHECK(std::count(h.observer.kinds.begin(), h.observer.kinds.end(), "eu:device_back") == 1);
  CHECK(lost_devices(h.store).empty());
  const auto observations = h.store.load_observations("r-test");
  CHECK(std::any_of(observations.begin(), observations.end(),
                    [](const auto& o) { return o.stage == "eu" && o.lost == 1; }));
  const auto last_eu = *std::find_if(observations.rbegin(), observations.rend(),
                                     [](const auto& o) { return o.stage == "eu"; });
  CHECK(last_eu.lost == 0);
  CHECK(last_eu.success == 11);
}

TEST_CASE("a lost device stays lost across a resume, its time offline counted from before") {
  // Killed at the eu gate's 20th poll (the device dark for some minutes), resumed: it is lost
  // at the same moment as in a run that was never killed.
  auto lost_at = [](int kill_at_poll) {
    Harness h(lost_plan("0"), fleet_with_brick());
    if (kill_at_poll > 0) CHECK_FALSE(h.run({}, "after_observation", kill_at_poll));
    auto outcome = h.run();
    REQUIRE(outcome);
    check_dark_rollback_failed(h, *outcome, stage_record(h, "eu"));
    const auto lost = lost_devices(h.store);
    REQUIRE(lost.size() == 1);
    return *lost[0].lost_at;
  };
  const WallTime undisturbed = lost_at(0);
  CHECK(lost_at(12) == undisturbed);
}

TEST_CASE("run-wide abort_when: each stage passes its own gate, the sum stops the run") {
  const std::string plan = R"(version: 1
name: fw-3
flow_id: f-new
project: Demo
app: {name: fw, version: v3}
defaults:
  gate: {bake: 1h, timeout: 6h, poll: 1m, min_success: 80%, max_failed: 2}
abort_when: {failed: 10%, min_finished: 10}
stages:
  - name: a
    groups: [A]
  - name: b
    needs: [a]
    groups: [B]
  - name: c
    needs: [b]
    groups: [C]
)";
  // One bad device in A (1 of 11: 9%), two in B, two in C: each stage alone passes (at most
  // 2 failed), but a and b together fail 3 of 22, more than 10%.
  test::FleetBuilder fleet(5);
  fleet.flows({"f-new"}).group("A", 10).group("B", 9).group("C", 9);
  with_bad_devices(fleet, {"A", "B", "B", "C", "C"});
  Harness h(plan, fleet);
  auto outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::stopped);
  CHECK(outcome->reason.find("abort_when failed 10% met") != std::string::npos);
  // The run's reason is the criterion, with where its devices are; not "stage b failed".
  CHECK(outcome->reason.rfind("abort_when failed 10% met", 0) == 0);
  CHECK(outcome->reason.find("(in a 1 failed; b 2 failed)") != std::string::npos);
  CHECK(h.stage_status() ==
        std::map<std::string, std::string>{{"a", "passed"}, {"b", "failed"}, {"c", "waiting"}});
  const auto b = h.store.load_stages("r-test")[1];
  CHECK(b.reason.find("3 of the 22 devices the dispatched stages targeted failed") !=
        std::string::npos);
  CHECK(std::count(h.observer.kinds.begin(), h.observer.kinds.end(), ":abort_criteria") == 1);
  CHECK(h.deploys_sent == 2);  // c never dispatched
}

TEST_CASE("run-wide abort_when is counted again after a resume") {
  const std::string plan = R"(version: 1
name: fw-3
flow_id: f-new
project: Demo
app: {name: fw, version: v3}
defaults:
  gate: {bake: 1h, timeout: 6h, poll: 1m, min_success: 80%, max_failed: 2}
abort_when: {failed: 3}
stages:
  - name: a
    groups: [A]
  - name: b
    needs: [a]
    groups: [B]
)";
  test::FleetBuilder fleet(5);
  fleet.flows({"f-new"}).group("A", 10).group("B", 10);
  with_bad_devices(fleet, {"A", "A", "B"});
  Harness h(plan, fleet);
  // Killed as b is dispatched: a's two failures are only in the store when b's gate counts.
  CHECK_FALSE(h.run({}, "after_outcome", 2));
  auto outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::stopped);
  CHECK(h.stage_status() == std::map<std::string, std::string>{{"a", "passed"}, {"b", "failed"}});
  CHECK(h.store.load_stages("r-test")[1].reason.find("abort_when failed 3 met") !=
        std::string::npos);
}

namespace {

const std::string kRampPlan = R"(version: 1
name: fw-3
flow_id: f-new
project: Demo
app: {name: fw, version: v3}
defaults:
  gate: {bake: 30m, timeout: 6h, poll: 5m, min_success: 90%, max_failed: 10%}
stages:
  - name: canary
    groups: [Canary]
  - name: eu
    needs: [canary]
    groups: [EU, Canary]
    ramp: {steps: [10%, 25%, 50%, 100%]}
  - name: rest
    needs: [eu]
    groups: [Rest]
)";

}  // namespace

TEST_CASE("a ramp: its steps draw their shares in all, no device twice, each applied once") {
  test::FleetBuilder fleet(5);
  fleet.flows({"f-new"}).group("Canary", 5).group("EU", 40).group("Rest", 5);
  Harness h(kRampPlan, fleet);
  REQUIRE(h.run()->ending == engine::Ending::completed);
  // The canary's 5 are left out of the ramp: 40 devices, 10% = 4, 25% = 10 in all (6 new),
  // 50% = 20 (10 new), 100% = 40 (20 new).
  std::set<std::string> seen;
  const std::vector<std::pair<std::string, std::size_t>> steps = {
      {"eu@10%", 4}, {"eu@25%", 6}, {"eu@50%", 10}, {"eu@100%", 20}};
  for (const auto& [name, size] : steps) {
    CAPTURE(name);
    const auto snapshot = h.store.load_snapshot("r-test", name);
    REQUIRE(snapshot);
    CHECK(snapshot->size() == size);
    for (const auto& d : *snapshot) {
      CHECK(d.group == "EU");
      CHECK(seen.insert(d.uuid).second);  // in no other step
    }
    CHECK(h.applied_for(engine::dispatch_marker("r-test", name)) == static_cast<int>(size));
  }
  CHECK(seen.size() == 40);
  h.check_each_applied_once(40);
  // Each step's snapshot says what it drew, word for word (every argument in its place).
  std::map<std::string, std::string> said;
  for (const auto& e : h.store.load_events("r-test")) {
    if (word(e.kind) == "snapshot") said[e.stage] = e.message;
  }
  CHECK(said["eu@10%"] ==
        "targets 4 device(s), step 1 of 4 of ramp eu: 10% of 40 device(s), 4 in all, 0 of them "
        "in earlier steps (5 left out: earlier stages targeted them)");
  CHECK(said["eu@50%"] ==
        "targets 10 device(s), step 3 of 4 of ramp eu: 50% of 40 device(s), 20 in all, 10 of "
        "them in earlier steps (5 left out: earlier stages targeted them)");
  // The steps run one after the other, rest after the last.
  const auto stages = h.store.load_stages("r-test");
  for (std::size_t i = 2; i < stages.size(); ++i) {
    REQUIRE(stages[i].started_at);
    REQUIRE(stages[i - 1].finished_at);
    CHECK(*stages[i].started_at >= *stages[i - 1].finished_at);
  }
}

TEST_CASE("a ramp killed mid-step resumes with the same draw, each device applied once") {
  test::FleetBuilder fleet(5);
  fleet.flows({"f-new"}).group("Canary", 5).group("EU", 40).group("Rest", 5);
  std::map<std::string, std::vector<std::string>> undisturbed;
  {
    Harness h(kRampPlan, fleet);
    REQUIRE(h.run()->ending == engine::Ending::completed);
    for (const char* step : {"eu@10%", "eu@25%", "eu@50%", "eu@100%"})
      undisturbed[step] = uuids(*h.store.load_snapshot("r-test", step));
  }
  // The canary's call is the first; then the steps' calls, written ahead a step at a time.
  for (const auto& [point, nth] : std::vector<std::pair<const char*, int>>{{"after_snapshot", 3},
                                                                           {"after_intent", 3},
                                                                           {"after_answer", 12},
                                                                           {"after_outcome", 20}}) {
    CAPTURE(point);
    Harness h(kRampPlan, fleet);
    CHECK_FALSE(h.run({}, point, nth));
    auto outcome = h.run();
    REQUIRE(outcome);
    CHECK(outcome->ending == engine::Ending::completed);
    for (const auto& [step, devices] : undisturbed)
      CHECK(uuids(*h.store.load_snapshot("r-test", step)) == devices);
    h.check_each_applied_once(40);
  }
}

TEST_CASE("abort_when met while stages run in parallel fails each of them; none passes later") {
  const std::string plan = R"(version: 1
name: fw-3
flow_id: f-new
project: Demo
app: {name: fw, version: v3}
defaults:
  gate: {bake: 1h, timeout: 6h, poll: 1m, min_success: 70%, max_failed: 2}
abort_when: {failed: 3, min_finished: 4}
stages:
  - name: a
    groups: [A]
  - name: b
    groups: [B]
  - name: c
    needs: [a, b]
    groups: [C]
on_failure:
  action: rollback
  rollback: {flow_id: f-old, app: {name: fw, version: v2}}
)";
  test::FleetBuilder fleet(5);
  fleet.flows({"f-new", "f-old"}).group("A", 8).group("B", 8).group("C", 4);
  with_bad_devices(fleet, {"A", "A", "B", "B"});
  Harness h(plan, fleet);
  auto outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::stopped);
  // Both in flight when the third failure came: both fail and roll back, c never starts.
  CHECK(h.stage_status() == std::map<std::string, std::string>{
                                {"a", "rolled_back"}, {"b", "rolled_back"}, {"c", "waiting"}});
  for (const auto& s : h.store.load_stages("r-test")) {
    if (s.name == "c") continue;
    CHECK(s.reason.find("abort_when failed 3 met") != std::string::npos);
  }
  CHECK(h.applied_for(engine::rollback_marker("r-test", "a")) >= 1);
  CHECK(h.applied_for(engine::rollback_marker("r-test", "b")) >= 1);
  // No verdict was recorded for a stage after it failed.
  for (const char* stage : {"a", "b"}) {
    const auto observations = h.store.load_observations("r-test");
    int verdicts = 0;
    for (const auto& o : observations)
      if (o.stage == stage && o.verdict != state::Verdict::wait) ++verdicts;
    CHECK(verdicts <= 1);
  }
}

TEST_CASE("a device is lost lost_after past the last poll that read it online") {
  // Every EU update starts 2 minutes after dispatch and goes dark halfway through its 10
  // minutes, at 7m: the polls at 3m to 6m read the device online; at 7m it is offline. With
  // lost_after 15m it is lost at the first poll more than 15 minutes after 6m: 22m.
  test::FleetBuilder fleet(5);
  fleet.flows({"f-new", "f-old"})
      .timing({2min, 2min}, {10min, 10min})
      .group("EU", 3)
      .group("US", 3);
  fleet.dark("EU", 1.0);
  Harness h(replaced(lost_plan("0"), "bake: 30m", "bake: 1h"), fleet);
  const auto outcome = h.run();
  REQUIRE(outcome);
  const auto eu = h.store.load_stages("r-test")[0];
  check_dark_rollback_failed(h, *outcome, eu);
  const auto lost = lost_devices(h.store);
  REQUIRE(lost.size() == 3);
  for (const auto& d : lost) {
    CHECK(*d.lost_at - *eu.dispatched_at == 22min);
    CHECK(*d.online_last - *eu.dispatched_at == 6min);
  }
  CHECK(event_at(h, "eu", "stage_failed") - *eu.dispatched_at >= 22min);
}

TEST_CASE("a poll reads the online states of the groups with updates under way, a decision all") {
  // EU's updates finish within 11 minutes; Lab's one device goes dark for good. After that,
  // polls list Lab's states only; the decision (a pass with the lost device tolerated) lists
  // both groups again, for the record.
  test::FleetBuilder fleet(5);
  fleet.flows({"f-new", "f-old"}).group("EU", 10).group("US", 3);
  fleet.device({.uuid = "d-brick",
                .name = "brick",
                .group = "Lab",
                .tags = {"brick"},
                .apps = {{"fw", "v2"}}});
  fleet.behave({.tag = "brick", .offline_mid_update = 1.0});
  Harness h(replaced(replaced(lost_plan("1"), "groups: [EU]", "groups: [EU, Lab]"), "bake: 30m",
                     "bake: 1h"),
            fleet);
  REQUIRE(h.run()->ending == engine::Ending::completed);
  std::vector<std::string> asked;
  for (const auto& q : h.states_asked) asked.push_back(q.group_name.value_or("*"));
  // Both groups while EU's updates run, then Lab alone for the rest of the bake, then both
  // at the decision; then us's own group.
  const auto last_eu = std::find(asked.rbegin(), asked.rend(), "EU").base() - 1;
  REQUIRE(last_eu - asked.begin() > 20);
  CHECK(*(last_eu + 1) == "Lab");
  CHECK(*(last_eu + 2) == "US");
  const auto lab_only = std::find_if(asked.begin(), last_eu, [&](const std::string& g) {
    return &g != &asked.front() && g == "Lab" && *(&g - 1) == "Lab";
  });
  REQUIRE(lab_only != last_eu);
  CHECK(std::all_of(lab_only, last_eu, [](const std::string& g) { return g == "Lab"; }));
  CHECK(last_eu - lab_only > 20);
  CHECK(lost_devices(h.store).size() == 1);
}

// A run never ends with an outcome unknown. Each case below loses eu's deploy_update answer
// (the update applied at Upswift, the answer never back), then ends the run another way
// before or after the settle is due; the harness checks after every process that no call
// of a terminal run is unknown.
namespace {

sim::FleetSpec failing_us_spec() {
  test::FleetBuilder fleet(5);
  fleet.flows({"f-new", "f-old"})
      .group("Canary", 5, {"canary"})
      .group("EU", 20)
      .group("US", 20)
      .group("Rest", 12)
      .failing("US", 0.5);
  return fleet;
}

void lose_eu_answer(FakeFleet& f) {
  f.script_for("[rollout r-test/eu]", FakeFleet::Script::unknown_applied);
}

bool is(const state::Event& e, std::string_view stage, std::string_view kind) {
  return e.stage == stage && word(e.kind) == kind;
}

std::ptrdiff_t position(const std::vector<std::string>& kinds, const std::string& kind) {
  return std::find(kinds.begin(), kinds.end(), kind) - kinds.begin();
}

// eu's one dispatch call's outcome ("none" before it has one).
std::string eu_outcome(Harness& h) {
  const auto calls = h.store.load_stage_calls(h.run_id, "eu", state::CallKind::dispatch);
  REQUIRE(calls.size() == 1);
  return calls[0].outcome ? word(calls[0].outcome) : "none";
}

void check_eu_settled_and_rolled_back(Harness& h) {
  CHECK(eu_outcome(h) == "settled_applied");
  CHECK(h.applied_for("[rollout r-test/eu]") == 1);  // never sent again
  CHECK(h.applied_for("[rollout r-test/eu/rollback]") >= 1);
  const auto eu = stage_record(h, "eu");
  CHECK(word(eu.status) == "rolled_back");
  CHECK(eu.dispatched_at.has_value());
  // Its devices were read before the run ended, each with the update.
  const auto devices = h.store.load_stage_device_states(h.run_id, "eu");
  CHECK(devices.size() == 20);
  for (const auto& d : devices) CHECK(d.update_id != 0);
}

// The run left resumable with eu's call unknown; the next process settles it, ends stopped,
// and rolls eu back.
void check_resume_settles_eu(Harness& h) {
  CHECK(eu_outcome(h) == "unknown");
  h.observer.hook = {};
  auto resumed = h.run();
  REQUIRE(resumed);
  CHECK(resumed->ending == engine::Ending::stopped);
  check_eu_settled_and_rolled_back(h);
}

}  // namespace

TEST_CASE(
    "answer lost, a sibling fails before the settle is due: settled first, then rolled back") {
  Harness h(kPlan, failing_us_spec());
  h.settle_delay = 30min;
  auto outcome = h.run(lose_eu_answer);
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::stopped);
  CHECK(word(h.store.load_run(h.run_id)->status) == "stopped");
  // us failed while eu's outcome was still unknown; the run waited for the settle.
  CHECK(position(h.observer.kinds, "us:stage_failed") <
        position(h.observer.kinds, "eu:dispatched"));
  CHECK(position(h.observer.kinds, "eu:dispatched") < position(h.observer.kinds, ":run_stopped"));
  check_eu_settled_and_rolled_back(h);
  CHECK(word(stage_record(h, "us").status) == "rolled_back");
  CHECK(stage_record(h, "eu").reason.rfind("cut off before its gate passed: stage us failed", 0) ==
        0);
  CHECK(h.stage_status()["canary"] == "passed");  // proven: its gate passed
  CHECK(h.stage_status()["everyone"] == "waiting");
}

TEST_CASE("answer lost, the settle due before a sibling fails: the stage gates, then is cut off") {
  Harness h(kPlan, failing_us_spec());
  auto outcome = h.run(lose_eu_answer);
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::stopped);
  check_eu_settled_and_rolled_back(h);
  CHECK(position(h.observer.kinds, "eu:dispatched") <
        position(h.observer.kinds, "us:stage_failed"));
}

TEST_CASE("answer lost, an operator's abort before the settle is due: settled, shown dispatched") {
  for (const bool rollback : {false, true}) {
    CAPTURE(rollback);
    Harness h;
    h.settle_delay = 30min;
    h.observer.hook = [&](const state::Event& e) {
      if (!is(e, "eu", "dispatch_unknown")) return;
      h.store.request_abort(h.run_id, {rollback, "carol", e.at});
      h.current->wake();
    };
    auto outcome = h.run(lose_eu_answer);
    REQUIRE(outcome);
    CHECK(outcome->ending == engine::Ending::stopped);
    CHECK(word(h.store.load_run(h.run_id)->status) == "aborted");
    CHECK(eu_outcome(h) == "settled_applied");
    const auto eu = stage_record(h, "eu");
    CHECK(eu.dispatched_at.has_value());
    CHECK(word(eu.status) == (rollback ? "rolled_back" : "stopped"));
    CHECK(h.applied_for("[rollout r-test/eu/rollback]") == (rollback ? 1 : 0));
    if (rollback) {
      // A stage the abort rolled back says so, not its gate's old verdict.
      const auto canary = stage_record(h, "canary");
      CHECK(word(canary.status) == "rolled_back");
      CHECK(canary.reason.rfind("aborted by carol, who asked for a rollback; rollback: 5 of 5 back "
                                "on fw v2",
                                0) == 0);
    }
  }
}

TEST_CASE(
    "answer lost, a sibling fails, then a signal: resumable with the call unknown; resume settles "
    "it") {
  Harness h(kPlan, failing_us_spec());
  h.settle_delay = 30min;
  WallTime signalled{};
  h.observer.hook = [&](const state::Event& e) {
    if (!is(e, "us", "stage_failed")) return;
    signalled = e.at;
    h.current->interrupt();
  };
  auto outcome = h.run(lose_eu_answer);
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::interrupted);
  CHECK(word(h.store.load_run(h.run_id)->status) == "interrupted");
  CHECK(outcome->reason.find("continue with rollout resume r-test") != std::string::npos);
  // The signal ended the wait at once, not at the settle's due time.
  CHECK(h.now - signalled < 1min);
  check_resume_settles_eu(h);
  CHECK(word(stage_record(h, "us").status) == "rolled_back");
}

TEST_CASE("answer lost, a sibling fails, the API unreadable: never terminal; resume settles it") {
  Harness h(kPlan, failing_us_spec());
  h.settle_delay = 30min;
  FakeFleet* api = nullptr;
  h.observer.hook = [&](const state::Event& e) {
    if (is(e, "us", "stage_failed")) api->fail_reads(true);
  };
  auto outcome = h.run([&](FakeFleet& f) {
    api = &f;
    lose_eu_answer(f);
  });
  REQUIRE(outcome);
  CHECK_FALSE(state::is_final(h.store.load_run(h.run_id)->status));
  check_resume_settles_eu(h);
}

TEST_CASE("a terminal run an older version left with an unknown outcome: resume settles it") {
  Harness h(kPlan, failing_us_spec());
  h.settle_delay = 30min;
  h.observer.hook = [&](const state::Event& e) {
    if (is(e, "us", "stage_failed")) h.current->interrupt();
  };
  REQUIRE(h.run(lose_eu_answer));
  h.observer.hook = {};
  // As an older version ended it: stopped, eu "stopped" and never dispatched, its call unknown.
  auto eu = stage_record(h, "eu");
  eu.status = state::StageStatus::stopped;
  state::WriteBatch batch;
  batch.run_id = h.run_id;
  batch.stages.push_back(eu);
  batch.run_status =
      state::RunStatusChange{state::RunStatus::stopped, "stage us failed", h.now, true};
  h.store.write(batch);
  auto resumed = h.run();
  REQUIRE(resumed);
  CHECK(resumed->ending == engine::Ending::stopped);
  check_eu_settled_and_rolled_back(h);
}

// A gate that would pass while a device is offline with its update under way waits until the
// device is declared lost (or back): the bake ends long before lost_after can.
TEST_CASE("a gate does not pass over devices that went dark mid-update before lost_after") {
  std::string plan = replaced(kLostPlan, "bake: 30m", "bake: 1m");
  plan = replaced(plan, "min_success: 80%", "min_success: 50%");
  plan = replaced(plan, "lost_after: 15m", "lost_after: 20m");
  Harness h(replaced(plan, "MAX_LOST", "0"), fleet_with_brick());
  auto outcome = h.run();
  REQUIRE(outcome);
  const auto eu = stage_record(h, "eu");
  check_dark_rollback_failed(h, *outcome, eu);
  CHECK(eu.reason.find("1 lost, more than max_lost 0 allows (0)") != std::string::npos);
  CHECK(eu.reason.find("d-brick (brick)") != std::string::npos);
  // It waited, saying why, rather than pass at the end of its bake.
  bool held = false;
  for (const auto& o : h.store.load_observations(h.run_id)) {
    CHECK(word(o.verdict) != "pass");
    held = held || o.reason.rfind(
                       "would pass, but 1 device(s) went offline with the update "
                       "under way and are lost if not back within lost_after 20m: "
                       "d-brick (brick); waiting until each is back or lost",
                       0) == 0;
  }
  CHECK(held);
  CHECK(h.stage_status()["us"] == "waiting");
}

TEST_CASE(
    "a device dark mid-update that max_lost tolerates does not hold the gate; a pass names it") {
  std::string plan = replaced(kLostPlan, "bake: 30m", "bake: 1m");
  plan = replaced(plan, "min_success: 80%", "min_success: 50%");
  Harness h(replaced(plan, "MAX_LOST", "1"), fleet_with_brick());
  auto outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::completed);
  const auto eu = stage_record(h, "eu");
  CHECK(word(eu.status) == "passed");
  REQUIRE(eu.dispatched_at);
  REQUIRE(eu.finished_at);
  CHECK(*eu.finished_at - *eu.dispatched_at < 15min);  // not held for lost_after
  // The devices still updating are named: the brick among them.
  const auto named = eu.reason.find("still updating when it passed: ");
  REQUIRE(named != std::string::npos);
  CHECK(eu.reason.find("d-brick (brick)", named) != std::string::npos);
}

// A per-device rollback of 100 devices whose every third answer is lost: its calls go out
// several at a time, and the lost ones are settled together with one reading of the devices,
// not one settle delay after another.
TEST_CASE("a 100-device rollback with a third of its answers lost ends within one settle delay") {
  const std::string plan = R"(version: 1
name: big-wave
flow_id: f-new
project: Demo
app: {name: fw, version: v3}
defaults:
  gate: {bake: 10m, timeout: 2h, poll: 1m, min_success: 100%, max_failed: 0}
stages:
  - name: wave
    groups: [EU]
    sample: {count: 100}
on_failure:
  action: rollback
  rollback: {flow_id: f-old, app: {name: fw, version: v2}}
)";
  test::FleetBuilder fleet(5);
  fleet.flows({"f-new", "f-old"}).group("EU", 120).failing("EU", 0.3);
  Harness h(plan, fleet);
  h.settle_delay = 2min;
  std::optional<WallTime> rollback_began, rollback_through;
  h.observer.hook = [&](const state::Event& e) {
    if (is(e, "wave", "rollback") && !rollback_began) rollback_began = e.at;
    if (is(e, "wave", "rollback_check")) rollback_through = e.at;  // every call went through
  };
  int rollback_calls = 0;
  auto outcome = h.run([&](FakeFleet& api) {
    api.decide = [&](const upswift::DeployRequest& r) -> std::optional<FakeFleet::Script> {
      if (!r.comment || r.comment->find("/wave/rollback]") == std::string::npos) return {};
      return ++rollback_calls % 3 == 0 ? std::optional(FakeFleet::Script::unknown_applied)
                                       : std::nullopt;
    };
  });
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::stopped);
  CHECK(h.stage_status()["wave"] == "rolled_back");
  const auto calls = h.store.load_stage_calls(h.run_id, "wave", state::CallKind::rollback);
  const auto targets = h.store.load_snapshot(h.run_id, "wave/rollback");
  REQUIRE(targets);
  CHECK(targets->size() >= 90);
  CHECK(calls.size() == targets->size());  // none sent twice: the lost ones were found applied
  std::size_t settled = 0;
  for (const auto& c : calls) settled += word(c.outcome) == "settled_applied";
  CHECK(settled == targets->size() / 3);
  REQUIRE(rollback_began);
  REQUIRE(rollback_through);
  // Sending takes no time on the driven clock: what it took is the settle delay, once.
  CHECK(*rollback_through - *rollback_began <= h.settle_delay + 1min);
  CHECK(h.applied_for("[rollout r-test/wave/rollback]") == static_cast<int>(targets->size()));
}

// A ramp is one stage to its operator: when its third step fails, its first two steps, which
// passed their gates, are rolled back with it.
namespace {

sim::FleetSpec ramp_fleet(const std::string& failing_tag = "") {
  test::FleetBuilder fleet(5);
  fleet.flows({"f-new", "f-old"}).group("Canary", 5).group("Rest", 5);
  for (int i = 0; i < 40; ++i) {
    fleet.device({.uuid = fmt::format("d-eu-{:02}", i),
                  .name = fmt::format("eu-{:02}", i),
                  .group = "EU",
                  .tags = {fmt::format("u{:02}", i)},
                  .apps = {{"fw", "v2"}}});
  }
  if (!failing_tag.empty())
    fleet.behave({.tag = failing_tag, .flow = "f-new", .failure_rate = 1.0});
  return fleet;
}

std::string failing_ramp_plan() {
  return replaced(replaced(kRampPlan, "max_failed: 10%", "max_failed: 0"), "    groups: [Rest]\n",
                  "    groups: [Rest]\non_failure:\n  action: rollback\n  rollback: {flow_id: "
                  "f-old, app: {name: fw, version: v2}}\n");
}

}  // namespace

TEST_CASE("a ramp's failed third step rolls back all of its steps, those that passed too") {
  // Which devices the third step draws (the draw follows the run id, not the failures).
  std::string third;
  {
    Harness clean(failing_ramp_plan(), ramp_fleet());
    REQUIRE(clean.run()->ending == engine::Ending::completed);
    const auto drawn = clean.store.load_snapshot("r-test", "eu@50%");
    REQUIRE(drawn);
    REQUIRE_FALSE(drawn->empty());
    third = drawn->front().uuid;
  }
  Harness h(failing_ramp_plan(), ramp_fleet("u" + third.substr(third.size() - 2)));
  auto outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::stopped);
  const auto status = h.stage_status();
  CHECK(status.at("canary") == "passed");  // not of the ramp: it keeps the new version
  CHECK(status.at("eu@10%") == "rolled_back");
  CHECK(status.at("eu@25%") == "rolled_back");
  CHECK(status.at("eu@50%") == "rolled_back");
  CHECK(status.at("eu@100%") == "waiting");
  CHECK(status.at("rest") == "waiting");
  for (const char* step : {"eu@10%", "eu@25%", "eu@50%"}) {
    CAPTURE(step);
    const auto targets = h.store.load_snapshot("r-test", std::string(step) + "/rollback");
    REQUIRE(targets);
    CHECK(h.applied_for(engine::rollback_marker("r-test", step)) ==
          static_cast<int>(targets->size()));
    CHECK(targets->size() == h.store.load_snapshot("r-test", step)->size());
  }
  CHECK(stage_record(h, "eu@10%").reason.find("rolling back with its ramp: stage eu@50% failed") !=
        std::string::npos);
  // Rolled back once the rollback's check read every device back on fw v2.
  CHECK(stage_record(h, "eu@10%").reason.find("; rollback: 4 of 4 back on fw v2") !=
        std::string::npos);
}

TEST_CASE("a pause holds new stages while the gate under way decides; lifted, the run goes on") {
  Harness h;
  h.observer.hook = [&](const state::Event& e) {
    if (!is(e, "canary", "dispatched")) return;
    h.store.request_pause(h.run_id, {"carol", e.at, "dashboards look odd"});
    h.current->wake();  // as the store's news, or the next heartbeat, would
  };
  auto paused = h.run();
  REQUIRE(paused);
  CHECK(paused->ending == engine::Ending::paused);
  CHECK(paused->reason.rfind("paused by carol at ", 0) == 0);
  CHECK(paused->reason.find(": dashboards look odd; rollout resume r-test lets it go on") !=
        std::string::npos);
  auto status = h.stage_status();
  CHECK(status["canary"] == "passed");  // its gate went on deciding
  CHECK(status["eu"] == "waiting");
  CHECK(status["us"] == "waiting");
  CHECK(h.applied_for("[rollout r-test/eu]") == 0);
  const auto& kinds = h.observer.kinds;
  CHECK(std::count(kinds.begin(), kinds.end(), ":pause") == 1);

  // Still paused: a new process starts nothing either.
  h.observer.hook = {};
  auto still = h.run();
  REQUIRE(still);
  CHECK(still->ending == engine::Ending::paused);
  CHECK(h.applied_for("[rollout r-test/eu]") == 0);

  h.store.lift_pause(h.run_id, "dave", h.now);
  CHECK_FALSE(h.store.pause_request(h.run_id));
  auto done = h.run();
  REQUIRE(done);
  CHECK(done->ending == engine::Ending::completed);
  CHECK(h.applied_for("[rollout r-test/eu]") == 1);
}

namespace {

// canary, then eu, then us (one after another), us failing half its new-build updates.
std::string sequential_plan(const std::string& on_failure_extra = "",
                            const std::string& us_extra = "") {
  std::string plan = replaced(kPlan, "  - name: us\n    needs: [canary]",
                              "  - name: us\n    needs: [eu]" + us_extra);
  return replaced(plan, "  rollback: {flow_id: f-old, app: {name: fw, version: v2}}",
                  "  rollback: {flow_id: f-old, app: {name: fw, version: v2}}" + on_failure_extra);
}

}  // namespace

TEST_CASE("rollback scope stage: the failed stage rolls back, the passed ones are named") {
  Harness h(sequential_plan(), failing_us_spec());
  auto outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::stopped);
  auto status = h.stage_status();
  CHECK(status["us"] == "rolled_back");
  CHECK(status["canary"] == "passed");
  CHECK(status["eu"] == "passed");
  CHECK(h.applied_for("[rollout r-test/eu/rollback]") == 0);
  CHECK(outcome->reason.find("; canary and eu keep the new version (rollout abort r-test "
                             "--rollback rolls them back too)") != std::string::npos);
  CHECK(h.store.load_run("r-test")->reason == outcome->reason);
}

TEST_CASE("rollback scope run: every stage the run updated rolls back, those that passed too") {
  Harness h(sequential_plan("\n  scope: run"), failing_us_spec());
  auto outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::stopped);
  auto status = h.stage_status();
  CHECK(status["us"] == "rolled_back");
  CHECK(status["canary"] == "rolled_back");
  CHECK(status["eu"] == "rolled_back");
  CHECK(status["everyone"] == "waiting");
  CHECK(h.applied_for("[rollout r-test/canary/rollback]") >= 1);
  CHECK(h.applied_for("[rollout r-test/eu/rollback]") >= 1);
  CHECK(stage_record(h, "eu").reason.find("; rolling back with the run: stage us failed") !=
        std::string::npos);
  CHECK(outcome->reason.find("keep the new version") == std::string::npos);
}

TEST_CASE("a stage's own on_failure overrides the plan's, either way") {
  // The plan rolls back; us only stops.
  Harness stop(sequential_plan("", "\n    on_failure: {action: stop}"), failing_us_spec());
  auto stopped = stop.run();
  REQUIRE(stopped);
  CHECK(stopped->ending == engine::Ending::stopped);
  CHECK(stop.stage_status()["us"] == "failed");
  CHECK(stop.applied_for("/rollback]") == 0);
  // The plan stops; us rolls back, with the plan's flow.
  std::string plan = replaced(sequential_plan("", "\n    on_failure: {action: rollback}"),
                              "  action: rollback\n", "  action: stop\n");
  Harness roll(plan, failing_us_spec());
  auto rolled = roll.run();
  REQUIRE(rolled);
  CHECK(roll.stage_status()["us"] == "rolled_back");
  CHECK(roll.applied_for("[rollout r-test/us/rollback]") >= 1);
  for (const auto& call : roll.store.load_stage_calls("r-test", "us", state::CallKind::rollback))
    CHECK(call.body.find("\"flow_id\":\"f-old\"") != std::string::npos);
}

TEST_CASE("a stage that waits for an approval says it will then wait for its window") {
  // Every day 22:00-23:00 UTC; the harness starts at midnight.
  const std::string plan =
      replaced(kPlan, "  - name: canary\n    groups: [Canary]\n",
               "  - name: canary\n    groups: [Canary]\n    approval: required\n    windows:\n"
               "      - {days: [mon, tue, wed, thu, fri, sat, sun], from: \"22:00\", to: "
               "\"23:00\", tz: UTC}\n");
  Harness h(plan);
  auto outcome = h.run();
  REQUIRE(outcome);
  CHECK(outcome->ending == engine::Ending::paused);
  bool said = false;
  for (const auto& e : h.store.load_events(h.run_id)) {
    if (word(e.kind) != "approval_needed") continue;
    INFO(e.message);
    CHECK(e.message.rfind("waiting for approval: rollout approve r-test canary; once approved, it "
                          "still waits (outside its maintenance windows until ",
                          0) == 0);
    said = true;
  }
  CHECK(said);
}
