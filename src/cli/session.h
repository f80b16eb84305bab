// What the commands that open runs share: the state database, finding a run, refusing to run
// a run twice, and a run driven on the terminal (src/runner/ runs it; cli/drive.cc shows it).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "cli/command.h"
#include "cli/error.h"
#include "engine/engine.h"
#include "runner/connection.h"
#include "runner/lease.h"
#include "state/store.h"
#include "store/sql_store.h"
#include "util/asio.h"
#include "util/duration.h"

namespace rollout::cli {

struct StateOptions {
  std::string state_path;  // --state; else ROLLOUT_STATE; else rollout.db
  // --state-retry: how long a PostgreSQL state's lost connection is made again, with backoff.
  Seconds state_retry{60};
};
// --state-retry, as the commands that drive a run have it.
void add_state_retry_option(CLI::App* cmd, StateOptions& state);
std::string resolve_state_path(const StateOptions& o);
// --state, as every command that reads or writes runs has it.
void add_state_option(CLI::App* cmd, std::string& state_path);

// Now, for a record another process adds to `run` (a request, an approval, a retry): never
// before the run's own latest record, since a time-scaled run's clock runs ahead of the wall's.
WallTime record_time(state::StateStore& store, const state::RunRecord& run);

// Refuses (CommandError, exit 2) a state URL that carries a password, opening nothing.
void check_state_url(const StateOptions& o);
// Opens the state database; throws CommandError saying why not. Only a new run creates one
// (`create`): a mistyped path elsewhere is an error, not an empty database that says "no
// runs".
std::unique_ptr<store::SqlStore> open_store(const StateOptions& o, bool create = false);

// The run's API options as a command has them, with how the command shows the run.
struct ApiOptions : runner::ApiOptions {
  bool json = false;  // --output json: events as JSON lines on stdout
  bool quiet = false;
  bool no_progress = false;  // --no-progress: plain lines even on a terminal
};

// What the commands use of how a run is run (src/runner/).
using runner::api_refusal;
using runner::ApiConnection;
using runner::current_user;
using runner::describe_retry;
using runner::kSimulated;
using runner::lease_stale_after;
using runner::run_api_url;
using runner::run_claim;
using runner::this_process;
using runner::try_lease;

// The state database, one of its runs and the plan stored with it, as every command that
// reviews or continues a run starts; CommandError when the database or the run is not there. `plan`
// is empty (and why was said) when the stored plan no longer loads: reviews go on without it, a run
// cannot.
struct OpenedRun {
  std::unique_ptr<store::SqlStore> store;
  state::RunRecord run;
  std::optional<CheckedPlan> plan;
};
OpenedRun open_run(const StateOptions& state, const std::string& run_id);

// How many of the run's calls have an outcome not known yet (an answer lost, or written ahead
// and never answered). A run that an older version ended with some is resumed to settle them.
std::size_t unsettled_calls(state::StateStore& store, const std::string& run_id);

// "run R has no stage 'uss' (did you mean 'us'?); its stages: canary, eu, us"
std::string no_such_stage(const std::string& run_id, const std::string& stage,
                          const std::vector<std::string>& names);

// "last" is the most recent run; otherwise the id as given, which must exist (CommandError
// otherwise). A run recorded as running whose process is gone comes back as `interrupted`.
state::RunRecord find_run(state::StateStore& store, const std::string& id);

// A run recorded as `running` whose process is gone (no lease, a heartbeat older than the
// lease, or a pid that no longer exists on this host) is shown as `interrupted`, its reason
// saying how to continue. Only what is shown changes; the record stays as it is.
void show_if_gone(state::StateStore& store, state::RunRecord& run);

// Takes the run's lease (runner::try_lease), saying who holds it and refusing to run the run
// twice when it cannot.
bool take_lease(state::StateStore& store, const std::string& run_id);

// Prints the refusal of a run beside `conflict` (nothing was sent).
void refuse_beside(const state::RunConflict& conflict);
// After `take_lease`: a live run of the same plan or targets refuses this one going on
// (its lease is given back); true when it may go on.
bool alone_or_allowed(state::StateStore& store, const state::RunRecord& run, bool allow_concurrent);

// Runs (or resumes) `run` until it ends for now, on the terminal (runner::Runner, with the
// console); returns the exit code. `state` says where a simulated run's fleet is kept.
int drive_run(state::StateStore& store, const StateOptions& state, const state::RunRecord& run,
              const CheckedPlan& plan, const ApiOptions& api);

int exit_code(engine::Ending ending);

// Before a run's first deploy_update: reads from the API whether every stage's project and
// groups have devices; throws CommandError naming the stage and field (exit 2, ending with
// `what_now`), or exit 1 when the API cannot be read. Writes nothing.
void preflight(const plan::Plan& plan, const std::string& url, const runner::ApiOptions& api,
               const std::string& what_now);

}  // namespace rollout::cli
