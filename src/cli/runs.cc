// rollout runs: every run in the state database.
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/exit_codes.h"
#include "cli/review.h"
#include "cli/session.h"

namespace rollout::cli {

namespace {
struct RunsOptions {
  StateOptions state;
  std::string output = "text";
};

int run_runs(const RunsOptions& o) {
  auto store = open_store(o.state);
  auto runs = store->list_runs();
  for (auto& r : runs) show_if_gone(*store, r);
  if (o.output == "json") {
    nlohmann::ordered_json all = nlohmann::ordered_json::array();
    for (const auto& r : runs) all.push_back(to_json(r, store->load_stages(r.id)));
    std::cout << all.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
    return kExitOk;
  }
  if (runs.empty()) {
    std::cout << "no runs yet in " << resolve_state_path(o.state) << "\n";
    return kExitOk;
  }
  std::cout << fmt::format("{:<24} {:<24} {:<12} {:<20} {:>9} {:>7}\n", "RUN", "PLAN", "STATUS",
                           "STARTED", "DURATION", "STAGES");
  for (const auto& r : runs) {
    const auto t = tally(store->load_stages(r.id));
    std::cout << fmt::format("{:<24} {:<24} {:<12} {:<20} {:>9} {:>7}\n", r.id, r.plan_name,
                             state::name(r.status), local_time(r.created_at),
                             span(r.created_at, r.finished_at.value_or(r.updated_at)),
                             fmt::format("{}/{}", t.done, t.total));
  }
  return kExitOk;
}
}  // namespace

void add_runs_command(CLI::App& app, Run& run) {
  auto o = std::make_shared<RunsOptions>();
  CLI::App* cmd = app.add_subcommand("runs", "List past and current runs.");
  add_state_option(cmd, o->state.state_path);
  cmd->add_option("--output", o->output, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->callback([o, &run] { run = [o] { return run_runs(*o); }; });
}

}  // namespace rollout::cli
