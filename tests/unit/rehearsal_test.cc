// Rehearsals: the real engine against a simulated fleet on a virtual clock, one at a time and
// several at once on threads of their own (also run under ThreadSanitizer: scripts/test.sh).
#include <doctest/doctest.h>

#include "check_plan.h"
#include "fleet_builder.h"
#include "rehearsal/rehearsal.h"
#include "three_stage_plan.h"
#include "words.h"

using namespace rollout;
using namespace std::chrono_literals;
using test::word;

namespace {

const std::string& kViewPlan = test::kThreeStagePlan;
const WallTime t0 = test::kTestStart;

}  // namespace

TEST_CASE("rehearsal: the same seed predicts the same run; failure rates show in the spread") {
  test::Checked checked = test::check_plan(kViewPlan);
  REQUIRE(checked.graph);
  sim::FleetSpec spec =
      test::FleetBuilder(3).flows({"f-new"}).group("Canary", 5).group("EU", 20).group("US", 20);
  rehearsal::Options options;
  options.start = t0;
  options.approval_delay = 30min;

  const auto a = rehearsal::rehearse(*checked.loaded.plan, *checked.graph, spec, 3, options);
  const auto b = rehearsal::rehearse(*checked.loaded.plan, *checked.graph, spec, 3, options);
  CHECK(a.ending == engine::Ending::completed);
  CHECK(a.deploy_calls == 3);
  REQUIRE(a.stages.size() == 3);
  CHECK(a.stages[0].devices == 5);
  CHECK(*a.stages[0].finished >= 2h);                            // the canary's bake
  CHECK(*a.stages[2].started >= *a.stages[0].finished + 30min);  // the approval's delay
  for (std::size_t i = 0; i < a.stages.size(); ++i) {
    CHECK(a.stages[i].finished == b.stages[i].finished);
    CHECK(a.stages[i].status == b.stages[i].status);
  }
  CHECK(a.details_calls == b.details_calls);

  // Every canary fails: every rehearsal stops at the canary, nothing else is sent.
  spec.overrides.push_back({.group = "Canary", .failure_rate = 1.0});
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    const auto r = rehearsal::rehearse(*checked.loaded.plan, *checked.graph, spec, seed, options);
    CHECK(r.ending == engine::Ending::stopped);
    CHECK(word(r.stages[0].status) == "failed");
    CHECK(r.deploy_calls == 1);
  }
}

TEST_CASE("rehearsal: several at once give each seed's own result, reported in seed order") {
  test::Checked checked = test::check_plan(kViewPlan);
  REQUIRE(checked.graph);
  sim::FleetSpec spec = test::FleetBuilder(3)
                            .flows({"f-new"})
                            .group("Canary", 5)
                            .group("EU", 20)
                            .group("US", 20)
                            .failing("EU", 0.2);
  rehearsal::Options options;
  options.start = t0;
  std::vector<std::uint64_t> heard;
  const auto many =
      rehearsal::rehearse_many(*checked.loaded.plan, *checked.graph, spec, 10, 6, options, 3,
                               [&](const rehearsal::Result& r) { heard.push_back(r.seed); });
  CHECK(heard == std::vector<std::uint64_t>{10, 11, 12, 13, 14, 15});
  REQUIRE(many.size() == 6);
  for (std::size_t i = 0; i < many.size(); ++i) {
    const auto alone =
        rehearsal::rehearse(*checked.loaded.plan, *checked.graph, spec, 10 + i, options);
    CHECK(many[i].seed == 10 + i);
    CHECK(many[i].duration == alone.duration);
    CHECK(many[i].ending == alone.ending);
    CHECK(many[i].details_calls == alone.details_calls);
    for (std::size_t k = 0; k < alone.stages.size(); ++k)
      CHECK(many[i].stages[k].finished == alone.stages[k].finished);
  }
  CHECK(rehearsal::rehearse_many(*checked.loaded.plan, *checked.graph, spec, 1, 0, options, 2, {})
            .empty());
}
