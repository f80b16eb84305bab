// The engine: runs one rollout over the plan's DAG. Stages whose needs have passed start
// (up to max_parallel); each lists and records its devices, sends its one deploy_update
// (intent written first, outcome after), then its gate polls those devices until it
// passes, fails or times out. Everything runs on one io_context; waits are Clock timers.
//
// The engine sees only interfaces: FleetApi (Upswift), StateStore (SQLite), Clock, and an
// Observer for tracing. The same code path starts a new run and resumes an old one: all
// it knows of a run it reads from the store.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "dag/graph.h"
#include "engine/markers.h"
#include "plan/model.h"
#include "state/store.h"
#include "upswift/fleet_api.h"
#include "util/asio.h"
#include "util/clock.h"

namespace rollout::engine {

// How a run ended (for now): the CLI maps it to an exit code.
enum class Ending {
  completed,    // every stage passed
  stopped,      // a gate failed (on_failure ran) or the run was aborted
  paused,       // waiting for an approval or an inconclusive gate; resumable
  interrupted,  // a signal; resumable
  failed,       // an error a person must look at (Upswift refused a call, API unreachable)
};
std::string_view name(Ending e);

struct Outcome {
  Ending ending = Ending::completed;
  std::string reason;
  // What a person does next, when it is not `rollout resume` (a failed rollback: its retry).
  std::string next{};
};

class Observer {
 public:
  virtual ~Observer() = default;
  virtual void on_event(const state::Event& event) = 0;
  virtual void on_observation(const state::Observation&) {}
  // After every change of a stage's record (status, times), once it is in the store; `at`:
  // when the change was made.
  virtual void on_stage(const state::StageRecord&, WallTime /*at*/) {}
  // Once a stage's devices are listed and recorded.
  virtual void on_snapshot(const std::string& /*stage*/, std::size_t /*devices*/) {}
  // When the run ends for now (after its run_... event), with its status and why.
  virtual void on_run(state::RunStatus, const std::string& /*reason*/, WallTime /*at*/) {}
};

struct EngineOptions {
  // An unknown dispatch is settled by reading the devices this long after the call, when
  // any request still in flight at Upswift has long finished.
  Millis settle_delay{60000};
  Millis heartbeat{5000};
  Millis approval_check{5000};
  int max_dispatch_attempts = 3;
  // Per-device dispatch (a sample, a retry): how many calls' intents are committed together
  // before they are sent. A crash leaves at most this many to settle.
  std::size_t dispatch_batch = 50;
  state::LeaseOwner owner;
  // Lease heartbeats are in real wall time, whatever the engine's clock (which a
  // simulation may run faster), so other processes can judge them.
  std::function<WallTime()> wall_clock = [] { return std::chrono::system_clock::now(); };
  // Test hook: called at named points ("after_intent", "after_answer", ...), where the
  // kill-and-resume tests deliver SIGKILL.
  std::function<void(std::string_view point)> crash_point;
};

class Engine {
 public:
  Engine(asio::io_context& io, const plan::Plan& plan, const dag::Graph& graph,
         upswift::FleetApi& api, state::StateStore& store, Clock& clock, Observer& observer,
         std::string run_id, EngineOptions options);
  ~Engine();

  // Starts (or resumes) the run whose records are in the store; `done` runs once, on the
  // io_context, when the run ends for now.
  void start(std::function<void(Outcome)> done);

  // SIGINT/SIGTERM: start nothing new, let calls in flight record their outcome, end
  // with `interrupted`.
  void interrupt();

  // News from another process (an approval, an abort request; state::StateStore::news_fd):
  // looks now instead of at the next approval check or heartbeat.
  void wake();

  bool finished() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace rollout::engine
