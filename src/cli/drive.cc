// A run on the terminal: runner::Runner runs it, the console shows it, and its ending becomes
// the last lines and the exit code.
#include <iostream>

#include <fmt/format.h>

#include "cli/console.h"
#include "cli/exit_codes.h"
#include "cli/review.h"
#include "cli/session.h"
#include "runner/runner.h"

namespace rollout::cli {

int exit_code(engine::Ending ending) {
  switch (ending) {
    case engine::Ending::completed:
      return kExitOk;
    case engine::Ending::stopped:
      return kExitStopped;
    case engine::Ending::paused:
      return kExitPaused;
    case engine::Ending::interrupted:
      return kExitInterrupted;
    case engine::Ending::failed:
      return kExitError;
  }
  return kExitError;
}

int drive_run(state::StateStore& store, const StateOptions& state, const state::RunRecord& run,
              const CheckedPlan& checked, const ApiOptions& api) {
  runner::Runner runner(store, resolve_state_path(state), run, checked.plan, checked.graph, api);
  view::RunProgress progress = read_progress(store, run);
  const bool resumed = !progress.recent.empty();  // a new run has no events yet
  Console console(runner.io(), runner.clock(), checked.plan, std::move(progress),
                  console_mode(api.json, api.quiet, api.no_progress));
  console.begin(resumed);
  const engine::Outcome outcome = runner.run(console, resumed);
  const int code = exit_code(outcome.ending);
  console.end(outcome.ending, outcome.reason, code);
  if (api.json) return code;
  std::cout << fmt::format("\nrun {} {}: {}\n", run.id, engine::name(outcome.ending),
                           outcome.reason);
  if (!outcome.next.empty()) {
    std::cout << fmt::format("see `rollout show {}`; then `{}`\n", run.id, outcome.next);
  } else if (outcome.ending == engine::Ending::paused ||
             outcome.ending == engine::Ending::interrupted ||
             outcome.ending == engine::Ending::failed) {
    std::cout << fmt::format("see `rollout show {}`; continue with `rollout resume {}`\n", run.id,
                             run.id);
  }
  return code;
}

}  // namespace rollout::cli
