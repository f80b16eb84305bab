// What apply, resume and abort share: the state database, the API (real or an in-process
// simulator), the owner of the run's lease, the console, and driving the engine to its end.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "engine/engine.h"
#include "state/store.h"
#include "store/sqlite_store.h"

namespace rollout::cli {

struct StateOptions {
  std::string state_path;  // --state; else ROLLOUT_STATE; else rollout.db
};
std::string resolve_state_path(const StateOptions& o);

// Opens the state database, printing why not (and returning nullopt) when it cannot.
std::unique_ptr<store::SqliteStore> open_store(const StateOptions& o);

struct ApiOptions {
  std::string simulate_fleet;  // --simulate FLEET: an in-process simulator
  double time_scale = 1.0;     // --time-scale: simulated fleets only
  bool json = false;           // --output json: events as JSON lines on stdout
  bool quiet = false;
  bool no_progress = false;  // --no-progress: plain lines even on a terminal
};

state::LeaseOwner this_process();
std::string current_user();

// "last" is the most recent run; otherwise the id as given, which must exist.
std::optional<state::RunRecord> find_run(state::StateStore& store, const std::string& id);

// Takes the run's lease, or says who holds it and returns false.
bool take_lease(state::StateStore& store, const std::string& run_id);

// Runs (or resumes) `run` until it ends for now; returns the exit code.
int drive_run(state::StateStore& store, const state::RunRecord& run, const ApiOptions& api);

int exit_code(engine::Ending ending);

}  // namespace rollout::cli
