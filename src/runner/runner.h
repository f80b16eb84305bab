// Running a run: one process's turn at it, from opening its API connection to the engine's
// end for now (completed, stopped, paused, interrupted, failed). `apply`, `resume`, `retry`
// and `abort --rollback` all run a run this way; what a person sees of it is the caller's
// Observer (the CLI's console), and what it means for an exit code is the caller's too.
#pragma once

#include <memory>
#include <string>

#include "dag/graph.h"
#include "engine/engine.h"
#include "plan/model.h"
#include "runner/connection.h"
#include "state/store.h"
#include "util/asio.h"
#include "util/clock.h"

namespace rollout::runner {

// The crash points named in ROLLOUT_TEST_CRASH_AT (point[:n]: SIGKILL the n-th time the engine
// reaches it; for the kill-and-resume tests): RunError when it names none. Checked before a
// command writes anything.
void check_test_hooks();

class Runner {
 public:
  // Opens the run's connection (RunError when it cannot: nothing was sent, and the run's
  // lease, which the caller took, is given back for the next process at once). `state`: the
  // state's path or URL (a simulated run keeps its fleet beside it). `api`: as given by the
  // person; the run's own records fill in the rest (run_api_options).
  Runner(state::StateStore& store, const std::string& state, const state::RunRecord& run,
         const plan::Plan& plan, const dag::Graph& graph, const ApiOptions& api);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // The loop and the clock the run lives on, for the caller's output to live on too.
  asio::io_context& io();
  const Clock& clock() const;

  // Drives the run until it ends for now. `resumed`: the run had gone some way already (its
  // webhooks say so). The API's retries reach `output` as api_retry events (not recorded: a
  // storm of 429s would fill the state with them). SIGINT or SIGTERM stops it as a person
  // would (calls in flight record their outcome); a second one ends the process at once
  // (exit 130; every write so far is a committed transaction). Webhook deliveries still under
  // way get a few seconds after the end, then are recorded as abandoned.
  // Throws what stopped it: state::LeaseLost (another process runs it now: not one more
  // write), or any other error once the run is recorded as failed and resumable where the
  // store still takes a write.
  engine::Outcome run(engine::Observer& output, bool resumed);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rollout::runner
