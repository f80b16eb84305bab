// The view layer: progress lines, what a stage waits for, the report's timeline and HTML,
// and rehearsals. Pure: records in, text out; rehearsals on a virtual clock.
#include <doctest/doctest.h>

#include "check_plan.h"
#include "fleet_builder.h"
#include "three_stage_plan.h"
#include "util/time_text.h"
#include "view/progress.h"
#include "view/report.h"
#include "view/text.h"
#include "view/timeline.h"
#include "words.h"

using namespace rollout;
using namespace std::chrono_literals;
using test::word;

namespace {

const std::string& kViewPlan = test::kThreeStagePlan;
const WallTime t0 = test::kTestStart;

state::StageRecord stage(const std::string& name, const std::string& status) {
  state::StageRecord s;
  s.run_id = "r-1";
  s.name = name;
  s.status = state::parse<state::StageStatus>(status).value();
  return s;
}

state::Observation observation(const std::string& stage, WallTime at, std::int64_t success,
                               std::int64_t failed, std::int64_t in_progress, std::int64_t pending,
                               const std::string& verdict = "wait") {
  state::Observation o;
  o.run_id = "r-1";
  o.stage = stage;
  o.at = at;
  o.targeted = success + failed + in_progress + pending;
  o.success = success;
  o.failed = failed;
  o.in_progress = in_progress;
  o.pending = pending;
  o.verdict = state::parse<state::Verdict>(verdict).value();
  return o;
}

struct Fixture {
  test::Checked checked = test::check_plan(kViewPlan);
  const plan::Plan& plan() const { return *checked.loaded.plan; }
  state::RunRecord run() const {
    state::RunRecord r;
    r.id = "r-1";
    r.plan_name = "fw-3";
    r.created_at = t0;
    r.updated_at = t0;
    return r;
  }
};

}  // namespace

TEST_CASE("fit cuts to the width, keeps UTF-8 whole and resets colour after a cut") {
  CHECK(view::visible_width("\x1b[32m██\x1b[0m ok") == 5);
  CHECK(view::fit("short", 80) == "short");
  const std::string cut = view::fit("\x1b[31m" + std::string("ééééééééééééé") + "\x1b[0m", 8);
  CHECK(view::visible_width(cut) == 8);
  CHECK(cut.find("\x1b[0m...") != std::string::npos);
}

TEST_CASE("a stage waiting for its maintenance window is shown, with until when") {
  const auto c = test::check_plan(R"(version: 1
name: p
flow_id: f
project: Demo
stages:
  - {name: canary, groups: [C]}
  - name: eu
    needs: [canary]
    groups: [EU]
    windows:
      - {from: "02:00", to: "05:00", tz: UTC}
)");
  REQUIRE(c.report == "");
  Fixture f;
  view::RunProgress p = view::build_progress(
      f.run(), {stage("canary", "passed"), stage("eu", "waiting")}, {}, {}, {}, 5);
  const WallTime noon = std::chrono::floor<std::chrono::days>(t0) + 12h;
  const std::string expected =
      fmt::format("outside its maintenance windows until {} UTC",
                  iso_time(std::chrono::floor<std::chrono::days>(t0) + 24h + 2h).substr(0, 16));
  CHECK(view::waiting_for(*c.loaded.plan, p, noon)[1] == expected);
  view::Style style;
  style.width = 200;
  const auto lines = view::render(*c.loaded.plan, p, noon, style);
  REQUIRE(lines.size() == 2);  // the header and eu: the run is waiting for it
  CHECK(lines[1].find("eu") != std::string::npos);
  CHECK(lines[1].find("waiting: " + expected) != std::string::npos);
  // Inside the window it is no longer waiting for one: nothing holds it.
  CHECK(view::waiting_for(*c.loaded.plan, p, noon + 15h)[1] == "its start, at the run's next turn");
}

TEST_CASE("a block redrawn in place first erases the lines it drew") {
  CHECK(view::erase_lines_above(0) == "");
  CHECK(view::erase_lines_above(3) == "\x1b[3A\r\x1b[J");
}

TEST_CASE("status bar: shares of success, failed, updating, pending; a single failure shows") {
  CHECK(view::status_bar(observation("eu", t0, 5, 0, 3, 2), 10, false) == "=====>>>..");
  CHECK(view::status_bar(observation("eu", t0, 99, 1, 0, 0), 10, false) == "=========x");
  CHECK(view::status_bar(observation("eu", t0, 0, 0, 0, 0), 4, false) == "....");
  // Nothing pending: no pending cell, whatever the rounding; the cells add up to the width.
  CHECK(view::status_bar(observation("eu", t0, 2, 0, 1, 0), 10, false) == "=======>>>");
  CHECK(view::status_bar(observation("eu", t0, 1, 1, 1, 0), 10, false) == "====xxx>>>");
  CHECK(view::status_bar(observation("eu", t0, 5, 0, 0, 1), 4, false) == "===.");
}

TEST_CASE("gate condition in numbers once the stage's size is known") {
  Fixture f;
  CHECK(view::gate_condition(f.plan().stages[0].gate, std::nullopt) ==
        "min_success 100%, max_failed 0 devices, bake 2h");
  CHECK(view::gate_condition(f.plan().stages[1].gate, 20) ==
        "min_success 90% of 20 = 18 devices, max_failed 10% of 20 = 2 devices, bake 1h");
  CHECK(view::gate_condition(f.plan().stages[1].gate, 1) ==
        "min_success 90% of 1 = 1 device, max_failed 10% of 1 = 0 devices, bake 1h");
}

TEST_CASE("what each stage waits for") {
  Fixture f;
  view::RunProgress p = view::build_progress(
      f.run(),
      {stage("canary", "gating"), stage("eu", "waiting"), stage("us", "awaiting_approval")},
      {{"canary", 5}}, {observation("canary", t0 + 10min, 3, 0, 2, 0)}, {}, 5);
  p.stages[0].record.dispatched_at = t0;
  CHECK(view::waiting_for(f.plan(), p, t0 + 30min)[0] == "bake, 1h30m left");
  CHECK(view::waiting_for(f.plan(), p, t0 + 3h)[0] == "gate: 2 more success, times out in 3h");
  CHECK(view::waiting_for(f.plan(), p, t0)[1] == "needs canary");
  // Awaiting approval, and canary (which it needs) not passed: both.
  CHECK(view::waiting_for(f.plan(), p, t0)[2] == "approval: rollout approve r-1 us; needs canary");
  p.stages[0].record.status = state::StageStatus::passed;
  CHECK(view::waiting_for(f.plan(), p, t0)[2] == "approval: rollout approve r-1 us");
  p.stages[0].record.status = state::StageStatus::gating;

  view::Style style;
  style.width = 200;
  auto lines = view::render(f.plan(), p, t0 + 30min, style);
  REQUIRE(lines.size() == 3);  // the header, canary, us (eu is waiting: not active)
  CHECK(lines[0].find("run r-1 running") != std::string::npos);
  CHECK(lines[1].find("3 success, 0 failed, 2 in_progress, 0 pending") != std::string::npos);
  CHECK(lines[1].find("gate: min_success 100% of 5 = 5 devices, max_failed 0 devices, bake 2h") !=
        std::string::npos);
  CHECK(lines[1].find("waiting: bake, 1h30m left") != std::string::npos);
  CHECK(lines[2].find("rollout approve r-1 us") != std::string::npos);
  for (const auto& line : lines) CHECK(line.find('\x1b') == std::string::npos);  // no colour asked

  style.width = 60;  // narrow: the condition goes on a line of its own, nothing wider than 60
  style.all_stages = true;
  style.color = true;
  lines = view::render(f.plan(), p, t0 + 30min, style);
  CHECK(lines.size() > 4);
  for (const auto& line : lines) CHECK(view::visible_width(line) <= 60);

  // Changes as the engine reports them.
  view::apply(p, stage("canary", "passed"));
  view::apply(p, observation("canary", t0 + 2h, 5, 0, 0, 0, "pass"));
  CHECK(word(p.stages[0].record.status) == "passed");
  CHECK(p.stages[0].last->success == 5);
  view::apply(
      p, state::Event{0, "r-1", t0 + 2h, "", state::EventKind::run_completed, "every stage passed"},
      5);
  CHECK(p.recent.back().kind == state::EventKind::run_completed);
  view::apply(p, state::RunStatus::completed, "every stage passed");
  CHECK(word(p.status) == "completed");
  CHECK(p.reason == "every stage passed");
}

TEST_CASE("timeline segments: approval wait, dispatch, bake, gate, pause") {
  Fixture f;
  view::ReportInput in;
  in.plan = &f.plan();
  in.run = f.run();
  auto canary = stage("canary", "passed");
  canary.started_at = t0;
  canary.dispatched_at = t0 + 1min;
  canary.finished_at = t0 + 3h;
  auto us = stage("us", "paused");
  us.started_at = t0 + 5h;
  us.dispatched_at = t0 + 5h + 1min;
  in.stages = {canary, stage("eu", "waiting"), us};
  in.events = {{1, "r-1", t0 + 3h, "us", state::EventKind::approval_needed, "waiting for approval"},
               {2, "r-1", t0 + 2h + 1min + 30s, "canary", state::EventKind::stage_passed, "ok"},
               {3, "r-1", t0 + 10h, "us", state::EventKind::stage_paused, "inconclusive"}};
  in.run.finished_at = t0 + 12h;
  auto segments = view::timeline_segments(in, view::report_end(in));
  auto find = [&](const std::string& s, const std::string& kind) -> const view::Segment* {
    for (const auto& seg : segments) {
      if (seg.stage == s && word(seg.kind) == kind) return &seg;
    }
    return nullptr;
  };
  REQUIRE(find("canary", "dispatch"));
  CHECK(find("canary", "bake")->to == t0 + 2h + 1min);
  CHECK(find("canary", "gate")->from == t0 + 2h + 1min);
  CHECK(find("canary", "gate")->to == t0 + 2h + 1min + 30s);  // the verdict, not the stage's end
  CHECK(find("us", "approval")->from == t0 + 3h);
  CHECK(find("us", "approval")->to == t0 + 5h);
  CHECK(find("us", "paused")->to == t0 + 12h);
  CHECK_FALSE(find("eu", "dispatch"));
}

TEST_CASE("the report escapes what plans and people wrote, and fetches nothing") {
  Fixture f;
  view::ReportInput in;
  in.plan = &f.plan();
  in.run = f.run();
  in.run.reason = "<script>alert(1)</script>";
  auto canary = stage("canary", "passed");
  canary.started_at = t0;
  canary.dispatched_at = t0;
  canary.finished_at = t0 + 2h;
  in.stages = {canary, stage("eu", "waiting"), stage("us", "waiting")};
  in.observations = {observation("canary", t0 + 5min, 0, 0, 2, 3),
                     observation("canary", t0 + 2h, 5, 0, 0, 0, "pass")};
  in.approvals = {{"r-1", "us", "ann\" onmouseover=\"x", t0, "ok & go"}};
  const std::string html = view::render_report(in);
  CHECK(html.find("<script>") == std::string::npos);
  CHECK(html.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  CHECK(html.find("ann&quot; onmouseover=&quot;x") != std::string::npos);
  CHECK(html.find("default-src 'none'") != std::string::npos);
  CHECK(html.find("http://") == std::string::npos);
  CHECK(html.find("https://") == std::string::npos);
  CHECK(html.find("<svg class=\"gantt\"") != std::string::npos);
  CHECK(html.find("<svg class=\"stage-chart\" data-stage=\"canary\"") != std::string::npos);
  CHECK(html.find("No gate observations") != std::string::npos);  // eu and us
}

TEST_CASE("the report's y-axis: whole numbers, evenly spaced, at most five") {
  using V = std::vector<std::int64_t>;
  CHECK(view::axis_ticks(0) == V{0});
  CHECK(view::axis_ticks(1) == V{0, 1});
  CHECK(view::axis_ticks(4) == V{0, 1, 2, 3, 4});
  CHECK(view::axis_ticks(5) == V{0, 2, 4});
  CHECK(view::axis_ticks(20) == V{0, 5, 10, 15, 20});
  CHECK(view::axis_ticks(55) == V{0, 20, 40});
  for (std::int64_t max = 1; max < 5000; ++max) {
    const V ticks = view::axis_ticks(max);
    CHECK(ticks.size() <= 5);
    CHECK(ticks.size() >= 2);
    for (std::size_t i = 2; i < ticks.size(); ++i)
      CHECK(ticks[i] - ticks[i - 1] == ticks[1] - ticks[0]);
    CHECK(ticks.back() <= max);
  }
}
