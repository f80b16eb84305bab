// The live plan's preview: its pure parts, and build_preview against the simulator's
// fleet model (no HTTP) where every number is known.
#include <doctest/doctest.h>

#include "check_plan.h"
#include "fake_fleet.h"
#include "fleet_builder.h"
#include "preview/preflight.h"
#include "preview/preview.h"
#include "util/asio_clock.h"

using namespace rollout;
using namespace std::chrono_literals;

namespace {

const std::string kPlan = R"(version: 1
name: preview
flow_id: f
project: Demo
app: {name: fw, version: v3}
defaults:
  gate: {bake: 2m, timeout: 30m, poll: 1m}
stages:
  - name: canary
    groups: [Canary]
    gate: {bake: 10m}
  - name: eu
    needs: [canary]
    groups: [EU]
  - name: us
    needs: [canary]
    groups: [US]
    approval: required
    gate: {bake: 5m}
  - name: late
    needs: [eu, us]
    groups: [US]
  - name: stragglers
    needs: [late]
    filters:
      - {type: update_status, operand: is_not, value: success}
)";

sim::FleetSpec fleet() {
  return test::FleetBuilder(9)
      .group("Canary", 3, {"canary"})
      .group("EU", 120)
      .group("US", 4)
      .group("Lab", 2)
      .device({.uuid = "d-0000-down",
               .name = "sleeper",
               .group = "US",
               .apps = {{"fw", "v2"}},
               .online = false});
}

struct Built {
  test::Checked plan;
  preview::Preview preview;
  int reads = 0;
  int deploys = 0;
};

Built build(const sim::FleetSpec& spec) {
  Built b{test::check_plan(kPlan), {}, 0, 0};
  REQUIRE(b.plan.graph);
  asio::io_context io;
  ManualClock clock(io, WallTime(std::chrono::hours(24 * 365 * 56)));
  sim::Fleet f(spec, std::chrono::duration_cast<sim::Millis>(clock.now().time_since_epoch()));
  test::FakeFleet api(io, f, clock);
  std::optional<upswift::Result<preview::Preview>> result;
  preview::build_preview(api, *b.plan.loaded.plan, *b.plan.graph,
                         [&](upswift::Result<preview::Preview> r) { result = std::move(r); });
  io.run();
  REQUIRE(result);
  REQUIRE(result->ok());
  b.preview = std::move(*result->value);
  b.reads = api.reads;
  b.deploys = api.deploys_sent;
  return b;
}

const preview::StagePreview& stage(const preview::Preview& p, const std::string& name) {
  for (const auto& s : p.stages) {
    if (s.name == name) return s;
  }
  FAIL("no stage " << name);
  throw 0;
}

}  // namespace

TEST_CASE("polls: at dispatch, then every poll until the bake (or the timeout) is over") {
  plan::Gate g;
  g.bake = 10min;
  g.poll = 1min;
  g.timeout = 1h;
  CHECK(preview::min_polls(g) == 11);
  CHECK(preview::max_polls(g) == 61);
  g.bake = 90s;
  CHECK(preview::min_polls(g) == 3);  // 0, 60 s, 90 s
  g.bake = 0s;
  CHECK(preview::min_polls(g) == 1);
}

TEST_CASE("a preview counts each stage's devices, online and offline, against the fleet") {
  const Built b = build(fleet());
  const preview::Preview& p = b.preview;
  CHECK(p.projects == std::vector<std::string>{"Demo"});
  CHECK(p.project_devices == 130);
  CHECK(p.project_online == 129);
  REQUIRE(p.stages.size() == 5);
  CHECK(stage(p, "canary").devices.size() == 3);
  CHECK(stage(p, "eu").devices.size() == 120);
  CHECK(stage(p, "eu").listing_pages == 3);  // ceil(120 / 50)
  CHECK(stage(p, "us").devices.size() == 5);
  CHECK(stage(p, "us").online == 4);
  CHECK(stage(p, "us").offline == 1);
  CHECK_FALSE(stage(p, "us").dynamic);
  CHECK(stage(p, "stragglers").dynamic);
  CHECK(stage(p, "stragglers").devices.size() == 130);  // nothing has succeeded yet
  CHECK(b.deploys == 0);                                // a preview sends nothing
}

TEST_CASE("overlaps are between fixed selections; unreached devices are the rest") {
  const preview::Preview p = build(fleet()).preview;
  // late targets the US again; stragglers (by update status) is no overlap.
  REQUIRE(p.overlaps.size() == 5);
  for (const auto& o : p.overlaps) {
    CHECK(o.device.group == "US");
    CHECK(o.stages == std::vector<std::string>{"us", "late"});
  }
  // The Lab is reached only by the dynamic stage, which selects everything now.
  CHECK(p.unreached.empty());
  std::vector<preview::StagePreview> fixed(p.stages.begin(), p.stages.end() - 1);
  std::vector<state::SnapshotDevice> all;
  for (const auto& s : p.stages.back().devices) all.push_back(s);
  const auto unreached = preview::find_unreached(fixed, all);
  REQUIRE(unreached.size() == 2);
  CHECK(unreached[0].group == "Lab");
  CHECK(unreached[1].group == "Lab");
}

TEST_CASE("the API estimate is listings, one dispatch and a listing per poll, per stage") {
  const preview::Preview p = build(fleet()).preview;
  std::int64_t min = 0, max = 0;
  for (const auto& s : p.stages) {
    min += s.listing_pages + s.state_pages + 1 + s.min_polls * s.listing_pages;
    // ... and, at most, the online states of its groups at every poll (updates under way:
    // lost devices are looked for) and at a decision with failures.
    max += s.listing_pages + s.state_pages + 1 + s.max_polls * s.listing_pages +
           (s.max_polls + 1) * s.listing_pages;
  }
  CHECK(p.api.deploy_updates == 5);
  CHECK(p.api.min_calls == min);
  CHECK(p.api.max_calls == max);
  // canary: 1 listing + 1 dispatch + 11 polls of 1 page.
  CHECK(stage(p, "canary").min_polls == 11);
  // A stage with nobody to update sends nothing and polls nothing.
  preview::StagePreview empty;
  empty.listing_pages = 1;
  empty.min_polls = 0;
  CHECK(preview::estimate_calls({empty}).min_calls == 1);
  CHECK(preview::estimate_calls({empty}).deploy_updates == 0);
}

TEST_CASE("the critical path is the chain of the longest bakes, and says if it waits for people") {
  const preview::Preview p = build(fleet()).preview;
  CHECK(p.critical_path.stages == std::vector<std::string>{"canary", "us", "late", "stragglers"});
  CHECK(p.critical_path.shortest == std::chrono::duration_cast<Millis>(10min + 5min + 2min + 2min));
  CHECK(p.critical_path.approval);
}

TEST_CASE("a saved preview is stale when a fixed selection changed, not a dynamic one") {
  const Built before = build(fleet());
  sim::FleetSpec moved = fleet();
  moved.projects[0].devices[0].group = "EU";  // the sleeper moves from US to EU
  const Built after = build(moved);
  const auto changes = preview::stale_stages(before.preview, after.preview);
  REQUIRE(changes.size() == 3);
  CHECK(changes[0] ==
        "stage eu would now target 121 device(s), the saved plan 120; now also: d-0000-down "
        "(sleeper, EU)");
  CHECK(changes[1] ==
        "stage us would now target 4 device(s), the saved plan 5; no longer: d-0000-down "
        "(sleeper, US)");
  CHECK(changes[2].rfind("stage late ", 0) == 0);
  CHECK(preview::stale_stages(before.preview, before.preview).empty());
}

namespace {

struct Preflighted {
  std::vector<preview::Finding> findings;
  int reads = 0;
  int deploys = 0;
};

Preflighted run_preflight(const std::string& plan_text, const sim::FleetSpec& spec,
                          bool fail_reads = false) {
  const auto checked = test::check_plan(plan_text);
  REQUIRE(checked.loaded.plan);
  asio::io_context io;
  ManualClock clock(io, WallTime(std::chrono::hours(24 * 365 * 56)));
  sim::Fleet f(spec, std::chrono::duration_cast<sim::Millis>(clock.now().time_since_epoch()));
  test::FakeFleet api(io, f, clock);
  api.fail_reads(fail_reads);
  std::optional<upswift::Result<std::vector<preview::Finding>>> result;
  preview::preflight(
      api, *checked.loaded.plan,
      [&](upswift::Result<std::vector<preview::Finding>> r) { result = std::move(r); });
  io.run();
  REQUIRE(result);
  if (fail_reads) {
    CHECK_FALSE(result->ok());
    return {{}, api.reads, api.deploys_sent};
  }
  REQUIRE(result->ok());
  return {std::move(*result->value), api.reads, api.deploys_sent};
}

}  // namespace

TEST_CASE("preflight: one read of each project and group the stages name, nothing sent") {
  const auto ok = run_preflight(kPlan, fleet());
  CHECK(ok.findings.empty());
  // Canary, EU, US (named by two stages, read once), and the project for stragglers.
  CHECK(ok.reads == 4);
  CHECK(ok.deploys == 0);
}

TEST_CASE("preflight: a mistyped group and an unknown project, each with its stages and field") {
  std::string plan = kPlan;
  plan.replace(plan.find("groups: [US]"), 12, "groups: [UZ]");  // us only; late keeps US
  plan.replace(plan.find("    filters:"), 0, "    project: Demo2\n");
  const auto found = run_preflight(plan, fleet());
  REQUIRE(found.findings.size() == 2);
  CHECK(found.findings[0].stage == "us");
  CHECK(found.findings[0].field == "groups");
  // The simulator refuses an unknown group, as the API may; the project's groups are listed
  // for a suggestion.
  CHECK(found.findings[0].message.find("group UZ of project Demo: ") == 0);
  CHECK(found.findings[0].message.find("(did you mean 'US'?)") != std::string::npos);
  CHECK(found.findings[1].stage == "stragglers");
  CHECK(found.findings[1].field == "project");
  CHECK(found.findings[1].message.find("project Demo2") == 0);
  CHECK(found.deploys == 0);
  CHECK(preview::describe(found.findings).find("  stage us, groups: group UZ") == 0);
}

TEST_CASE("preflight: a group that lists no device is found, and an unreadable API is an error") {
  // A group the fleet has, without devices: Upswift cannot tell it from a typo.
  auto spec = fleet();
  spec.projects.back().groups.push_back({.name = "Empty", .devices = 0});
  std::string plan = kPlan;
  plan.replace(plan.find("groups: [EU]"), 12, "groups: [EU, Empty]");
  const auto found = run_preflight(plan, spec);
  REQUIRE(found.findings.size() == 1);
  CHECK(found.findings[0].stage == "eu");
  CHECK(found.findings[0].message ==
        "group Empty of project Demo lists no device (mistyped, or empty)");
  CHECK(run_preflight(kPlan, fleet(), /*fail_reads=*/true).deploys == 0);
}
