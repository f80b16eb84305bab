// Why a run cannot be run (or go on) in this process, for a reason a person can act on. The
// caller says it (the CLI's main: "rollout: WHAT", exit 2 for `input`, else 1).
#pragma once

#include <stdexcept>
#include <string>

namespace rollout::runner {

struct RunError : std::runtime_error {
  enum class Kind {
    input,    // what the person gave must change: a fleet file, an option, a missing record
    failure,  // something failed that may not next time (a server that did not start)
  };
  RunError(Kind k, const std::string& what, bool positioned = false)
      : std::runtime_error(what), kind(k), formatted(positioned) {}
  Kind kind;
  // The message is whole FILE:LINE:COL lines (a fleet file's diagnostics): said as it is.
  bool formatted;
};

}  // namespace rollout::runner
