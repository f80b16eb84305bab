// rollout: a declarative rollout orchestrator for Upswift fleets.
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/command.h"
#include "cli/error.h"
#include "cli/exit_codes.h"
#include "cli/session.h"

#ifndef ROLLOUT_VERSION
#define ROLLOUT_VERSION "unknown"
#endif

int main(int argc, char** argv) {
  using namespace rollout::cli;
  CLI::App app{"rollout: staged, gated, resumable update rollouts for Upswift fleets", "rollout"};
  app.set_version_flag("--version", std::string("rollout ") + ROLLOUT_VERSION);
  app.require_subcommand(1);
  app.footer(kExitCodesHelp);
  Run run;
  add_validate_command(app, run);
  add_plan_command(app, run);
  add_graph_command(app, run);
  add_apply_command(app, run);
  add_resume_command(app, run);
  add_retry_command(app, run);
  add_runs_command(app, run);
  add_show_command(app, run);
  add_status_command(app, run);
  add_report_command(app, run);
  add_rehearse_command(app, run);
  add_approve_command(app, run);
  add_abort_command(app, run);
  add_state_command(app, run);
  add_sim_command(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitInvalidInput;
  }
  if (!run) return kExitInvalidInput;
  // The one error path: whatever a command could not do (the state database, the
  // filesystem, a lost lease, a bug) ends here as a message and exit 1, never as
  // std::terminate. Every write before it was a committed transaction, so the state is
  // consistent and a run can be resumed.
  try {
    check_test_hooks();
    return run();
  } catch (const CommandError& e) {
    if (*e.what()) std::cerr << "rollout: " << e.what() << "\n";
    return e.exit_code;
  } catch (const std::exception& e) {
    std::cerr << "rollout: error: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "rollout: error: an unexpected failure\n";
  }
  return kExitError;
}
