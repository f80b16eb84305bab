// The exit codes every subcommand shares; documented in `rollout --help` and the README.
#pragma once

namespace rollout::cli {

enum ExitCode : int {
  kExitOk = 0,            // completed
  kExitError = 1,         // a runtime error (API unreachable, state database unusable, ...)
  kExitInvalidInput = 2,  // bad plan, bad arguments, missing file
  kExitStopped = 3,       // stopped by a gate or an abort (rolled back or not)
  kExitPaused = 4,        // waiting for approval or an inconclusive gate; resumable
  kExitInterrupted = 130  // stopped by a signal; resumable
};

inline constexpr const char* kExitCodesHelp =
    "Exit codes:\n"
    "  0    completed\n"
    "  1    error (API unreachable, state database unusable, ...), or a rollback that\n"
    "       failed on some devices (rollout retry RUN STAGE --rollback)\n"
    "  2    invalid input (plan, fleet file or arguments; a group that lists no device)\n"
    "  3    stopped by a gate or an abort (rolled back, or not rolled back)\n"
    "  4    paused: waiting for approval, an inconclusive gate or a person's pause\n"
    "       (resumable)\n"
    "  130  interrupted by a signal (resumable)\n";

}  // namespace rollout::cli
