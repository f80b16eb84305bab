#include "rehearsal/rehearsal.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "engine/engine.h"
#include "engine/run.h"
#include "sim/virtual_api.h"
#include "store/sqlite_store.h"
#include "util/asio_clock.h"

namespace rollout::rehearsal {

namespace {

// Grants each approval the plan asks for, after the configured delay.
class Approver : public engine::Observer {
 public:
  Approver(state::StateStore& store, Clock& clock, Millis delay)
      : store_(store), clock_(clock), delay_(delay) {}

  void on_event(const state::Event& e) override {
    // Only approvals the plan asks for: an inconclusive gate's pause is a prediction to report.
    if (e.kind != state::EventKind::approval_needed) return;
    const std::string stage = e.stage;
    const std::string run = e.run_id;
    ++pending_;
    timers_.push_back(clock_.schedule(delay_, [this, run, stage] {
      store_.add_approval({run, stage, "rehearsal", clock_.now(), "approved by the rehearsal"});
      --pending_;
    }));
  }

  // Approvals asked for and not given yet: a run paused for them goes on once they are.
  int pending() const { return pending_; }

 private:
  int pending_ = 0;
  state::StateStore& store_;
  Clock& clock_;
  Millis delay_;
  std::vector<TimerHandle> timers_;
};

std::optional<Millis> since(WallTime start, const std::optional<WallTime>& t) {
  if (!t) return std::nullopt;
  return std::chrono::duration_cast<Millis>(*t - start);
}

}  // namespace

Result rehearse(const plan::Plan& plan, const dag::Graph& graph, sim::FleetSpec spec,
                std::uint64_t seed, const Options& options) {
  spec.seed = seed;
  asio::io_context io;
  ManualClock clock(io, options.start);
  sim::Fleet fleet(spec, std::chrono::duration_cast<sim::Millis>(options.start.time_since_epoch()));
  sim::VirtualApi api(io, fleet, clock);
  store::SqliteStore store(":memory:");
  const std::string run_id = "rehearsal";
  engine::create_run(store, plan, {"rehearsal", "", "rehearsal", "rehearsal", "rehearsal"}, run_id,
                     options.start);
  engine::EngineOptions engine_options;
  engine_options.owner = {"rehearsal", 0, "rehearsal"};
  engine_options.wall_clock = [&clock] { return clock.now(); };
  Approver approver(store, clock, options.approval_delay);
  std::optional<engine::Outcome> outcome;
  // A stuck plan would spin on its heartbeat forever: a year of virtual time ends it.
  const WallTime deadline = options.start + std::chrono::hours(24 * 365);
  for (;;) {
    store.acquire_lease(run_id, engine_options.owner, clock.now(), Millis{30000});
    outcome.reset();
    {
      engine::Engine engine(io, plan, graph, api, store, clock, approver, run_id, engine_options);
      engine.start([&](engine::Outcome o) { outcome = std::move(o); });
      run_on_manual_clock(io, clock, [&] { return outcome.has_value() || clock.now() > deadline; });
    }
    // Paused for an approval that a person gives later: the process ended (exit 4), the
    // person approves, and `rollout resume` goes on, as here.
    if (!outcome || outcome->ending != engine::Ending::paused || approver.pending() == 0) break;
    run_on_manual_clock(io, clock,
                        [&] { return approver.pending() == 0 || clock.now() > deadline; });
    if (clock.now() > deadline) break;
  }

  Result r;
  r.seed = seed;
  r.ending = outcome ? outcome->ending : engine::Ending::failed;
  r.reason = outcome ? outcome->reason : "the rehearsal ran for a year of virtual time";
  r.duration = std::chrono::duration_cast<Millis>(clock.now() - options.start);
  r.deploy_calls = api.deploy_calls;
  r.details_calls = api.details_calls;
  r.state_calls = api.state_calls;
  const auto calls = store.load_calls(run_id);
  const auto events = store.load_events(run_id);
  for (const auto& s : store.load_stages(run_id)) {
    StageResult sr;
    sr.name = s.name;
    sr.status = s.status;
    sr.reason = s.reason;
    sr.started = since(options.start, s.started_at);
    sr.dispatched = since(options.start, s.dispatched_at);
    sr.finished = since(options.start, s.finished_at);
    if (auto snapshot = store.load_snapshot(run_id, s.name))
      sr.devices = static_cast<std::int64_t>(snapshot->size());
    for (const auto& c : calls) sr.deploy_calls += c.stage == s.name ? 1 : 0;
    sr.failed_itself = std::any_of(events.begin(), events.end(), [&](const state::Event& e) {
      return e.stage == s.name && e.kind == state::EventKind::stage_failed;
    });
    r.stages.push_back(std::move(sr));
  }
  return r;
}

std::vector<Result> rehearse_many(const plan::Plan& plan, const dag::Graph& graph,
                                  const sim::FleetSpec& fleet, std::uint64_t first_seed, int runs,
                                  const Options& options, unsigned threads,
                                  const std::function<void(const Result&)>& each) {
  const auto n = static_cast<std::size_t>(std::max(runs, 0));
  std::vector<std::optional<Result>> done(n);
  std::exception_ptr failure;
  std::mutex mutex;
  std::condition_variable changed;
  std::size_t next = 0;  // the next rehearsal to start
  auto work = [&] {
    for (;;) {
      std::size_t i = 0;
      {
        std::lock_guard lock(mutex);
        if (next >= n || failure) return;
        i = next++;
      }
      std::optional<Result> r;
      std::exception_ptr error;
      try {
        r = rehearse(plan, graph, fleet, first_seed + i, options);
      } catch (...) {
        error = std::current_exception();
      }
      {
        std::lock_guard lock(mutex);
        done[i] = std::move(r);
        if (error && !failure) failure = error;
      }
      changed.notify_all();
    }
  };
  std::vector<std::thread> workers;
  const std::size_t count = std::min<std::size_t>(std::max(threads, 1u), n);
  for (std::size_t k = 0; k < count; ++k) workers.emplace_back(work);
  // This thread reports, in seed order.
  std::vector<Result> results;
  {
    std::unique_lock lock(mutex);
    while (results.size() < n) {
      changed.wait(lock, [&] { return failure || done[results.size()].has_value(); });
      if (failure) break;
      Result r = std::move(*done[results.size()]);
      lock.unlock();
      std::exception_ptr error;
      try {
        if (each) each(r);
      } catch (...) {  // the workers stop before it goes on
        error = std::current_exception();
      }
      lock.lock();
      if (error) {
        failure = error;
        break;
      }
      results.push_back(std::move(r));
    }
  }
  for (std::thread& t : workers) t.join();
  if (failure) std::rethrow_exception(failure);
  return results;
}

}  // namespace rollout::rehearsal
