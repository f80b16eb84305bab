// rollout report RUN -o report.html: the run as one self-contained HTML page.
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/exit_codes.h"
#include "cli/review.h"
#include "cli/session.h"
#include "view/report.h"

namespace rollout::cli {

namespace {

struct ReportOptions {
  std::string run_id = "last";
  StateOptions state;
  std::string out;
};

int run_report(const ReportOptions& o) {
  auto opened = open_run(o.state, o.run_id);
  auto& store = opened.store;
  const state::RunRecord* run = &opened.run;
  view::ReportInput in;
  static_cast<state::RunHistory&>(in) = load_history(*store, run->id);
  // Made without its gates if the stored plan does not load.
  in.plan = opened.plan ? &opened.plan->plan : nullptr;
  in.run = *run;
  const std::string out = o.out.empty() ? fmt::format("rollout-report-{}.html", run->id) : o.out;
  if (!write_file(out, view::render_report(in))) {
    std::cerr << fmt::format("rollout: cannot write {}: {}\n", out, std::strerror(errno));
    return kExitError;
  }
  std::cout << fmt::format("wrote {} (run {}, {} stage(s), {} API call(s), {} event(s))\n", out,
                           run->id, in.stages.size(), in.calls.size(), in.events.size());
  return kExitOk;
}

}  // namespace

void add_report_command(CLI::App& app, Run& run) {
  auto o = std::make_shared<ReportOptions>();
  CLI::App* cmd = app.add_subcommand(
      "report",
      "Write a run as one self-contained HTML page: a Gantt chart of its stages, each stage's "
      "device statuses over time, gate decisions, approvals, API calls and events.");
  cmd->add_option("run", o->run_id, "Run id, or 'last'")->capture_default_str();
  cmd->add_option("-o,--out", o->out, "The HTML file to write (default: rollout-report-RUN.html)");
  add_state_option(cmd, o->state.state_path);
  cmd->footer(
      "The page loads nothing from the network (no scripts, fonts or images): it can be\n"
      "mailed or attached to a ticket as it is.");
  cmd->callback([o, &run] { run = [o] { return run_report(*o); }; });
}

}  // namespace rollout::cli
