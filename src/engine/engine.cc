// The facade and the main loop: which stages may start now (their needs passed, approved,
// inside their windows, a place free under max_parallel, no person's pause), and when the
// run is over for now. The jobs a stage goes through live beside it (engine_impl.h says where).
#include "engine/engine.h"

#include <algorithm>

#include <fmt/format.h>

#include "engine/engine_impl.h"
#include "engine/run.h"
#include "plan/calendar.h"
#include "util/time_text.h"

namespace rollout::engine {

std::string_view name(Ending e) {
  switch (e) {
    case Ending::completed:
      return "completed";
    case Ending::stopped:
      return "stopped";
    case Ending::paused:
      return "paused";
    case Ending::interrupted:
      return "interrupted";
    case Ending::failed:
      return "failed";
  }
  return "failed";
}

void Engine::Impl::post_step() {
  if (step_posted || finished) return;
  step_posted = true;
  asio::post(io, [self = shared_from_this()] {
    self->step_posted = false;
    self->step();
    if (!self->finished) self->flush();  // what this turn recorded, in one transaction
  });
}

int Engine::Impl::max_parallel() const {
  return plan.max_parallel ? *plan.max_parallel : static_cast<int>(plan.stages.size());
}

bool Engine::Impl::approved(const StageRecord& stage) {
  return approval_of(stage).has_value();
}

std::optional<state::Approval> Engine::Impl::approval_of(const StageRecord& stage) {
  for (const state::Approval& a : store.load_approvals(run_id)) {
    if (approval_counts(a, stage)) return a;
  }
  return std::nullopt;
}

void Engine::Impl::step() {
  if (finished) return;
  if (stopping) {
    for (StageRun& s : stages) {
      // A rollback and a settle run on, unless a signal came: the resume goes on with them.
      if (!interrupted && (s.record.status == StageStatus::rolling_back || s.settling)) continue;
      s.timer.cancel();
      s.settling = false;
    }
    wind_down();
    const bool winding = !interrupted && (rollback_under_way() || settle_under_way());
    if (in_flight == 0 && !winding) finish(*stopping);
    return;
  }
  frontier->prune();
  int active = 0;
  frontier->visit([&](dag::StageId id) { active += is_active(stages[id].record.status) ? 1 : 0; });
  bool waiting_on_people = false;
  // In graph order; a stage that passes on the way lets the stages after it in.
  frontier->visit([&](dag::StageId id) {
    StageRun& s = stages[id];
    const StageStatus status = s.record.status;
    if (status == StageStatus::paused) {
      // An inconclusive gate: a person's approval lets it pass.
      if (approved(s.record)) {
        event(s.record.name, "approved",
              "inconclusive gate approved by a person: the stage passes");
        set_stage(s, StageStatus::passed, "approved after an inconclusive gate");
      } else {
        waiting_on_people = true;
      }
      return;
    }
    if (status != StageStatus::waiting && status != StageStatus::awaiting_approval) return;
    if (!frontier->needs_met(id)) return;
    const auto approval =
        spec(s).approval_required ? approval_of(s.record) : std::optional<state::Approval>();
    if (approval && status == StageStatus::awaiting_approval && !s.approval_told) {
      // Approved from another process: said in this one's log (the approving process
      // recorded the event), before the stage goes on.
      s.approval_told = true;
      notify([this, e = state::Event{
                        0, run_id, clock.now(), s.record.name, "approved",
                        fmt::format("approved by {}{}", approval->by,
                                    approval->comment.empty() ? "" : ": " + approval->comment)}] {
        observer.on_event(e);
      });
    }
    if (spec(s).approval_required && !approval) {
      if (status != StageStatus::awaiting_approval) {
        set_stage(s, StageStatus::awaiting_approval);
        // Outside its windows (or in a freeze) now: once approved, it waits for them too.
        const WallTime now = clock.now();
        std::string then;
        if (!plan::may_dispatch(spec(s), now))
          then =
              fmt::format("; once approved, it still waits ({})", plan::why_waiting(spec(s), now));
        event(s.record.name, "approval_needed",
              fmt::format("waiting for approval: rollout approve {} {}{}", run_id, s.record.name,
                          then));
      }
      waiting_on_people = true;
      return;
    }
    if (pause) return;  // a person's pause: nothing new starts
    if (active >= max_parallel() || s.window_wait) return;
    if (!plan::may_dispatch(spec(s), clock.now())) {
      wait_for_window(s);
      return;
    }
    ++active;
    start_stage(s);
  });
  if (frontier->all_passed()) {
    finish({Ending::completed, "every stage passed"});
    return;
  }
  const bool work_left = in_flight > 0 || frontier->any_of([&](dag::StageId id) {
    return is_active(stages[id].record.status) || (stages[id].window_wait && !pause);
  });
  if (!work_left && pause) {
    finish(
        {Ending::paused, fmt::format("paused by {} at {}{}; rollout resume {} lets it go on",
                                     pause->by, local_time(pause->at),
                                     pause->comment.empty() ? "" : ": " + pause->comment, run_id)});
    return;
  }
  if (!work_left) {
    if (!waiting_on_people) {
      finish({Ending::failed, "no stage can make progress"});
      return;
    }
    std::string list;
    frontier->visit([&](dag::StageId id) {
      const StageRun& s = stages[id];
      const char* why = s.record.status == StageStatus::awaiting_approval ? " (approval)"
                        : s.record.status == StageStatus::paused          ? " (inconclusive gate)"
                                                                          : nullptr;
      if (why) list += (list.empty() ? "" : ", ") + s.record.name + why;
    });
    finish({Ending::paused, fmt::format("waiting for {}", list)});
    return;
  }
  if (waiting_on_people) {
    // Others are still working: look for approvals given from another terminal.
    approval_timer.cancel();
    approval_timer =
        clock.schedule(options.approval_check, [self = shared_from_this()] { self->post_step(); });
  }
}

// Ready, but outside its maintenance windows or in a freeze: the stage stays waiting, says
// why (once per change), and a timer wakes the run when it may dispatch. A stage already
// dispatched is never cut off by a window closing: only dispatch waits.
void Engine::Impl::wait_for_window(StageRun& s) {
  const WallTime now = clock.now();
  const auto next = plan::next_dispatch_time(spec(s), now);
  if (!next) {
    stage_error(s, "no maintenance window opens within a year outside the freezes");
    return;
  }
  const std::string why = "waiting: " + plan::why_waiting(spec(s), now);
  if (s.record.reason != why) {
    s.record.reason = why;
    save_stage(s);
    event(s.record.name, "window_wait", why);
  }
  s.window_wait = true;
  const dag::StageId id = s.id;
  s.timer = clock.schedule(std::max(std::chrono::duration_cast<Millis>(*next - now), Millis{1}),
                           [self = shared_from_this(), id] {
                             self->stages[id].window_wait = false;
                             self->post_step();
                           });
}

Engine::Engine(asio::io_context& io, const plan::Plan& plan, const dag::Graph& graph,
               upswift::FleetApi& api, state::StateStore& store, Clock& clock, Observer& observer,
               std::string run_id, EngineOptions options)
    : impl_(std::make_shared<Impl>(io, plan, graph, api, store, clock, observer, std::move(run_id),
                                   std::move(options))) {}

Engine::~Engine() {
  impl_->finished = true;
  impl_->heartbeat_timer.cancel();
  impl_->approval_timer.cancel();
  for (auto& s : impl_->stages) s.timer.cancel();
}

void Engine::start(std::function<void(Outcome)> done) {
  impl_->start(std::move(done));
}
void Engine::interrupt() {
  impl_->interrupt();
}
void Engine::wake() {
  if (impl_->finished) return;
  if (!impl_->stopping) {
    impl_->check_abort();
    impl_->check_pause();
  }
  impl_->post_step();
}
bool Engine::finished() const {
  return impl_->finished;
}

}  // namespace rollout::engine
