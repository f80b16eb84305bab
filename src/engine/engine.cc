// The facade and the main loop: it carries out what the start planner (start_planner.h)
// decides may start now, and sees when the run is over for now. The jobs a stage goes through live
// beside it (engine_impl.h says where).
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
  // The start planner decides; this carries out what it says. Approved inconclusive gates
  // pass first, and it is asked again: their dependents may start in this same turn, as may
  // those of a stage that passed as it started (nothing left to update).
  StartPlan starts;
  for (;;) {
    frontier->prune();
    const std::size_t passed_before = frontier->passed_count();
    std::vector<state::Approval> approvals;
    starts = plan_starts(start_input(approvals));
    if (starts.passes()) {
      for (const StartDecision& d : starts.decisions) {
        if (d.step != StartStep::pass) continue;
        event(stages[d.id].record.name, EventKind::approved,
              "inconclusive gate approved by a person: the stage passes");
        set_stage(stages[d.id], StageStatus::passed, "approved after an inconclusive gate");
      }
      continue;
    }
    for (const StartDecision& d : starts.decisions) carry_out(d);
    if (frontier->passed_count() == passed_before) break;
  }
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
    if (!starts.waiting_on_people) {
      finish({Ending::failed, "no stage can make progress"});
      return;
    }
    std::string list;
    for (const StartDecision& d : starts.decisions) {
      const char* why = d.hold == Hold::approval            ? " (approval)"
                        : d.hold == Hold::inconclusive_gate ? " (inconclusive gate)"
                                                            : nullptr;
      if (why) list += (list.empty() ? "" : ", ") + stages[d.id].record.name + why;
    }
    finish({Ending::paused, fmt::format("waiting for {}", list)});
    return;
  }
  if (starts.waiting_on_people) {
    // Others are still working: look for approvals given from another terminal.
    approval_timer.cancel();
    approval_timer =
        clock.schedule(options.approval_check, [self = shared_from_this()] { self->post_step(); });
  }
}

StartInput Engine::Impl::start_input(std::vector<state::Approval>& approvals) {
  StartInput in;
  in.now = clock.now();
  in.max_parallel = max_parallel();
  in.run_paused = pause.has_value();
  bool approvals_needed = false;
  frontier->visit([&](dag::StageId id) {
    const StageRun& s = stages[id];
    const StageStatus status = s.record.status;
    const bool needs_met = frontier->needs_met(id);
    // The run's approvals are read once per turn, and only when a stage could use one.
    approvals_needed =
        approvals_needed || status == StageStatus::paused ||
        (needs_met && spec(s).approval_required &&
         (status == StageStatus::waiting || status == StageStatus::awaiting_approval));
    in.in_play.push_back({id, &spec(s), &s.record, needs_met, s.window_wait});
  });
  if (approvals_needed) approvals = store.load_approvals(run_id);
  in.approvals = approvals;
  return in;
}

void Engine::Impl::carry_out(const StartDecision& d) {
  StageRun& s = stages[d.id];
  if (d.approval && s.record.status == StageStatus::awaiting_approval && !s.approval_told) {
    // Approved from another process: said in this one's log (the approving process
    // recorded the event), before the stage goes on.
    s.approval_told = true;
    notify([this, e = state::Event{
                      0, run_id, clock.now(), s.record.name, EventKind::approved,
                      fmt::format("approved by {}{}", d.approval->by,
                                  d.approval->comment.empty() ? "" : ": " + d.approval->comment)}] {
      observer.on_event(e);
    });
  }
  switch (d.step) {
    case StartStep::none:
    case StartStep::pass:  // carried out before the others (step)
      return;
    case StartStep::start:
      start_stage(s);
      return;
    case StartStep::ask_approval:
      set_stage(s, StageStatus::awaiting_approval);
      // Outside its windows (or in a freeze) now: once approved, it waits for them too.
      event(s.record.name, EventKind::approval_needed,
            fmt::format("waiting for approval: rollout approve {} {}{}", run_id, s.record.name,
                        d.then.empty() ? "" : "; once approved, it still waits (" + d.then + ")"));
      return;
    case StartStep::no_window:
      stage_error(s, "no maintenance window opens within a year outside the freezes");
      return;
    case StartStep::wait_window:
      wait_for_window(s, *d.until);
      return;
  }
}

// Ready, but outside its maintenance windows or in a freeze: the stage stays waiting, says
// why (once per change), and a timer wakes the run when it may dispatch. A stage already
// dispatched is never cut off by a window closing: only dispatch waits.
void Engine::Impl::wait_for_window(StageRun& s, WallTime until) {
  const WallTime now = clock.now();
  const std::string why = "waiting: " + plan::why_waiting(spec(s), now);
  if (s.record.reason != why) {
    s.record.reason = why;
    save_stage(s);
    event(s.record.name, EventKind::window_wait, why);
  }
  s.window_wait = true;
  const dag::StageId id = s.id;
  s.timer = clock.schedule(std::max(std::chrono::duration_cast<Millis>(until - now), Millis{1}),
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
