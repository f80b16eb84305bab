// The stages of a plan as a DAG: which stage needs which, in a stable topological order.
// Built once per plan; the state of one run over it lives elsewhere (engine), so one
// graph serves any number of runs and rehearsals.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "plan/model.h"
#include "util/diagnostic.h"

namespace rollout::dag {

using StageId = std::size_t;  // index into Plan::stages

struct Graph {
  std::vector<std::vector<StageId>> needs;       // what each stage waits for
  std::vector<std::vector<StageId>> dependents;  // who waits for each stage
  std::vector<StageId> order;                    // topological; ties keep plan order
  std::vector<int> level;                        // longest chain of needs below a stage

  std::size_t size() const { return needs.size(); }
};

// Reports each cycle as a path ("a -> b -> a", each stage before the one that needs it)
// at the `needs` entry that closes it. nullopt when the plan has a cycle or unknown needs.
std::optional<Graph> build(const plan::Plan& plan, Diagnostics& diagnostics);

// DOT (Graphviz) and Mermaid renderings: one node per stage, labelled with its selection
// and gate, an edge from each stage to the stages that need it.
std::string to_dot(const plan::Plan& plan, const Graph& graph);
std::string to_mermaid(const plan::Plan& plan, const Graph& graph);

}  // namespace rollout::dag
