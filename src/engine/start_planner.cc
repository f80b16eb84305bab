#include "engine/start_planner.h"

#include <algorithm>

#include <fmt/format.h>

#include "plan/calendar.h"

namespace rollout::engine {

using state::StageStatus;

bool approval_counts(const state::Approval& a, const state::StageRecord& stage) {
  if (a.stage != stage.name) return false;
  if (stage.status != StageStatus::paused) return true;
  const auto paused_at = stage.finished_at ? stage.finished_at : stage.dispatched_at;
  return !paused_at || a.at >= *paused_at;
}

bool StartPlan::passes() const {
  return std::any_of(decisions.begin(), decisions.end(),
                     [](const StartDecision& d) { return d.step == StartStep::pass; });
}

namespace {

std::optional<state::Approval> approval_for(std::span<const state::Approval> approvals,
                                            const state::StageRecord& stage) {
  for (const state::Approval& a : approvals)
    if (approval_counts(a, stage)) return a;
  return std::nullopt;
}

// One stage's decision. The order of the checks is the order of what holds a stage: its
// needs, people, the run's pause, a place under max_parallel, its window.
StartDecision decide(const StageInPlay& s, const StartInput& in, int active) {
  StartDecision d;
  d.id = s.id;
  const StageStatus status = s.record->status;
  const plan::Stage& spec = *s.spec;
  if (status == StageStatus::paused) {
    d.approval = approval_for(in.approvals, *s.record);
    d.step = d.approval ? StartStep::pass : StartStep::none;
    d.hold = d.approval ? Hold::none : Hold::inconclusive_gate;
    return d;
  }
  if (status != StageStatus::waiting && status != StageStatus::awaiting_approval) return d;
  if (!s.needs_met) {
    d.hold = Hold::needs;
    return d;
  }
  if (spec.approval_required) {
    d.approval = approval_for(in.approvals, *s.record);
    if (!d.approval) {
      d.hold = Hold::approval;
      if (status != StageStatus::awaiting_approval) {
        d.step = StartStep::ask_approval;
        d.then = plan::why_waiting(spec, in.now);
      }
      return d;
    }
  }
  if (in.run_paused) {
    d.hold = Hold::run_paused;
  } else if (active >= in.max_parallel) {
    d.hold = Hold::max_parallel;
  } else if (s.window_timer) {
    d.hold = Hold::window;  // its timer wakes the run when it may
  } else if (!plan::may_dispatch(spec, in.now)) {
    d.until = plan::next_dispatch_time(spec, in.now);
    d.hold = d.until ? Hold::window : Hold::no_window;
    d.step = d.until ? StartStep::wait_window : StartStep::no_window;
  } else {
    d.step = StartStep::start;
  }
  return d;
}

}  // namespace

StartPlan plan_starts(const StartInput& in) {
  StartPlan out;
  for (const StageInPlay& s : in.in_play) out.active += state::is_active(s.record->status) ? 1 : 0;
  out.decisions.reserve(in.in_play.size());
  for (const StageInPlay& s : in.in_play) {
    StartDecision d = decide(s, in, out.active);
    if (d.step == StartStep::start) ++out.active;
    if (d.hold == Hold::approval || d.hold == Hold::inconclusive_gate) out.waiting_on_people = true;
    out.decisions.push_back(std::move(d));
  }
  return out;
}

std::string describe_hold(const StartDecision& d, const plan::Stage& spec,
                          const std::string& run_id, int max_parallel, WallTime now) {
  switch (d.hold) {
    case Hold::none:
    case Hold::needs:
      return {};
    case Hold::approval:
      return fmt::format("approval: rollout approve {} {}", run_id, spec.name);
    case Hold::inconclusive_gate:
      return fmt::format("a person: gate inconclusive, rollout approve {} {} lets it pass", run_id,
                         spec.name);
    case Hold::run_paused:
      return fmt::format("the run's pause: rollout resume {} lifts it", run_id);
    case Hold::max_parallel:
      return fmt::format("a free slot (max_parallel {})", max_parallel);
    case Hold::window:
      return plan::why_waiting(spec, now);
    case Hold::no_window:
      return "a maintenance window: none opens within a year outside the freezes";
  }
  return {};
}

}  // namespace rollout::engine
