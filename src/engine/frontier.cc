#include "engine/frontier.h"

namespace rollout::engine {

Frontier::Frontier(const dag::Graph& graph, const std::vector<bool>& passed,
                   const std::vector<bool>& started)
    : graph_(graph), position_(graph.size()), unmet_(graph.size(), 0), passed_(passed) {
  for (std::size_t i = 0; i < graph.order.size(); ++i) position_[graph.order[i]] = i;
  for (dag::StageId id = 0; id < graph.size(); ++id) {
    for (dag::StageId need : graph.needs[id]) unmet_[id] += passed_[need] ? 0 : 1;
    if (passed_[id]) {
      ++passed_count_;
    } else if (unmet_[id] == 0 || started[id]) {
      in_play_.insert(position_[id]);
    }
  }
}

void Frontier::pass(dag::StageId id) {
  if (passed_[id]) return;
  passed_[id] = true;
  ++passed_count_;
  for (dag::StageId d : graph_.dependents[id]) {
    if (--unmet_[d] == 0) in_play_.insert(position_[d]);
  }
}

void Frontier::unpass(dag::StageId id) {
  if (!passed_[id]) return;
  passed_[id] = false;
  --passed_count_;
  in_play_.insert(position_[id]);
  for (dag::StageId d : graph_.dependents[id]) ++unmet_[d];  // they wait for it again
}

void Frontier::prune() {
  std::erase_if(in_play_, [this](std::size_t pos) { return passed_[graph_.order[pos]]; });
}

}  // namespace rollout::engine
