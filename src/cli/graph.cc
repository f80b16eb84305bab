// rollout graph PLAN [--format dot|mermaid]
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "cli/exit_codes.h"

namespace rollout::cli {

namespace {
struct GraphOptions {
  std::string plan;
  std::string format = "dot";
};
}  // namespace

void add_graph_command(CLI::App& app, Run& run) {
  auto opts = std::make_shared<GraphOptions>();
  CLI::App* cmd = app.add_subcommand("graph", "Print the plan's stage graph as DOT or Mermaid.");
  cmd->add_option("plan", opts->plan, "Plan file (YAML)")->required();
  cmd->add_option("--format", opts->format, "dot (Graphviz) or mermaid")
      ->check(CLI::IsMember({"dot", "mermaid"}))
      ->capture_default_str();
  cmd->footer("Example: rollout graph plans/canary-then-fleet.yaml | dot -Tsvg > plan.svg");
  cmd->callback([opts, &run] {
    run = [opts] {
      auto checked = load_checked_plan(opts->plan);
      if (!checked) return static_cast<int>(kExitInvalidInput);
      std::cout << (opts->format == "dot" ? dag::to_dot(checked->plan, checked->graph)
                                          : dag::to_mermaid(checked->plan, checked->graph));
      return static_cast<int>(kExitOk);
    };
  });
}

}  // namespace rollout::cli
