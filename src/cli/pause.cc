// rollout pause RUN [--comment]: hold a live run where it is. No new stage (nor a ramp's
// next step) starts; the gates under way go on observing and deciding; once nothing is under
// way the run ends paused (exit 4), and `rollout resume` lifts the pause and goes on.
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/exit_codes.h"
#include "cli/session.h"
#include "util/safe_text.h"
#include "util/time_text.h"

namespace rollout::cli {

namespace {

struct PauseOptions {
  std::string run_id;
  std::string comment;
  StateOptions state;
};

int run_pause(const PauseOptions& o) {
  auto opened = open_run(o.state, o.run_id);
  auto& store = opened.store;
  const state::RunRecord& run = opened.run;
  if (run.status != state::RunStatus::running) {
    std::cerr << fmt::format(
        "rollout pause: run {} is {}, not running: {}\n", run.id, state::name(run.status),
        state::is_final(run.status)
            ? "nothing more will start for it"
            : fmt::format("it starts nothing until rollout resume {}", run.id));
    return kExitInvalidInput;
  }
  if (auto held = store->pause_request(run.id)) {
    std::cerr << fmt::format("rollout pause: run {} was paused already, by {} at {}{}\n", run.id,
                             held->by, local_time(held->at),
                             held->comment.empty() ? "" : " (" + held->comment + ")");
    return kExitInvalidInput;
  }
  // Only a run that a process is running can be paused: one whose process is gone is not
  // running whatever its record says, and resume is how it goes on.
  const auto holder = try_lease(*store, run.id);
  if (!holder) {
    store->release_lease(run.id, this_process());
    std::cerr << fmt::format(
        "rollout pause: no process is running run {} (it was cut off): it starts nothing until "
        "rollout resume {}\n",
        run.id, run.id);
    return kExitInvalidInput;
  }
  const std::string who = current_user();
  store->request_pause(run.id, {who, record_time(*store, run), printable(o.comment)});
  std::cout << fmt::format(
      "pause of run {} recorded; the process running it ({}@{}, pid {}) starts no new stage "
      "from its next heartbeat (at once on PostgreSQL); the gates under way go on, then the "
      "run stops paused. rollout resume {} lets it go on.\n",
      run.id, holder->owner.user, holder->owner.host, holder->owner.pid, run.id);
  return kExitOk;
}

}  // namespace

void add_pause_command(CLI::App& app, Run& run) {
  auto o = std::make_shared<PauseOptions>();
  CLI::App* cmd = app.add_subcommand(
      "pause",
      "Hold a running run: no new stage or ramp step starts; gates under way go on deciding; "
      "then it stops paused (resume goes on).");
  cmd->add_option("run", o->run_id, "Run id, or 'last'")->required();
  cmd->add_option("--comment", o->comment, "Why; recorded with your user name and the time");
  add_state_option(cmd, o->state.state_path);
  cmd->callback([o, &run] { run = [o] { return run_pause(*o); }; });
}

}  // namespace rollout::cli
