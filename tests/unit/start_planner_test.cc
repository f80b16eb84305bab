// The start planner alone: which stage starts now and why each other one waits, as a table
// of cases over one stage's record, its plan, the run's approvals, pause and max_parallel.
// No engine, no store, no clock.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include "engine/start_planner.h"

using namespace rollout;
using namespace rollout::engine;
using namespace std::chrono_literals;
using state::StageStatus;

namespace {

WallTime utc(int y, unsigned m, unsigned d, std::chrono::minutes at) {
  return std::chrono::sys_days{std::chrono::year{y} / m / d} + at;
}

const WallTime kNoon = utc(2026, 12, 7, 12h);           // a Monday
const plan::Window kNights{{}, 2 * 60, 5 * 60, "UTC"};  // every day 02:00-05:00 UTC

plan::Stage stage(const std::string& name, bool approval = false,
                  std::vector<plan::Window> windows = {}, std::vector<plan::Freeze> freezes = {}) {
  plan::Stage s;
  s.name = name;
  s.approval_required = approval;
  s.windows = std::move(windows);
  s.freezes = std::move(freezes);
  return s;
}

state::StageRecord record(const std::string& name, StageStatus status) {
  state::StageRecord r;
  r.run_id = "r-1";
  r.name = name;
  r.status = status;
  return r;
}

state::Approval approval(const std::string& stage, WallTime at) {
  return {"r-1", stage, "ana", at, "looks good"};
}

// One stage under test, with `busy` others under way beside it.
struct Case {
  const char* what;
  StageStatus status = StageStatus::waiting;
  bool needs_met = true;
  bool approval_required = false;
  std::vector<plan::Window> windows = {};
  std::vector<plan::Freeze> freezes = {};
  std::vector<state::Approval> approvals = {};
  bool run_paused = false;
  int max_parallel = 4;
  int busy = 0;
  bool window_timer = false;
  StartStep step = StartStep::none;
  Hold hold = Hold::none;
};

}  // namespace

TEST_CASE("the start planner: one stage, every reason it may wait") {
  // Twenty years of freeze: no window opens within a year.
  const plan::Freeze forever{utc(2026, 1, 1, 0h), utc(2046, 1, 1, 0h), "", "2026 .. 2045"};
  const plan::Freeze today{utc(2026, 12, 7, 0h), utc(2026, 12, 8, 0h), "", "2026-12-07"};
  // Given at 11:00, before the gate paused at 11:30; and at 11:45, after it.
  const auto before_pause = approval("s", kNoon - 1h);
  const auto after_pause = approval("s", kNoon - 15min);
  const std::vector<Case> cases = {
      {.what = "nothing holds it", .step = StartStep::start, .hold = Hold::none},
      {.what = "a need not passed",
       .needs_met = false,
       .step = StartStep::none,
       .hold = Hold::needs},
      {.what = "approval required, none given",
       .approval_required = true,
       .step = StartStep::ask_approval,
       .hold = Hold::approval},
      {.what = "asked already, still no approval",
       .status = StageStatus::awaiting_approval,
       .approval_required = true,
       .step = StartStep::none,
       .hold = Hold::approval},
      {.what = "approved: starts",
       .status = StageStatus::awaiting_approval,
       .approval_required = true,
       .approvals = {approval("s", kNoon)},
       .step = StartStep::start,
       .hold = Hold::none},
      {.what = "an approval of another stage does not count",
       .approval_required = true,
       .approvals = {approval("other", kNoon)},
       .step = StartStep::ask_approval,
       .hold = Hold::approval},
      {.what = "needs before approval: not asked yet",
       .needs_met = false,
       .approval_required = true,
       .step = StartStep::none,
       .hold = Hold::needs},
      {.what = "the run is paused",
       .run_paused = true,
       .step = StartStep::none,
       .hold = Hold::run_paused},
      {.what = "paused run: approval is still asked",
       .approval_required = true,
       .run_paused = true,
       .step = StartStep::ask_approval,
       .hold = Hold::approval},
      {.what = "max_parallel reached",
       .max_parallel = 2,
       .busy = 2,
       .step = StartStep::none,
       .hold = Hold::max_parallel},
      {.what = "a place left",
       .max_parallel = 2,
       .busy = 1,
       .step = StartStep::start,
       .hold = Hold::none},
      {.what = "outside its window",
       .windows = {kNights},
       .step = StartStep::wait_window,
       .hold = Hold::window},
      {.what = "its window timer already set",
       .windows = {kNights},
       .window_timer = true,
       .step = StartStep::none,
       .hold = Hold::window},
      {.what = "in a freeze",
       .freezes = {today},
       .step = StartStep::wait_window,
       .hold = Hold::window},
      {.what = "no window within a year",
       .freezes = {forever},
       .step = StartStep::no_window,
       .hold = Hold::no_window},
      {.what = "max_parallel before the window",
       .windows = {kNights},
       .max_parallel = 1,
       .busy = 1,
       .step = StartStep::none,
       .hold = Hold::max_parallel},
      {.what = "inconclusive gate, no approval",
       .status = StageStatus::paused,
       .step = StartStep::none,
       .hold = Hold::inconclusive_gate},
      {.what = "inconclusive gate, approved before it paused",
       .status = StageStatus::paused,
       .approvals = {before_pause},
       .step = StartStep::none,
       .hold = Hold::inconclusive_gate},
      {.what = "inconclusive gate, approved since",
       .status = StageStatus::paused,
       .approvals = {after_pause},
       .step = StartStep::pass,
       .hold = Hold::none},
      {.what = "under way",
       .status = StageStatus::gating,
       .step = StartStep::none,
       .hold = Hold::none},
      {.what = "failed",
       .status = StageStatus::failed,
       .step = StartStep::none,
       .hold = Hold::none},
  };
  for (const Case& c : cases) {
    const std::string what = c.what;
    CAPTURE(what);
    std::vector<plan::Stage> specs{stage("s", c.approval_required, c.windows, c.freezes)};
    std::vector<state::StageRecord> records{record("s", c.status)};
    records[0].dispatched_at = kNoon - 1h;
    records[0].finished_at = kNoon - 30min;  // when paused: its gate paused then
    for (int k = 0; k < c.busy; ++k) {
      specs.push_back(stage(fmt::format("busy{}", k)));
      records.push_back(record(specs.back().name, StageStatus::gating));
    }
    StartInput in;
    in.now = kNoon;
    in.max_parallel = c.max_parallel;
    in.run_paused = c.run_paused;
    in.approvals = c.approvals;
    for (std::size_t i = 0; i < specs.size(); ++i)
      in.in_play.push_back(
          {i, &specs[i], &records[i], i == 0 ? c.needs_met : true, i == 0 && c.window_timer});
    const StartPlan plan = plan_starts(in);
    REQUIRE(plan.decisions.size() == specs.size());
    CHECK(plan.decisions[0].step == c.step);
    CHECK(plan.decisions[0].hold == c.hold);
    CHECK(plan.waiting_on_people ==
          (c.hold == Hold::approval || c.hold == Hold::inconclusive_gate));
    CHECK(plan.passes() == (c.step == StartStep::pass));
    CHECK(plan.active ==
          c.busy + (c.step == StartStep::start || state::is_active(c.status) ? 1 : 0));
    if (c.hold == Hold::window && !c.window_timer) {
      REQUIRE(plan.decisions[0].until);
      CHECK(*plan.decisions[0].until > kNoon);
    }
  }
}

TEST_CASE("the start planner: places under max_parallel go in graph order") {
  std::vector<plan::Stage> specs{stage("a"), stage("b"), stage("c"), stage("d")};
  std::vector<state::StageRecord> records{
      record("a", StageStatus::gating), record("b", StageStatus::waiting),
      record("c", StageStatus::waiting), record("d", StageStatus::waiting)};
  StartInput in;
  in.now = kNoon;
  in.max_parallel = 3;
  for (std::size_t i = 0; i < specs.size(); ++i)
    in.in_play.push_back({i, &specs[i], &records[i], true, false});
  const StartPlan plan = plan_starts(in);
  CHECK(plan.decisions[1].step == StartStep::start);
  CHECK(plan.decisions[2].step == StartStep::start);
  CHECK(plan.decisions[3].hold == Hold::max_parallel);
  CHECK(plan.active == 3);
  CHECK(describe_hold(plan.decisions[3], specs[3], "r-1", 3, kNoon) ==
        "a free slot (max_parallel 3)");
}

TEST_CASE("the start planner: what a held stage waits for, in words") {
  const plan::Stage eu = stage("eu", true, {kNights});
  StartDecision d;
  d.hold = Hold::approval;
  CHECK(describe_hold(d, eu, "r-1", 2, kNoon) == "approval: rollout approve r-1 eu");
  d.hold = Hold::inconclusive_gate;
  CHECK(describe_hold(d, eu, "r-1", 2, kNoon) ==
        "a person: gate inconclusive, rollout approve r-1 eu lets it pass");
  d.hold = Hold::run_paused;
  CHECK(describe_hold(d, eu, "r-1", 2, kNoon) == "the run's pause: rollout resume r-1 lifts it");
  d.hold = Hold::window;
  CHECK(describe_hold(d, eu, "r-1", 2, kNoon) ==
        "outside its maintenance windows until 2026-12-08T02:00 UTC");
  d.hold = Hold::needs;
  CHECK(describe_hold(d, eu, "r-1", 2, kNoon).empty());  // the caller names the needs
}

TEST_CASE("an approval counts for its stage; for a paused gate, only one given since it paused") {
  const WallTime t = WallTime(std::chrono::hours(24 * 365 * 50));
  state::StageRecord waiting;
  waiting.name = "us";
  waiting.status = StageStatus::awaiting_approval;
  state::StageRecord paused = waiting;
  paused.status = StageStatus::paused;
  paused.finished_at = t;
  const state::Approval early{"r", "us", "alice", t - 1min, ""};
  const state::Approval late{"r", "us", "alice", t, ""};
  const state::Approval other{"r", "eu", "alice", t + 1min, ""};
  CHECK(approval_counts(early, waiting));
  CHECK_FALSE(approval_counts(other, waiting));
  CHECK_FALSE(approval_counts(early, paused));
  CHECK(approval_counts(late, paused));
}
