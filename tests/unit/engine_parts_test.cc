// The engine's pure parts on their own: the frontier, the call ledger and its write-ahead
// moves, the rollback's targets and requests, the markers. No clock, no I/O.
#include <doctest/doctest.h>

#include <deque>

#include "check_plan.h"
#include "engine/frontier.h"
#include "engine/ledger.h"
#include "engine/markers.h"
#include "engine/rollback.h"
#include "engine/selection.h"

using namespace rollout;
using namespace rollout::engine;
using state::ApiCall;
using state::CallOutcome;

namespace {

// canary -> eu, us -> late (needs both)
const char* kDiamond = R"(version: 1
name: diamond
flow_id: f
project: Demo
on_failure:
  action: rollback
  rollback: {flow_id: old, comment: back}
stages:
  - {name: canary, groups: [Canary]}
  - {name: eu, groups: [EU], needs: [canary]}
  - {name: us, groups: [US], needs: [canary]}
  - {name: late, groups: [EU, US], needs: [eu, us]}
  - {name: wave, groups: [EU], sample: {count: 2}}
  - {name: left, groups: [EU], filters: [{type: update_status, operand: is_not, value: success}]}
)";

std::vector<dag::StageId> in_play(const Frontier& f) {
  std::vector<dag::StageId> out;
  f.visit([&](dag::StageId id) { out.push_back(id); });
  return out;
}

ApiCall call(std::int64_t id, const std::string& body, std::optional<CallOutcome> outcome,
             WallTime at = WallTime(std::chrono::seconds(100))) {
  ApiCall c;
  c.id = id;
  c.body = body;
  c.outcome = outcome;
  c.intent_at = at;
  if (outcome) c.outcome_at = at + std::chrono::seconds(1);
  c.message = outcome ? std::string(state::name(*outcome)) : "";
  return c;
}

std::vector<state::SnapshotDevice> devices(int n) {
  std::vector<state::SnapshotDevice> out;
  for (int i = 1; i <= n; ++i)
    out.push_back({fmt::format("d{}", i), i, fmt::format("dev-{}", i), "EU"});
  return out;
}

}  // namespace

TEST_CASE("frontier: a stage is in play once its needs passed, or when it was under way") {
  const auto c = test::check_plan(kDiamond);
  REQUIRE(c.graph);
  const std::size_t n = c.graph->size();
  // A new run: the stages that need nothing.
  Frontier f(*c.graph, std::vector<bool>(n, false), std::vector<bool>(n, false));
  CHECK(in_play(f) == std::vector<dag::StageId>{0, 4, 5});
  CHECK(f.needs_met(0));
  CHECK_FALSE(f.needs_met(1));
  f.pass(0);
  CHECK(in_play(f) == std::vector<dag::StageId>{0, 1, 2, 4, 5});  // in graph order
  f.prune();
  CHECK(in_play(f) == std::vector<dag::StageId>{1, 2, 4, 5});
  f.pass(1);
  CHECK_FALSE(f.needs_met(3));  // late needs us too
  f.pass(2);
  CHECK(f.needs_met(3));
  f.pass(2);  // twice is once
  f.pass(4);
  f.pass(5);
  f.prune();
  CHECK(in_play(f) == std::vector<dag::StageId>{3});
  CHECK_FALSE(f.all_passed());
  f.pass(3);
  CHECK(f.all_passed());
  // A stage rolled back after it had passed is in play again, and what needs it waits.
  f.unpass(1);
  CHECK_FALSE(f.all_passed());
  CHECK_FALSE(f.passed(1));
  CHECK_FALSE(f.needs_met(3));
  f.prune();
  CHECK(in_play(f) == std::vector<dag::StageId>{1});
}

TEST_CASE("frontier of a resumed run: passed stages out, started ones in whatever their needs") {
  const auto c = test::check_plan(kDiamond);
  REQUIRE(c.graph);
  std::vector<bool> passed = {true, false, false, false, true, true};
  std::vector<bool> started = {true, true, false, true, true, true};  // late was under way
  Frontier f(*c.graph, passed, started);
  CHECK(in_play(f) == std::vector<dag::StageId>{1, 2, 3});
  CHECK_FALSE(f.needs_met(3));
  // A stage that passes during a visit lets in the stages after it, in the same visit.
  Frontier g(*c.graph, std::vector<bool>(6, false), std::vector<bool>(6, false));
  std::vector<dag::StageId> seen;
  g.visit([&](dag::StageId id) {
    seen.push_back(id);
    g.pass(id);
  });
  CHECK(seen.size() == 6);
  CHECK(g.all_passed());
}

TEST_CASE("call ledger: calls indexed by body once, kept in step with intents and outcomes") {
  CallLedger ledger({call(1, "a", CallOutcome::failed), call(2, "b", CallOutcome::accepted),
                     call(3, "a", std::nullopt)});
  CHECK(ledger.all().size() == 3);
  REQUIRE(ledger.tries("a").size() == 2);
  CHECK(ledger.tries("a")[1]->id == 3);
  CHECK(ledger.tries("c").empty());
  const ApiCall* before = ledger.tries("a")[0];
  for (int i = 0; i < 100; ++i) ledger.add(call(10 + i, fmt::format("x{}", i), std::nullopt));
  CHECK(ledger.tries("a")[0] == before);  // addresses stay as calls are added
  ledger.record(3, CallOutcome::settled_applied, WallTime(std::chrono::seconds(500)), "found");
  CHECK(ledger.tries("a")[1]->outcome == CallOutcome::settled_applied);
  CHECK(ledger.tries("a")[1]->message == "found");
  CHECK(through_at(*ledger.tries("a")[1]) == WallTime(std::chrono::seconds(500)));
  ledger.record(999, CallOutcome::accepted, WallTime{}, "");  // unknown id: nothing
}

TEST_CASE("next move: the write-ahead rules for one request's tries") {
  const std::set<std::int64_t> mine = {3, 4, 5};
  std::deque<CallLedger> ledgers;  // a move points into its ledger: they outlive the checks
  auto move = [&](std::vector<ApiCall> calls, int max = 3) {
    ledgers.emplace_back(calls);
    return next_move(ledgers.back().all(), mine, max);
  };
  // Never sent: send.
  CHECK(move({}).what == Move::send);
  // One went through, accepted or settled as applied: done, whatever came after.
  CHECK(move({call(1, "a", CallOutcome::accepted)}).what == Move::done);
  CHECK(move({call(1, "a", CallOutcome::settled_not_applied),
              call(2, "a", CallOutcome::settled_applied)})
            .what == Move::done);
  // An intent without an outcome, or an unknown one: settle before anything else.
  CHECK(move({call(1, "a", std::nullopt)}).what == Move::settle);
  const Move unknown =
      move({call(1, "a", CallOutcome::failed), call(2, "a", CallOutcome::unknown)});
  CHECK(unknown.what == Move::settle);
  CHECK(unknown.call->id == 2);
  // Refused by Upswift in this process: a person must look. In an earlier one: try again.
  CHECK(move({call(3, "a", CallOutcome::refused)}).what == Move::refused);
  CHECK(move({call(1, "a", CallOutcome::refused)}).what == Move::send);
  // Certainly not applied: sent again, until this process tried max times.
  const Move again = move({call(3, "a", CallOutcome::failed), call(4, "a", CallOutcome::failed)});
  CHECK(again.what == Move::send);
  CHECK(again.attempts == 2);
  const Move gave_up =
      move({call(1, "a", CallOutcome::failed), call(3, "a", CallOutcome::failed),
            call(4, "a", CallOutcome::settled_not_applied), call(5, "a", CallOutcome::failed)});
  CHECK(gave_up.what == Move::gave_up);
  CHECK(gave_up.attempts == 3);  // the earlier process's try is not counted
  CHECK(move({call(3, "a", CallOutcome::failed), call(4, "a", CallOutcome::failed),
              call(5, "a", CallOutcome::failed)},
             0)
            .what == Move::send);  // 0: no limit
}

TEST_CASE("rollback targets: every device the update reached, except where it was aborted") {
  using state::DeviceStatus;
  const auto snapshot = devices(6);
  const auto targets = rollback_targets(
      snapshot, {DeviceStatus::success, DeviceStatus::failed, DeviceStatus::in_progress,
                 DeviceStatus::aborted, DeviceStatus::missing, DeviceStatus::unlisted});
  REQUIRE(targets.size() == 3);
  CHECK(targets[0].uuid == "d1");
  CHECK(targets[1].uuid == "d2");
  CHECK(targets[2].uuid == "d3");  // still on its way: it would finish onto the bad version
}

TEST_CASE("rollback requests: the stage's own selection when it reaches exactly its devices") {
  const auto c = test::check_plan(kDiamond);
  REQUIRE(c.loaded.plan);
  const plan::Plan& p = *c.loaded.plan;
  const auto snapshot = devices(4);
  // Every device affected, a fixed selection: one call, the stage's groups and filters.
  const auto whole = rollback_requests(p, p.stages[1], "r-1", snapshot.size(), snapshot);
  REQUIRE(whole.size() == 1);
  CHECK(whole[0].flow_id == "old");
  CHECK(whole[0].groups == std::vector<std::string>{"EU"});
  CHECK(whole[0].comment == "back [rollout r-1/eu/rollback]");
  CHECK(named_devices(whole[0]).empty());
  // Some devices only: one specific_device call each.
  const std::vector<state::SnapshotDevice> some(snapshot.begin(), snapshot.begin() + 2);
  const auto each = rollback_requests(p, p.stages[1], "r-1", snapshot.size(), some);
  REQUIRE(each.size() == 2);
  CHECK(each[0].groups.empty());
  CHECK(named_devices(each[0]) == std::vector<std::string>{"d1"});
  CHECK(named_devices(each[1]) == std::vector<std::string>{"d2"});
  // A sampled wave, or a selection by update state, never rolls back by selection.
  CHECK(rollback_requests(p, p.stages[4], "r-1", snapshot.size(), snapshot).size() == 4);
  CHECK(rollback_requests(p, p.stages[5], "r-1", snapshot.size(), snapshot).size() == 4);
  // Nothing reached: nothing sent.
  CHECK(rollback_requests(p, p.stages[1], "r-1", snapshot.size(), {}).empty());
  // A `retry --rollback` names each device, even every one of them, and carries its number:
  // its bodies differ from the first rollback's, so the ledger sends them.
  const auto again = rollback_requests(p, p.stages[1], "r-1", snapshot.size(), snapshot, 2);
  REQUIRE(again.size() == 4);
  CHECK(named_devices(again[3]) == std::vector<std::string>{"d4"});
  CHECK(again[0].comment == "back [rollout r-1/eu/rollback] (retry 2)");
}

TEST_CASE("a rollback's check: back, failed, unfinished; over when nothing is unfinished or late") {
  using S = state::DeviceStatus;
  struct Case {
    std::vector<S> read;
    bool timed_out;
    bool over;
    std::vector<std::size_t> back, failed, unfinished;
  };
  const std::vector<Case> cases = {
      {{S::success, S::success}, false, true, {0, 1}, {}, {}},
      {{S::success, S::failed, S::aborted}, false, true, {0}, {1, 2}, {}},
      {{S::success, S::in_progress}, false, false, {0}, {}, {1}},
      {{S::success, S::in_progress}, true, true, {0}, {}, {1}},
      // Not on the device yet, gone from the listing, a word this version does not know:
      // none of them is back.
      {{S::missing, S::unlisted, S::other, S::pending}, false, false, {}, {}, {0, 1, 2, 3}},
      {{S::missing, S::failed}, true, true, {}, {1}, {0}},
      {{}, false, true, {}, {}, {}},
  };
  for (std::size_t k = 0; k < cases.size(); ++k) {
    CAPTURE(k);
    std::vector<Reading> readings;
    for (S st : cases[k].read) readings.push_back({st, 7, false});
    const RollbackCheck c = judge_rollback(readings, cases[k].timed_out);
    CHECK(c.over == cases[k].over);
    CHECK(c.back == cases[k].back);
    CHECK(c.failed == cases[k].failed);
    CHECK(c.unfinished == cases[k].unfinished);
  }
}

TEST_CASE("what a rollback brings devices back to, as its summary says it") {
  plan::Rollback rb{"old", upswift::AppVersion{"fw", "2.3"}, std::nullopt, std::nullopt};
  CHECK(rollback_target(rb) == "fw 2.3");
  rb.app.reset();
  CHECK(rollback_target(rb) == "rollback flow old");
}

TEST_CASE("markers and keys: what finds a run's calls and records") {
  CHECK(dispatch_marker("r-1", "eu") == "[rollout r-1/eu]");
  CHECK(rollback_marker("r-1", "eu") == "[rollout r-1/eu/rollback]");
  CHECK(call_marker("r-1", "eu", 0) == "[rollout r-1/eu]");
  CHECK(call_marker("r-1", "eu", 2) == "[rollout r-1/eu] (retry 2)");
  // A retry's marker still contains the stage's: the gate finds it.
  CHECK(call_marker("r-1", "eu", 2).find(dispatch_marker("r-1", "eu")) == 0);
  CHECK(with_marker(std::nullopt, "[m]") == "[m]");
  CHECK(with_marker("fw 2.4", "[m]") == "fw 2.4 [m]");
  CHECK(rollback_key("eu") == "eu/rollback");
  CHECK(retry_key("eu", 3) == "eu/retry-3");
  CHECK(rollback_retry_key("eu", 1) == "eu/rollback-retry-1");
  CHECK(rollback_marker("r-1", "eu", 1) == "[rollout r-1/eu/rollback] (retry 1)");
  // A rollback retry's marker contains the rollback's: its check finds the retry's update.
  CHECK(rollback_marker("r-1", "eu", 1).find(rollback_marker("r-1", "eu")) == 0);
  // ... and never the dispatch's, nor the dispatch's the rollback's.
  CHECK(rollback_marker("r-1", "eu").find(dispatch_marker("r-1", "eu")) == std::string::npos);
  CHECK(is_crash_point("after_intent"));
  CHECK_FALSE(is_crash_point("after_intnet"));
}

TEST_CASE("a ramp step draws its share of the ramp's selection in all, less earlier steps") {
  CHECK(engine::ramp_step_size(40, 0, 10) == 4);
  CHECK(engine::ramp_step_size(40, 4, 25) == 6);
  CHECK(engine::ramp_step_size(40, 10, 100) == 30);
  // 1% of 20 is 1 device (rounded up); 5% of 20 is still 1: nothing to add at that step.
  CHECK(engine::ramp_step_size(20, 0, 1) == 1);
  CHECK(engine::ramp_step_size(20, 1, 5) == 0);
  // Devices that left the selection make no step negative.
  CHECK(engine::ramp_step_size(10, 12, 50) == 0);
}

namespace {

// get_devices_state answered from pages written in the test: each call the next page.
class StatePages : public upswift::FleetApi {
 public:
  std::vector<upswift::StatesPage> pages;
  std::vector<upswift::StatesQuery> asked;
  void deploy_update(const upswift::DeployRequest&,
                     std::function<void(upswift::Result<upswift::Accepted>)>) override {}
  void devices_details(const upswift::DevicesQuery&,
                       std::function<void(upswift::Result<upswift::DevicesPage>)>) override {}
  void get_devices_state(const upswift::StatesQuery& q,
                         std::function<void(upswift::Result<upswift::StatesPage>)> done) override {
    asked.push_back(q);
    const std::size_t n = asked.size() - 1;
    done({n < pages.size() ? pages[n] : upswift::StatesPage{}, {}});
  }
};

upswift::DeviceState listed(const std::string& uuid, bool online) {
  return {uuid, "n-" + uuid, online ? "online" : "offline"};
}

std::optional<upswift::Result<engine::Presence>> read(StatePages& api,
                                                      const std::vector<std::string>& groups) {
  static const std::vector<state::SnapshotDevice> snapshot{
      {"d-1", 1, "", "A"}, {"d-2", 2, "", "A"}, {"d-3", 3, "", "B"}};
  static const engine::DeviceIndex index(snapshot);
  std::optional<upswift::Result<engine::Presence>> out;
  engine::read_online(api, "Demo", groups, snapshot, index,
                      [&](upswift::Result<engine::Presence> r) { out = std::move(r); });
  return out;
}

}  // namespace

TEST_CASE(
    "a gate's online read: each snapshot device's state, in any order, over pages and groups") {
  StatePages api;
  // Group A's devices in two pages, with a device that is not the stage's; then group B,
  // listed out of the snapshot's order; d-3 is not listed at all the second time.
  api.pages = {{true, {listed("d-2", false), listed("x-9", true)}},
               {false, {listed("d-1", true)}},
               {false, {listed("d-3", false)}}};
  auto r = read(api, {"A", "B"});
  REQUIRE(r);
  REQUIRE(r->ok());
  CHECK(*r->value == engine::Presence{1, 0, 0});
  REQUIRE(api.asked.size() == 3);
  CHECK(api.asked[1].offset == "x-9");  // paged by the last device_uuid
  CHECK(api.asked[2].group_name == "B");
  CHECK_FALSE(api.asked[2].offset);
  // A device no page lists stays unread (-1).
  StatePages partial;
  partial.pages = {{false, {listed("d-1", true)}}};
  r = read(partial, {});
  REQUIRE(r->ok());
  CHECK(*r->value == engine::Presence{1, -1, -1});
}

TEST_CASE("a gate's online read stops when the server does not move on from its offset") {
  // The first page again, "more" for ever: its last device is the offset it was given.
  StatePages stuck;
  const upswift::StatesPage first{true, {listed("x-1", true), listed("x-2", true)}};
  stuck.pages = {first, first, first};
  auto r = read(stuck, {});
  REQUIRE(r);
  REQUIRE_FALSE(r->ok());
  CHECK(r->error.message.find("get_devices_state: a page ends with the device the one before "
                              "ended with (x-2)") != std::string::npos);
  CHECK(stuck.asked.size() == 2);
  // A snapshot device listed twice.
  StatePages repeats;
  repeats.pages = {{true, {listed("d-1", true)}},
                   {true, {listed("d-1", true), listed("d-2", true)}}};
  r = read(repeats, {});
  REQUIRE_FALSE(r->ok());
  CHECK(r->error.message.find("page 2 repeats a device already listed (d-1)") != std::string::npos);
}
