// Test helper: load a plan from text and run the DAG checks, the same path as `validate`.
#pragma once

#include <string>

#include "dag/graph.h"
#include "plan/loader.h"

namespace rollout::test {

struct Checked {
  plan::LoadResult loaded;
  std::optional<dag::Graph> graph;
  std::string report;  // every diagnostic formatted for file "p.yaml"
};

inline Checked check_plan(const std::string& text) {
  Checked c{plan::load_plan(text), std::nullopt, {}};
  if (c.loaded.plan) c.graph = dag::build(*c.loaded.plan, c.loaded.diagnostics);
  c.report = c.loaded.diagnostics.format("p.yaml");
  return c;
}

}  // namespace rollout::test
