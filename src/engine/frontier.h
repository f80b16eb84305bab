// The stages in play in one run over a graph: those not passed whose needs have all passed,
// or which were already under way. A step of the engine looks at these only, so its cost
// follows the stages in play, not the size of the plan. Pure: it knows stages by id and
// whether each has passed; the engine tells it when one passes or is rolled back after.
#pragma once

#include <cstddef>
#include <set>
#include <vector>

#include "dag/graph.h"

namespace rollout::engine {

class Frontier {
 public:
  // `passed[i]`: stage i has passed; `started[i]`: it left `waiting` (under way, paused,
  // failed...): such a stage is in play whatever its needs.
  Frontier(const dag::Graph& graph, const std::vector<bool>& passed,
           const std::vector<bool>& started);

  // Stage `id` passed: the stages that waited for it alone join.
  void pass(dag::StageId id);
  // A stage that had passed does not any more (rolled back): it is in play again, and the
  // stages that need it wait for it again.
  void unpass(dag::StageId id);

  bool passed(dag::StageId id) const { return passed_[id]; }
  bool needs_met(dag::StageId id) const { return unmet_[id] == 0; }
  bool all_passed() const { return passed_count_ == passed_.size(); }
  std::size_t passed_count() const { return passed_count_; }

  // Drops the stages that passed since the last call. Not during visit().
  void prune();

  // Visits the stages in play in graph order. A stage that passes during the visit lets its
  // dependents in, and those after the current one are visited in the same pass.
  template <typename F>
  void visit(F&& f) const {
    for (std::size_t pos : in_play_) f(graph_.order[pos]);
  }
  template <typename P>
  bool any_of(P&& p) const {
    for (std::size_t pos : in_play_)
      if (p(graph_.order[pos])) return true;
    return false;
  }

 private:
  const dag::Graph& graph_;
  std::vector<std::size_t> position_;  // stage -> its position in graph.order
  std::vector<int> unmet_;             // per stage: its needs not passed
  std::vector<bool> passed_;
  std::size_t passed_count_ = 0;
  std::set<std::size_t> in_play_;  // by position: a set's iterators survive insertion
};

}  // namespace rollout::engine
