// What apply, resume and abort share: the state database, the API (real or an in-process
// simulator), the owner of the run's lease, the console, and driving the engine to its end.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "cli/command.h"
#include "cli/error.h"
#include "client/upswift_client.h"
#include "engine/engine.h"
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

// Opens the state database; throws CommandError saying why not. Only a new run creates one
// (`create`): a mistyped path elsewhere is an error, not an empty database that says "no
// runs".
// Now, for a record another process adds to `run` (a request, an approval, a retry): never
// before the run's own latest record, since a time-scaled run's clock runs ahead of the wall's.
WallTime record_time(state::StateStore& store, const state::RunRecord& run);

// Refuses (CommandError, exit 2) a state URL that carries a password, opening nothing.
void check_state_url(const StateOptions& o);
std::unique_ptr<store::SqlStore> open_store(const StateOptions& o, bool create = false);

struct ApiOptions {
  std::string simulate_fleet;     // --simulate FLEET: an in-process simulator
  double time_scale = 1.0;        // --time-scale: simulated fleets only
  bool time_scale_given = false;  // ... said on the command line (else the run's own)
  // A run against an in-process simulator keeps what its fleet applied here, so that the
  // run can go on in another process (resume, approve, retry, abort --rollback); set by
  // drive_run. Empty: the fleet lives only as long as the process (rollout plan).
  std::string sim_journal;
  // The run has sent calls: its fleet changed, and a missing record cannot be rebuilt.
  bool sim_journal_required = false;
  WallTime sim_start{};  // where the simulated fleet's clock starts (the run's clock too)
  bool json = false;     // --output json: events as JSON lines on stdout
  bool quiet = false;
  bool no_progress = false;  // --no-progress: plain lines even on a terminal
};

// A run's lease goes stale this long after its last heartbeat (30 s): another process may
// take the run over then, and the one that held it stops at its next write or send.
// ROLLOUT_TEST_LEASE_MS shortens it for the freeze-and-takeover tests.
Millis lease_stale_after();

// Who this process is in a lease: $HOSTNAME (else the machine's name), pid, user. Only a
// lease of the same host can be told dead by its pid; others go stale.
state::LeaseOwner this_process();
std::string current_user();

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

// The lease's owner runs on this host and its pid no longer exists. Elsewhere nobody can
// tell: only the heartbeat's age says.
bool process_is_gone(const state::LeaseOwner& owner);

// Takes the run's lease (over a dead process's on this host, too); nullopt when it did,
// else who holds it.
std::optional<state::Lease> try_lease(state::StateStore& store, const std::string& run_id);
// The same, saying who holds it and refusing to run the run twice when it cannot.
bool take_lease(state::StateStore& store, const std::string& run_id);

// How this process claims a run: for `apply`'s check of a live run beside a new one, and
// the same check when an existing run goes on (dead owners on this host hold nothing back).
state::RunClaim run_claim(bool allow_concurrent);
// Prints the refusal of a run beside `conflict` (nothing was sent).
void refuse_beside(const state::RunConflict& conflict);
// After `take_lease`: a live run of the same plan or targets refuses this one going on
// (its lease is given back); true when it may go on.
bool alone_or_allowed(state::StateStore& store, const state::RunRecord& run, bool allow_concurrent);

// The API URL a new run of `plan` records: "simulated:FLEET" with --simulate, else the
// plan's api.url, else UPSWIFT_API_URL, else Upswift's.
std::string run_api_url(const plan::Plan& plan, const ApiOptions& api);

// Why a run cannot go to `url` with these options (no token, --time-scale off a simulator,
// plain http off loopback), or nullopt. Asked before anything is written, and again when a
// process of the run opens its connection.
std::optional<std::string> api_refusal(const std::string& url, const ApiOptions& api);

class InProcessSim;

// A run's API URL for an in-process simulator: this, then the fleet file's path.
inline constexpr std::string_view kSimulated = "simulated:";

// What a run talks to: Upswift or a simulator over HTTP, or, for a "simulated:" URL, an
// in-process simulator started from --simulate FLEET; either way through the libcurl client.
class ApiConnection {
 public:
  ~ApiConnection();
  upswift::FleetApi& api() { return *client_; }
  client::UpswiftClient& client() { return *client_; }
  // Where the run's clock starts: options.sim_start, or, for a simulated fleet whose
  // journal goes further, the journal's last time (the fleet's time never goes back).
  WallTime start() const { return start_; }

  // Throws CommandError saying why, when it cannot.
  static std::unique_ptr<ApiConnection> open(asio::io_context& io, const plan::Plan& plan,
                                             const std::string& url, const ApiOptions& options);

 private:
  ApiConnection() = default;
  std::unique_ptr<InProcessSim> sim_;
  std::unique_ptr<client::UpswiftClient> client_;
  WallTime start_{};
};

// "API not answering as it should: devices_details: ...; try 3 of 8 in 4.0 s".
std::string describe_retry(const client::UpswiftClient::RetryNotice& n);

// Where a run against an in-process simulator keeps its fleet: beside a SQLite state file;
// for a PostgreSQL state, in $XDG_STATE_HOME (else ~/.local/state)/rollout/sim/ of the machine
// that ran it.
std::string sim_journal_path(const StateOptions& state, const std::string& run_id);

// The API options for a process of `run`: where its clock starts (a time-scaled run goes
// on from its records), and for a simulated run, where its fleet is kept.
ApiOptions run_api_options(state::StateStore& store, const StateOptions& state,
                           const state::RunRecord& run, const ApiOptions& given);

// Runs (or resumes) `run` until it ends for now; returns the exit code. `state` says where
// a simulated run's fleet is kept.
int drive_run(state::StateStore& store, const StateOptions& state, const state::RunRecord& run,
              const CheckedPlan& plan, const ApiOptions& api);

int exit_code(engine::Ending ending);

// Before a run's first deploy_update: reads from the API whether every stage's project and
// groups have devices; throws CommandError naming the stage and field (exit 2, ending with
// `what_now`), or exit 1 when the API cannot be read. Writes nothing.
void preflight(const plan::Plan& plan, const std::string& url, const ApiOptions& api,
               const std::string& what_now);

// Checks the test hooks in the environment (ROLLOUT_TEST_CRASH_AT must name a crash point)
// before a command writes anything; throws CommandError otherwise.
void check_test_hooks();

}  // namespace rollout::cli
