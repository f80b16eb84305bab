#include <doctest/doctest.h>

#include "engine/gate.h"

using namespace rollout;
using namespace rollout::engine;
using namespace std::chrono_literals;
using plan::Threshold;

namespace {
plan::Gate gate(double min_success_pct, double max_failed_pct) {
  plan::Gate g;
  g.bake = 10min;
  g.timeout = 1h;
  g.min_success = {Threshold::Kind::percent, min_success_pct};
  g.max_failed = {Threshold::Kind::percent, max_failed_pct};
  return g;
}
}  // namespace

TEST_CASE("required successes round up, allowed failures round down") {
  CHECK(required_successes(gate(95, 2), 30) == 29);  // 28.5
  CHECK(required_successes(gate(100, 0), 7) == 7);
  CHECK(required_successes(gate(0, 0), 7) == 0);
  CHECK(allowed_failures(gate(95, 2), 30) == 0);  // 0.6
  CHECK(allowed_failures(gate(95, 2), 50) == 1);
  plan::Gate counts = gate(0, 0);
  counts.min_success = {Threshold::Kind::count, 40};
  counts.max_failed = {Threshold::Kind::count, 3};
  CHECK(required_successes(counts, 100) == 40);
  CHECK(allowed_failures(counts, 100) == 3);
}

TEST_CASE("feasibility before dispatch") {
  plan::Gate g = gate(100, 0);
  g.min_devices = 5;
  CHECK(check_feasible(g, 4) == "targets 4 device(s), fewer than min_devices 5");
  CHECK_FALSE(check_feasible(g, 5));
  g.min_success = {Threshold::Kind::count, 40};
  CHECK(check_feasible(g, 30) ==
        "needs 40 successes (min_success 40) but targets only 30 device(s)");
}

TEST_CASE("a pass needs the bake to be over") {
  const plan::Gate g = gate(90, 10);
  StatusCounts all_good{0, 0, 10, 0, 0, 0};
  CHECK(judge(g, 10, all_good, 5min).verdict == Verdict::wait);
  auto j = judge(g, 10, all_good, 10min);
  CHECK(j.verdict == Verdict::pass);
  CHECK(j.reason ==
        "10 >= 9 needed (min_success 90%), 0 failed <= 1 allowed; 10 of 10 succeeded, 0 failed, 0 "
        "aborted, 0 still updating");
}

TEST_CASE("too many failures fail at once, even during the bake") {
  const plan::Gate g = gate(90, 10);
  auto j = judge(g, 10, StatusCounts{3, 3, 2, 2, 0, 0}, 1min);
  CHECK(j.verdict == Verdict::fail);
  CHECK(j.reason ==
        "2 failed, more than max_failed 10% allows (1); 2 of 10 succeeded, 2 failed, 0 aborted, 6 "
        "still updating");
}

TEST_CASE("a stage that can no longer reach its successes fails") {
  const plan::Gate g = gate(90, 50);
  auto j = judge(g, 10, StatusCounts{0, 0, 7, 1, 2, 0}, 20min);
  CHECK(j.verdict == Verdict::fail);
  CHECK(j.reason.rfind("at most 7 can succeed, min_success 90% needs 9", 0) == 0);
}

TEST_CASE("no verdict by the timeout is a timeout") {
  const plan::Gate g = gate(100, 0);
  CHECK(judge(g, 10, StatusCounts{2, 0, 8, 0, 0, 0}, 59min).verdict == Verdict::wait);
  auto j = judge(g, 10, StatusCounts{2, 0, 8, 0, 0, 0}, 1h);
  CHECK(j.verdict == Verdict::timeout);
  CHECK(j.reason.rfind("no verdict after timeout 1h: 8 succeeded, 10 needed", 0) == 0);
}

TEST_CASE("devices without the run's update are called missing, never updating") {
  const plan::Gate g = gate(90, 10);
  StatusCounts c;
  c.success = 5;
  c.in_progress = 1;
  c.missing = 4;
  auto j = judge(g, 10, c, 1min);
  CHECK(j.verdict == Verdict::wait);
  CHECK(j.reason.find("1 still updating, 4 missing (no update of this run on them)") !=
        std::string::npos);
}

TEST_CASE("tally: what the gate counts each reading as") {
  using state::DeviceStatus;
  const std::vector<Reading> readings = {
      {DeviceStatus::success, 1},     {DeviceStatus::success, 2}, {DeviceStatus::failed, 3},
      {DeviceStatus::aborted, 4},     {DeviceStatus::other, 5},   {DeviceStatus::pending, 6},
      {DeviceStatus::in_progress, 7}, {DeviceStatus::missing, 0}, {DeviceStatus::unlisted, 0}};
  const StatusCounts c = tally(readings);
  CHECK(c.success == 2);
  CHECK(c.failed == 1);
  CHECK(c.aborted == 2);  // a status Upswift added is not a success
  CHECK(c.pending == 1);
  CHECK(c.in_progress == 1);
  CHECK(c.missing == 2);  // a device that left the stage's groups is still a target
  CHECK(c.total() == static_cast<std::int64_t>(readings.size()));
  CHECK(tally({}).total() == 0);
}

TEST_CASE("next poll: at the poll interval, never past the bake's end or the timeout") {
  plan::Gate g = gate(95, 2);  // bake 10 min, timeout 1 h
  g.poll = 60s;
  CHECK(next_poll(g, 0ms) == 60s);
  CHECK(next_poll(g, 9min + 30s) == 30s);  // the bake ends first
  CHECK(next_poll(g, 10min) == 60s);
  CHECK(next_poll(g, 59min + 20s) == 40s);  // the timeout comes first
  CHECK(next_poll(g, 1h) == 1ms);           // never a busy loop
  CHECK(next_poll(g, 2h) == 1ms);
}

TEST_CASE("lost: an update under way on a device offline past lost_after") {
  using state::DeviceStatus;
  plan::Gate g = gate(90, 0);
  g.lost_after = 15min;
  const WallTime seen(std::chrono::hours(1000));
  const WallTime later = seen + 16min;
  CHECK(is_lost(g, DeviceStatus::in_progress, true, 0, seen, later));
  CHECK_FALSE(is_lost(g, DeviceStatus::in_progress, true, 0, seen, seen + 15min));  // not longer
  CHECK_FALSE(is_lost(g, DeviceStatus::in_progress, true, 1, seen, later));         // online again
  CHECK_FALSE(is_lost(g, DeviceStatus::in_progress, true, -1, seen, later));        // not read
  // Pending counts only once the update was seen in progress (it went back to pending).
  CHECK(is_lost(g, DeviceStatus::pending, true, 0, seen, later));
  CHECK_FALSE(is_lost(g, DeviceStatus::pending, false, 0, seen, later));
  // A final status is never lost: the device finished, whatever it is doing now.
  for (DeviceStatus final_status :
       {DeviceStatus::success, DeviceStatus::failed, DeviceStatus::aborted, DeviceStatus::missing})
    CHECK_FALSE(is_lost(g, final_status, true, 0, seen, later));
}

TEST_CASE("lost devices are counted apart, never as successes, and fail a stage at once") {
  using state::DeviceStatus;
  std::vector<Reading> readings(10, {DeviceStatus::success, 1, false});
  readings[0] = {DeviceStatus::in_progress, 2, true};
  readings[1] = {DeviceStatus::in_progress, 3, false};
  const StatusCounts c = tally(readings);
  CHECK(c.lost == 1);
  CHECK(c.in_progress == 1);
  CHECK(c.success == 8);
  CHECK(c.total() == 10);
  CHECK(c.finished() == 9);
  plan::Gate g = gate(80, 0);
  g.max_lost = {Threshold::Kind::count, 0};
  // During the bake, with enough successes: one lost is one too many.
  Judgement j = judge(g, 10, c, 1min);
  CHECK(j.verdict == Verdict::fail);
  CHECK(j.reason.rfind("1 lost, more than max_lost 0 allows (0); 8 of 10 succeeded", 0) == 0);
  CHECK(j.reason.find("1 lost (offline mid-update for more than lost_after 15m)") !=
        std::string::npos);
  // Tolerated: the bake decides; 8 successes of 10 pass min_success 80%.
  g.max_lost = {Threshold::Kind::percent, 10};
  CHECK(allowed_lost(g, 10) == 1);
  CHECK(judge(g, 10, c, 1min).verdict == Verdict::wait);
  CHECK(judge(g, 10, c, 11min).verdict == Verdict::pass);
  // ... but a lost device is no success: at 90%, 8 + 1 updating cannot make 9 once 2 are lost.
  g = gate(90, 0);
  g.max_lost = {Threshold::Kind::count, 2};
  readings[1].lost = true;
  j = judge(g, 10, tally(readings), 11min);
  CHECK(j.verdict == Verdict::fail);
  CHECK(j.reason.rfind("at most 8 can succeed, min_success 90% needs 9", 0) == 0);
}

TEST_CASE("abort_when: met once min_finished have finished, at its share or count") {
  plan::AbortWhen when;
  when.failed = Threshold{Threshold::Kind::percent, 3};
  when.lost = Threshold{Threshold::Kind::count, 2};
  when.min_finished = 50;
  StatusCounts c;
  c.success = 40;
  c.failed = 5;
  // 45 finished of 100: not yet counted, however many failed.
  CHECK_FALSE(abort_criterion_met(when, 100, c));
  c.success = 45;
  auto met = abort_criterion_met(when, 100, c);
  REQUIRE(met);
  CHECK(*met ==
        "abort_when failed 3% met (3% of 100 = 3 device(s)): 5 of the 100 devices the "
        "dispatched stages targeted failed, 0 lost; 50 finished (min_finished 50)");
  // 3% of 100 is 3: two failures are not enough.
  c.failed = 2;
  c.success = 48;
  CHECK_FALSE(abort_criterion_met(when, 100, c));
  c.lost = 2;
  met = abort_criterion_met(when, 100, c);
  REQUIRE(met);
  CHECK(met->rfind("abort_when lost 2 met (a count = 2 device(s)): 2 of the 100", 0) == 0);
  // A share of a few devices is still at least one device.
  plan::AbortWhen small;
  small.failed = Threshold{Threshold::Kind::percent, 1};
  StatusCounts one;
  one.success = 9;
  CHECK_FALSE(abort_criterion_met(small, 10, one));
  one.failed = 1;
  CHECK(abort_criterion_met(small, 10, one));
  // failed: 0 is the first failure anywhere.
  plan::AbortWhen first;
  first.failed = Threshold{Threshold::Kind::count, 0};
  one.failed = 0;
  CHECK_FALSE(abort_criterion_met(first, 10, one));
  one.failed = 1;
  REQUIRE(abort_criterion_met(first, 10, one));
  CHECK(abort_criterion_met(first, 10, one)
            ->rfind("abort_when failed 0 met (a count = 1 device(s))", 0) == 0);
}
