// The one error path of a command: whatever stops it is thrown, and main turns it into a
// message and an exit code (cli/exit_codes.h). Nothing else prints an error and returns.
#pragma once

#include <stdexcept>
#include <string>

namespace rollout::cli {

// A command that cannot go on, for a reason a person can act on: main prints
// "rollout: WHAT" (nothing when WHAT is empty: the diagnostics were printed already, with
// their positions) and exits with `exit_code`.
struct CommandError : std::runtime_error {
  CommandError(int code, const std::string& what) : std::runtime_error(what), exit_code(code) {}
  int exit_code;
};

}  // namespace rollout::cli
