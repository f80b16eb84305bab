#include <doctest/doctest.h>

#include "check_plan.h"

using rollout::test::check_plan;

namespace {
const std::string kPlan = R"(version: 1
name: p
flow_id: f
project: P
stages:
  - {name: everyone, groups: [All], needs: [eu, us]}
  - {name: canary, groups: [C]}
  - {name: us, groups: [US], needs: [canary], approval: required}
  - {name: eu, groups: [EU], needs: [canary]}
)";

std::vector<std::string> names_in_order(const rollout::test::Checked& c) {
  std::vector<std::string> out;
  for (auto id : c.graph->order) out.push_back(c.loaded.plan->stages[id].name);
  return out;
}
}  // namespace

TEST_CASE("topological order is stable: ties keep the plan's order") {
  auto c = check_plan(kPlan);
  REQUIRE(c.graph);
  CHECK(names_in_order(c) == std::vector<std::string>{"canary", "us", "eu", "everyone"});
  CHECK(c.graph->level == std::vector<int>{2, 0, 1, 1});
  CHECK(c.graph->needs[0] == std::vector<std::size_t>{3, 2});
  CHECK(c.graph->dependents[1] == std::vector<std::size_t>{2, 3});
}

TEST_CASE("DOT output names every stage and edge") {
  auto c = check_plan(kPlan);
  REQUIRE(c.graph);
  const std::string dot = rollout::dag::to_dot(*c.loaded.plan, *c.graph);
  CHECK(dot.rfind("digraph \"p\" {\n", 0) == 0);
  CHECK(dot.find("\"canary\" -> \"us\";") != std::string::npos);
  CHECK(dot.find("\"canary\" -> \"eu\";") != std::string::npos);
  CHECK(dot.find("\"eu\" -> \"everyone\";") != std::string::npos);
  CHECK(dot.find("\"us\" -> \"everyone\";") != std::string::npos);
  CHECK(dot.find("approval required\", peripheries=2]") != std::string::npos);
  CHECK(dot.back() == '\n');
}

TEST_CASE("Mermaid output numbers nodes so any stage name is safe") {
  auto c = check_plan(kPlan);
  REQUIRE(c.graph);
  const std::string m = rollout::dag::to_mermaid(*c.loaded.plan, *c.graph);
  CHECK(m.rfind("flowchart LR\n", 0) == 0);
  CHECK(m.find("  s1 --> s2\n") != std::string::npos);
  CHECK(m.find("  s3 --> s0\n") != std::string::npos);
  CHECK(m.find("s1[\"canary<br/>groups: C<br/>") != std::string::npos);
}

TEST_CASE("a long chain of stages builds without deep recursion") {
  std::string text =
      "version: 1\nname: p\nflow_id: f\nproject: P\nstages:\n  - {name: s0, groups: [G]}\n";
  for (int i = 1; i < 5000; ++i) {
    text += "  - {name: s" + std::to_string(i) + ", groups: [G], needs: [s" +
            std::to_string(i - 1) + "]}\n";
  }
  auto c = check_plan(text);
  REQUIRE(c.graph);
  CHECK(c.graph->level.back() == 4999);
  text += "  - {name: x, groups: [G], needs: [x]}\n";
  text.replace(text.find("{name: s0, groups: [G]}"), 23, "{name: s0, groups: [G], needs: [s4999]}");
  auto cyc = check_plan(text);
  CHECK_FALSE(cyc.graph);
  CHECK(cyc.report.find("dependency cycle: s0 -> s1 -> s2 -> ") != std::string::npos);
}
