// How subcommands plug into main: each adds itself to the CLI11 app and, when chosen,
// leaves the function that runs it. One file per subcommand.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "dag/graph.h"
#include "plan/model.h"
#include "sim/fleet.h"
#include "util/file.h"

namespace rollout::cli {

using Run = std::function<int()>;

void add_validate_command(CLI::App& app, Run& run);
void add_plan_command(CLI::App& app, Run& run);
void add_graph_command(CLI::App& app, Run& run);
void add_sim_command(CLI::App& app, Run& run);
void add_apply_command(CLI::App& app, Run& run);
void add_resume_command(CLI::App& app, Run& run);
void add_retry_command(CLI::App& app, Run& run);
void add_runs_command(CLI::App& app, Run& run);
void add_show_command(CLI::App& app, Run& run);
void add_status_command(CLI::App& app, Run& run);
void add_report_command(CLI::App& app, Run& run);
void add_rehearse_command(CLI::App& app, Run& run);
void add_approve_command(CLI::App& app, Run& run);
void add_abort_command(CLI::App& app, Run& run);
void add_pause_command(CLI::App& app, Run& run);
void add_state_command(CLI::App& app, Run& run);

// A plan read from a file and checked through the DAG.
struct CheckedPlan {
  std::string path;
  std::string text;
  plan::Plan plan;
  dag::Graph graph;
};

// Reads and checks PATH, printing every diagnostic to stderr. nullopt when the plan is
// unusable (the caller exits 2).
std::optional<CheckedPlan> load_checked_plan(const std::string& path);

// The plan text stored with a run, checked the same way; says why not (and nullopt) when it
// no longer loads (a plan stored by another version).
std::optional<CheckedPlan> check_stored_plan(const std::string& run_id, const std::string& path,
                                             const std::string& text);

// Reads and checks a fleet file, printing diagnostics to stderr.
std::optional<sim::FleetSpec> load_fleet_file(const std::string& path);

}  // namespace rollout::cli
