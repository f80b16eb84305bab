// Every validation rule of the plan language, with the exact line and column asserted.
#include <doctest/doctest.h>

#include "check_plan.h"

using rollout::test::check_plan;
using namespace std::chrono_literals;

namespace {

// A valid plan; tests append to or alter it. Line numbers are written beside it.
const std::string kHead =
    "version: 1\n"      // 1
    "name: p\n"         // 2
    "flow_id: f-1\n"    // 3
    "project: Demo\n";  // 4

}  // namespace

TEST_CASE("the issue's example plan loads with every field resolved") {
  auto c = check_plan(R"(version: 1
name: sensor-fw-2.4
flow_id: 73a7-1ft8
project: Demo
app: {name: default_app, version: v2.4}
comment: firmware 2.4
defaults:
  gate: {bake: 10m, timeout: 2h, poll: 30s, min_success: 95%, max_failed: 2%, on_timeout: pause}
stages:
  - name: canary
    groups: [Canary]
    filters:
      - {type: tag, operand: is, value: canary}
      - {type: device_state, operand: is, value: online}
    gate: {min_success: 100%, bake: 30m}
  - name: eu
    needs: [canary]
    groups: [EU-North, EU-South]
  - name: us
    needs: [canary]
    groups: [US]
    approval: required
    flow_id: other-flow
    project: Other
    app: {name: us_app, version: v9}
    comment: us only
  - name: everyone
    needs: [eu, us]
    filters:
      - {type: update_status, operand: is_not, value: success}
on_failure:
  action: rollback
  rollback: {flow_id: 11aa-22bb, app: {name: default_app, version: v2.3}}
)");
  CHECK(c.report == "");
  REQUIRE(c.graph);
  const auto& p = *c.loaded.plan;
  REQUIRE(p.stages.size() == 4);
  const auto& canary = p.stages[0];
  CHECK(canary.gate.bake == 30min);
  CHECK(canary.gate.timeout == 2h);
  CHECK(canary.gate.poll == 30s);
  CHECK(canary.gate.min_success ==
        rollout::plan::Threshold{rollout::plan::Threshold::Kind::percent, 100});
  CHECK(canary.gate.max_failed ==
        rollout::plan::Threshold{rollout::plan::Threshold::Kind::percent, 2});
  CHECK(canary.gate.on_timeout == rollout::plan::OnTimeout::pause);
  CHECK(canary.filters.size() == 2);
  CHECK(canary.flow_id == "73a7-1ft8");
  CHECK(canary.comment == "firmware 2.4");
  const auto& us = p.stages[2];
  CHECK(us.approval_required);
  CHECK(us.flow_id == "other-flow");
  CHECK(us.project == "Other");
  CHECK(us.app->name == "us_app");
  CHECK(us.comment == "us only");
  CHECK(us.gate.bake == 10min);
  CHECK(p.on_failure.action == rollout::plan::FailureAction::rollback);
  CHECK(p.on_failure.rollback->flow_id == "11aa-22bb");
  CHECK(p.on_failure.rollback->app->version == "v2.3");
}

TEST_CASE("built-in gate defaults apply when the plan gives none") {
  auto c = check_plan(kHead + "stages:\n  - name: a\n    groups: [G]\n");
  CHECK(c.report == "");
  const auto& g = c.loaded.plan->stages[0].gate;
  CHECK(g.bake == 0s);
  CHECK(g.timeout == 1h);
  CHECK(g.poll == 30s);
  CHECK(rollout::plan::format_threshold(g.min_success) == "100%");
  CHECK(rollout::plan::format_threshold(g.max_failed) == "0");
  CHECK(g.min_devices == 1);
  CHECK(g.on_timeout == rollout::plan::OnTimeout::pause);
  CHECK(g.lost_after == 15min);
  CHECK(rollout::plan::format_threshold(g.max_lost) == "0");
  CHECK_FALSE(c.loaded.plan->abort_when);
}

TEST_CASE("max_lost and lost_after resolve like every gate key; abort_when is read whole") {
  auto c = check_plan(kHead +
                      "defaults:\n  gate: {max_lost: 2%, lost_after: 30m}\n"
                      "abort_when: {failed: 3%, lost: 2, min_finished: 50}\n"
                      "stages:\n  - name: a\n    groups: [G]\n"
                      "  - name: b\n    groups: [H]\n    gate: {max_lost: 1}\n");
  REQUIRE(c.report == "");
  const auto& plan = *c.loaded.plan;
  CHECK(plan.stages[0].gate.lost_after == 30min);
  CHECK(rollout::plan::format_threshold(plan.stages[0].gate.max_lost) == "2%");
  CHECK(plan.stages[1].gate.lost_after == 30min);
  CHECK(rollout::plan::format_threshold(plan.stages[1].gate.max_lost) == "1");
  REQUIRE(plan.abort_when);
  CHECK(rollout::plan::format_threshold(*plan.abort_when->failed) == "3%");
  CHECK(rollout::plan::format_threshold(*plan.abort_when->lost) == "2");
  CHECK(plan.abort_when->min_finished == 50);
}

TEST_CASE("a ramp becomes its steps, one after the other, the stage's dependents after the last") {
  auto c = check_plan(kHead +
                      "stages:\n"
                      "  - name: canary\n    groups: [C]\n"
                      "  - name: eu\n    needs: [canary]\n    groups: [EU]\n"
                      "    approval: required\n    gate: {bake: 2h, timeout: 4h}\n"
                      "    ramp: {steps: [1%, 5%, 25%, 100%]}\n"
                      "  - name: us\n    needs: [eu]\n    groups: [US]\n"
                      "    ramp: {from: 1.5%, factor: 3}\n");
  REQUIRE(c.report == "");
  std::vector<std::string> names, needs;
  for (const auto& s : c.loaded.plan->stages) {
    names.push_back(s.name);
    needs.push_back(s.needs.empty() ? "" : s.needs[0].name);
  }
  CHECK(names == std::vector<std::string>{"canary", "eu@1%", "eu@5%", "eu@25%", "eu@100%",
                                          "us@1.5%", "us@4.5%", "us@13.5%", "us@40.5%", "us@100%"});
  CHECK(needs == std::vector<std::string>{"", "canary", "eu@1%", "eu@5%", "eu@25%", "eu@100%",
                                          "us@1.5%", "us@4.5%", "us@13.5%", "us@40.5%"});
  const auto& steps = c.loaded.plan->stages;
  for (std::size_t i = 1; i <= 4; ++i) {
    CAPTURE(i);
    REQUIRE(steps[i].ramp);
    REQUIRE(steps[i].sample);
    CHECK(steps[i].ramp->stage == "eu");
    CHECK(steps[i].ramp->index == i - 1);
    CHECK(steps[i].ramp->steps == 4);
    CHECK(steps[i].sample->percent == steps[i].ramp->percent);
    CHECK(steps[i].gate.bake == 2h);  // each step is gated as the stage is
    CHECK(steps[i].groups == std::vector<std::string>{"EU"});
    CHECK(steps[i].approval_required == (i == 1));  // approved once, before the first step
  }
  CHECK(c.graph);
}

TEST_CASE("unknown keys, with did you mean, at the key") {
  auto c = check_plan(kHead +
                      "stages:\n"              // 5
                      "  - name: a\n"          // 6
                      "    group: [G]\n"       // 7
                      "    groups: [G]\n"      // 8
                      "    gate: {bak: 1m}\n"  // 9
                      "coment: x\n");          // 10
  CHECK(c.report ==
        "p.yaml:7:5: error: unknown key 'group' in stage #1 (did you mean 'groups'?)\n"
        "p.yaml:9:12: error: unknown key 'bak' in gate of stage 'a' (did you mean 'bake'?)\n"
        "p.yaml:10:1: error: unknown key 'coment' in the plan (did you mean 'comment'?)\n");
}

TEST_CASE("missing required fields are reported at the map that lacks them") {
  auto c = check_plan("flow_id: f\nproject: P\n");
  CHECK(c.report ==
        "p.yaml:1:1: error: the plan is missing required field 'version'\n"
        "p.yaml:1:1: error: the plan is missing required field 'name'\n"
        "p.yaml:1:1: error: the plan is missing required field 'stages'\n");
  auto s = check_plan(kHead + "stages:\n  - groups: [G]\n");
  CHECK(s.report == "p.yaml:6:5: error: stage #1 is missing required field 'name'\n");
}

TEST_CASE("only plan version 1 is read") {
  auto c = check_plan(
      "version: 2\nname: p\nflow_id: f\nproject: P\nstages:\n  - {name: a, groups: [G]}\n");
  CHECK(c.report ==
        "p.yaml:1:10: error: plan version 2 is not supported: this rollout reads version 1\n");
}

TEST_CASE("flow_id and project must come from the plan or the stage") {
  auto c = check_plan(
      "version: 1\nname: p\nstages:\n  - name: a\n    groups: [G]\n  - {name: b, groups: [G], "
      "flow_id: f, project: P}\n");
  CHECK(c.report ==
        "p.yaml:4:11: error: stage 'a' has no flow_id: set flow_id on the plan or on the stage\n"
        "p.yaml:4:11: error: stage 'a' has no project: set project on the plan or on the stage\n");
  auto none = check_plan(
      "version: 1\nname: p\nstages:\n  - {name: a, groups: [G]}\n  - {name: b, groups: [G]}\n");
  CHECK(none.report ==
        "p.yaml:1:1: error: the plan is missing required field 'flow_id' (set it at the top, or on "
        "every stage)\n"
        "p.yaml:1:1: error: the plan is missing required field 'project' (set it at the top, or on "
        "every stage)\n");
  auto ok = check_plan(
      "version: 1\nname: p\nstages:\n  - {name: a, groups: [G], flow_id: f, project: P}\n");
  CHECK(ok.report == "");
}

TEST_CASE("filter rules are the seed's, exactly") {
  auto c = check_plan(kHead +
                      "stages:\n"                                                       // 5
                      "  - name: a\n"                                                   // 6
                      "    filters:\n"                                                  // 7
                      "      - {type: tags, operand: is, value: x}\n"                   // 8
                      "      - {type: device_state, operand: is_not, value: online}\n"  // 9
                      "      - {type: device_state, operand: is, value: up}\n"          // 10
                      "      - {type: update_status, operand: is, value: sucess}\n"     // 11
                      "      - {type: specific_device, operand: equals, value: d-1}\n"  // 12
                      "      - {type: tag, operand: is, value: 1234}\n"                 // 13
                      "      - {type: app, operand: is}\n"                              // 14
                      "      - {type: tag, operand: is, value: true}\n"                 // 15
                      "      - {type: tag, operand: is, value: \"\"}\n");               // 16
  CHECK(c.report ==
        "p.yaml:8:16: error: unknown filter type 'tags' (did you mean 'tag'?); the types are "
        "'specific_device', 'tag', 'app', 'device_state' or 'update_status'\n"
        "p.yaml:9:39: error: filter type 'device_state' takes operand 'is', not 'is_not'\n"
        "p.yaml:10:50: error: filter type 'device_state' takes value 'online' or 'offline', not "
        "'up'\n"
        "p.yaml:11:51: error: filter type 'update_status' takes value 'pending', 'in_progress', "
        "'success', 'failed' or 'aborted', not 'sucess' (did you mean 'success'?)\n"
        "p.yaml:12:42: error: filter type 'specific_device' takes operand 'is' or 'is_not', not "
        "'equals'\n"
        "p.yaml:13:41: error: filter value must be a string, got a number; quote it: '1234'\n"
        "p.yaml:14:9: error: filter is missing required field 'value'\n"
        "p.yaml:15:41: error: filter value must be a string, got a boolean; quote it: 'true'\n"
        "p.yaml:16:41: error: filter value must not be empty\n");
}

TEST_CASE("every operand and value the seed lists is accepted") {
  auto c = check_plan(kHead +
                      "stages:\n"
                      "  - name: a\n"
                      "    filters:\n"
                      "      - {type: specific_device, operand: is_not, value: d-4ec7-1be9}\n"
                      "      - {type: tag, operand: is_not, value: lab}\n"
                      "      - {type: app, operand: is_not, value: default_app}\n"
                      "      - {type: device_state, operand: is, value: offline}\n"
                      "      - {type: update_status, operand: is_not, value: aborted}\n"
                      "      - {type: update_status, operand: is, value: in_progress}\n"
                      "      - {type: tag, operand: is, value: \"1234\"}\n");
  CHECK(c.report == "");
  CHECK(c.loaded.plan->stages[0].filters.size() == 7);
}

TEST_CASE("string fields refuse numbers and booleans, with a hint to quote") {
  auto c = check_plan(
      "version: 1\nname: p\nflow_id: 1234\nproject: P\napp: {name: a, version: 2.4}\n"
      "stages:\n  - {name: a, groups: [G, 7]}\n");
  CHECK(c.report ==
        "p.yaml:3:10: error: flow_id must be a string, got a number; quote it: '1234'\n"
        "p.yaml:5:25: error: app version must be a string, got a number; quote it: '2.4'\n"
        "p.yaml:7:27: error: each entry of groups must be a string, got a number; quote it: '7'\n");
}

TEST_CASE("duplicate stage names and unknown needs") {
  auto c = check_plan(kHead +
                      "stages:\n"                  // 5
                      "  - name: canary\n"         // 6
                      "    groups: [C]\n"          // 7
                      "  - name: canary\n"         // 8
                      "    groups: [D]\n"          // 9
                      "  - name: eu\n"             // 10
                      "    needs: [canery, us]\n"  // 11
                      "    groups: [E]\n");        // 12
  CHECK(c.report ==
        "p.yaml:8:11: error: duplicate stage name 'canary' (first defined at line 6)\n"
        "p.yaml:11:13: error: stage 'eu' needs unknown stage 'canery' (did you mean 'canary'?)\n"
        "p.yaml:11:21: error: stage 'eu' needs unknown stage 'us'\n");
  CHECK_FALSE(c.graph);
}

TEST_CASE("a cycle is printed as a path, at the needs entry that closes it") {
  auto c = check_plan(kHead +
                      "stages:\n"                                    // 5
                      "  - {name: a, groups: [G]}\n"                 // 6
                      "  - {name: b, groups: [G], needs: [a, d]}\n"  // 7
                      "  - {name: c, groups: [G], needs: [b]}\n"     // 8
                      "  - {name: d, groups: [G], needs: [c]}\n"     // 9
                      "  - {name: e, groups: [G], needs: [e]}\n");   // 10
  CHECK(c.report ==
        "p.yaml:8:36: error: dependency cycle: b -> c -> d -> b\n"
        "p.yaml:10:36: error: dependency cycle: e -> e\n");
  CHECK_FALSE(c.graph);
}

TEST_CASE("a stage must have a way to select devices") {
  auto c = check_plan(kHead +
                      "stages:\n"            // 5
                      "  - name: a\n"        // 6
                      "  - name: b\n"        // 7
                      "    groups: []\n"     // 8
                      "    filters: []\n");  // 9
  CHECK(c.report ==
        "p.yaml:6:11: error: stage 'a' has no way to select devices: give it groups, filters, or "
        "both (to reach every remaining device, filter {type: update_status, operand: is_not, "
        "value: success})\n"
        "p.yaml:7:11: error: stage 'b' has empty groups and filters: it would select every device "
        "of the project\n");
}

TEST_CASE("bad durations, percentages and counts") {
  auto c = check_plan(kHead +
                      "defaults:\n"                                                         // 5
                      "  gate: {bake: 10, poll: 1w, min_success: 120%, max_failed: 2.5}\n"  // 6
                      "stages:\n"                                                           // 7
                      "  - name: a\n"                                                       // 8
                      "    groups: [G]\n"                                                   // 9
                      "    gate: {timeout: soon, min_devices: -1, min_success: lots}\n");   // 10
  CHECK(c.report ==
        "p.yaml:6:16: error: bake: bad duration '10': missing unit after 10 (did you mean '10s' or "
        "'10m'?)\n"
        "p.yaml:6:26: error: poll: bad duration '1w': unknown unit 'w': use s, m, h or d (e.g. "
        "90s, 10m, 2h)\n"
        "p.yaml:6:43: error: min_success: bad value '120%': a percentage must be at most 100%\n"
        "p.yaml:6:61: error: max_failed: bad value '2.5': a device count must be whole (did you "
        "mean '2.5%'?)\n"
        "p.yaml:10:21: error: timeout: bad duration 'soon': expected a number followed by a unit: "
        "s, m, h or d (e.g. 90s, 10m, 2h)\n"
        "p.yaml:10:40: error: min_devices must be between 0 and 100000000, got -1\n"
        "p.yaml:10:57: error: min_success: bad value 'lots': expected a percentage such as 95% or "
        "a whole device count such as 3\n");
}

TEST_CASE("a gate whose bake outlasts its timeout can never judge") {
  auto c = check_plan(kHead +
                      "stages:\n  - name: a\n    groups: [G]\n    gate: {bake: 2h, timeout: 1h}\n");
  CHECK(c.report ==
        "p.yaml:8:18: error: stage 'a': bake (2h) must be shorter than timeout (1h), or the gate "
        "can never judge\n");  // at the bake, not at the stage's name
}

TEST_CASE("enumerated values: on_timeout, approval, on_failure action") {
  auto c = check_plan(kHead +
                      "stages:\n"                          // 5
                      "  - name: a\n"                      // 6
                      "    groups: [G]\n"                  // 7
                      "    approval: yes\n"                // 8
                      "    gate: {on_timeout: pass_}\n"    // 9
                      "on_failure: {action: rolback}\n");  // 10
  CHECK(c.report ==
        "p.yaml:8:15: error: approval must be one of 'required', 'none', not 'yes'\n"
        "p.yaml:9:24: error: on_timeout must be one of 'pause', 'fail', 'pass', not 'pass_' (did "
        "you mean 'pass'?)\n"
        "p.yaml:10:22: error: on_failure action must be one of 'stop', 'rollback', not 'rolback' "
        "(did you mean 'rollback'?)\n");
}

TEST_CASE("rollback needs its flow") {
  auto c =
      check_plan(kHead + "stages:\n  - {name: a, groups: [G]}\non_failure:\n  action: rollback\n");
  CHECK(c.report ==
        "p.yaml:8:3: error: on_failure action 'rollback' needs a rollback block with the rollback "
        "flow_id (and usually the previous app version)\n");
  auto w = check_plan(kHead +
                      "stages:\n  - {name: a, groups: [G]}\non_failure:\n  action: stop\n  "
                      "rollback: {flow_id: x}\n");
  // Used by `abort --rollback` (and by a stage's own rollback): no warning.
  CHECK(w.report == "");
  CHECK(w.loaded.plan->on_failure.rollback->flow_id == "x");
}

TEST_CASE("on_failure's scope, and a stage's own on_failure over the plan's") {
  auto c = check_plan(kHead +
                      "stages:\n"
                      "  - {name: a, groups: [G]}\n"
                      "  - name: b\n"
                      "    groups: [H]\n"
                      "    on_failure: {action: stop}\n"
                      "  - name: c\n"
                      "    groups: [I]\n"
                      "    on_failure: {action: rollback, scope: run}\n"
                      "on_failure:\n"
                      "  action: rollback\n"
                      "  rollback: {flow_id: old, timeout: 20m}\n");
  REQUIRE(c.report == "");
  const auto& p = *c.loaded.plan;
  CHECK(p.on_failure.scope == rollout::plan::RollbackScope::stage);  // the default
  CHECK_FALSE(p.stages[0].own_on_failure);
  CHECK(p.stages[0].on_failure.action == rollout::plan::FailureAction::rollback);
  CHECK(p.stages[1].own_on_failure);
  CHECK(p.stages[1].on_failure.action == rollout::plan::FailureAction::stop);
  // A stage that stops keeps the plan's flow: an abort --rollback still rolls it back.
  CHECK(p.stages[1].on_failure.rollback->flow_id == "old");
  CHECK(p.stages[2].on_failure.scope == rollout::plan::RollbackScope::run);
  CHECK(p.stages[2].on_failure.rollback->flow_id == "old");  // the plan's, inherited
  CHECK(p.stages[2].on_failure.rollback->timeout == std::chrono::minutes(20));

  auto bad = check_plan(kHead +
                        "stages:\n"
                        "  - name: a\n"                                        // 6
                        "    groups: [G]\n"                                    // 7
                        "    on_failure: {action: rollback, scope: stages}\n"  // 8
                        "  - name: b\n"                                        // 9
                        "    groups: [H]\n"                                    // 10
                        "    on_failure: {action: rollback}\n");               // 11
  CHECK(bad.report ==
        "p.yaml:8:17: error: stage 'a' on_failure action 'rollback' needs a rollback block with "
        "the rollback flow_id (and usually the previous app version), here or in the plan's "
        "on_failure\n"
        "p.yaml:8:43: error: stage 'a' on_failure scope must be one of 'stage', 'run', not "
        "'stages' (did you mean 'stage'?)\n"
        "p.yaml:11:17: error: stage 'b' on_failure action 'rollback' needs a rollback block "
        "with the rollback flow_id (and usually the previous app version), here or in the plan's "
        "on_failure\n");
}

TEST_CASE("shapes: lists, maps, names") {
  auto c = check_plan(kHead +
                      "max_parallel: 0\n"      // 5
                      "stages:\n"              // 6
                      "  - name: a b\n"        // 7
                      "    groups: Canary\n"   // 8
                      "    needs: x\n"         // 9
                      "  - just-a-string\n");  // 10
  CHECK(c.report ==
        "p.yaml:5:15: error: max_parallel must be between 1 and 10000, got 0\n"
        "p.yaml:7:11: error: stage name 'a b' must be 1 to 64 letters, digits, '-', '_' or '.', "
        "starting with a letter or digit\n"
        "p.yaml:8:13: error: groups must be a list, got a string (write [Canary])\n"
        "p.yaml:9:12: error: needs must be a list of stage names, got a string (write [x])\n"
        "p.yaml:10:5: error: stage #2 must be a map, got a string\n");
  auto empty = check_plan(kHead + "stages: []\n");
  CHECK(empty.report == "p.yaml:5:9: error: stages is empty: a plan needs at least one stage\n");
  auto notmap = check_plan("- a\n- b\n");
  CHECK(notmap.report == "p.yaml:1:1: error: the plan must be a map, got a list\n");
}

TEST_CASE("api block: url and rate limit") {
  auto c = check_plan(
      kHead + "api: {url: ftp://x, rate_limit: lots}\nstages:\n  - {name: a, groups: [G]}\n");
  CHECK(c.report ==
        "p.yaml:5:12: error: api url 'ftp://x' must start with https:// (or http:// for a "
        "simulator on loopback)\n"
        "p.yaml:5:33: error: api rate_limit: 'lots' is not a rate such as 30/min\n");
  auto ok = check_plan(kHead +
                       "api: {url: \"http://127.0.0.1:8080/v1/\", rate_limit: 120/min}\nstages:\n  "
                       "- {name: a, groups: [G]}\n");
  CHECK(ok.report == "");
  CHECK(ok.loaded.plan->api.rate_limit.calls == 120);
  CHECK(ok.loaded.plan->api.rate_limit.per == 60s);
  std::string why;
  CHECK(rollout::plan::parse_rate_limit("5/10s", &why)->per == 10s);
  CHECK_FALSE(rollout::plan::parse_rate_limit("0/min", &why));
}

TEST_CASE("all diagnostics of a file come at once, in file order") {
  auto c = check_plan(
      "version: 1\nname: p\nstages:\n  - {name: a, gruops: [G]}\n  - {name: a, needs: [zz], "
      "groups: [G], gate: {bake: x}}\n");
  CHECK(c.loaded.diagnostics.error_count() == 7);
  CHECK(c.report ==
        "p.yaml:1:1: error: the plan is missing required field 'flow_id' (set it at the top, or on "
        "every stage)\n"
        "p.yaml:1:1: error: the plan is missing required field 'project' (set it at the top, or on "
        "every stage)\n"
        "p.yaml:4:12: error: stage 'a' has no way to select devices: give it groups, filters, or "
        "both (to reach every remaining device, filter {type: update_status, operand: is_not, "
        "value: success})\n"
        "p.yaml:4:15: error: unknown key 'gruops' in stage #1 (did you mean 'groups'?)\n"
        "p.yaml:5:12: error: duplicate stage name 'a' (first defined at line 4)\n"
        "p.yaml:5:23: error: stage 'a' needs unknown stage 'zz'\n"
        "p.yaml:5:54: error: bake: bad duration 'x': expected a number followed by a unit: s, m, h "
        "or d (e.g. 90s, 10m, 2h)\n");
}

TEST_CASE("ramp expansion, case by case: the steps a ramp becomes, or why it cannot be") {
  struct Row {
    const char* ramp;
    std::vector<std::string> steps;  // empty: refused, saying `error`
    const char* error = "";
  };
  const std::vector<Row> rows = {
      {"{steps: [1%, 5%, 25%, 100%]}", {"eu@1%", "eu@5%", "eu@25%", "eu@100%"}},
      {"{steps: [50%]}", {"eu@50%"}},
      {"{steps: [10%, 40%]}", {"eu@10%", "eu@40%"}},  // no 100% added: the ramp ends there
      {"{from: 10%, factor: 2}", {"eu@10%", "eu@20%", "eu@40%", "eu@80%", "eu@100%"}},
      {"{from: 1.5%, factor: 3}", {"eu@1.5%", "eu@4.5%", "eu@13.5%", "eu@40.5%", "eu@100%"}},
      {"{from: 60%, factor: 2}", {"eu@60%", "eu@100%"}},
      {"{from: 100%, factor: 2}", {"eu@100%"}},
      {"{steps: [5%, 5%]}", {}, "step 5% is not above the step before it (5%)"},
      {"{steps: [25%, 10%]}", {}, "step 10% is not above the step before it (25%)"},
      {"{steps: []}", {}, "steps must be a list of shares"},
      {"{steps: [1%], from: 1%}", {}, "needs exactly one of steps"},
      {"{}", {}, "needs exactly one of steps"},
      {"{steps: [1%], factor: 2}", {}, "factor goes with from, not with steps"},
      {"{from: 1%}", {}, "from needs a factor"},
      {"{from: 1%, factor: 1}", {}, "factor must be a number above 1 and at most 100, got '1'"},
      {"{from: 1%, factor: \"2\"}", {}, "factor must be a number above 1"},
      {"{steps: [0%, 5%]}", {}, "each step of a ramp"},
  };
  for (const Row& row : rows) {
    const std::string ramp = row.ramp;
    CAPTURE(ramp);
    auto c = check_plan(kHead + "stages:\n  - name: eu\n    groups: [EU]\n    ramp: " + ramp +
                        "\n  - name: late\n    needs: [eu]\n    groups: [US]\n");
    if (row.steps.empty()) {
      CHECK(c.report.find(row.error) != std::string::npos);
      CHECK(c.loaded.diagnostics.error_count() > 0);
      continue;
    }
    REQUIRE(c.report == "");
    std::vector<std::string> names;
    for (const auto& s : c.loaded.plan->stages) names.push_back(s.name);
    std::vector<std::string> expected = row.steps;
    expected.push_back("late");
    CHECK(names == expected);
    // One after the other; the stage that needed the ramp needs its last step.
    const auto& stages = c.loaded.plan->stages;
    for (std::size_t k = 1; k < stages.size(); ++k) {
      REQUIRE(stages[k].needs.size() == 1);
      CHECK(stages[k].needs[0].name == stages[k - 1].name);
    }
    // Each step's sample is its share in all, growing.
    for (std::size_t k = 0; k + 1 < row.steps.size(); ++k)
      CHECK(stages[k].sample->percent < stages[k + 1].sample->percent);
  }
}
