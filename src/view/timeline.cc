#include "view/timeline.h"

#include <algorithm>
#include <optional>

namespace rollout::view {

namespace {

// The first event of `kind` for `stage` at or after `after`.
std::optional<WallTime> first_event(const ReportInput& in, const std::string& stage,
                                    state::EventKind kind, WallTime after) {
  for (const auto& e : in.events) {
    if (e.stage == stage && e.kind == kind && e.at >= after) return e.at;
  }
  return std::nullopt;
}

}  // namespace

WallTime report_end(const ReportInput& in) {
  if (in.run.finished_at) return *in.run.finished_at;
  WallTime end = std::max(in.run.updated_at, in.run.created_at);
  for (const auto& e : in.events) end = std::max(end, e.at);
  for (const auto& o : in.observations) end = std::max(end, o.at);
  return end;
}

std::vector<Segment> timeline_segments(const ReportInput& in, WallTime end) {
  std::vector<Segment> out;
  auto add = [&](const std::string& stage, const char* kind, WallTime from, WallTime to) {
    if (to > from) out.push_back({stage, kind, from, to});
  };
  for (const auto& st : in.stages) {
    const std::string& name = st.name;
    const WallTime stage_end = st.finished_at.value_or(end);
    for (const auto& e : in.events) {
      if (e.stage != name) continue;
      if (e.kind == state::EventKind::approval_needed) {
        WallTime to = first_event(in, name, state::EventKind::approved, e.at)
                          .value_or(st.started_at.value_or(end));
        add(name, "approval", e.at, std::max(to, e.at));
      } else if (e.kind == state::EventKind::stage_paused) {
        add(name, "paused", e.at,
            first_event(in, name, state::EventKind::approved, e.at).value_or(end));
      } else if (e.kind == state::EventKind::rollback) {
        // Until its check concluded, either way.
        const auto back = first_event(in, name, state::EventKind::rolled_back, e.at);
        const auto failed = first_event(in, name, state::EventKind::rollback_failed, e.at);
        const auto to = back && failed ? std::min(*back, *failed) : back ? back : failed;
        add(name, "rollback", e.at, to.value_or(end));
      }
    }
    if (!st.started_at) continue;
    const WallTime dispatched = st.dispatched_at.value_or(stage_end);
    add(name, "dispatch", *st.started_at, dispatched);
    if (!st.dispatched_at) continue;
    // The gate ran until its verdict: a pause or rollback ends it before the stage does.
    WallTime gate_end = stage_end;
    using state::EventKind;
    for (EventKind kind : {EventKind::stage_paused, EventKind::stage_failed,
                           EventKind::stage_passed, EventKind::rollback}) {
      if (auto at = first_event(in, name, kind, dispatched)) gate_end = std::min(gate_end, *at);
    }
    Seconds bake{0};
    if (in.plan) {
      for (const auto& spec : in.plan->stages) {
        if (spec.name == name) bake = spec.gate.bake;
      }
    }
    const WallTime bake_end = std::min(dispatched + bake, gate_end);
    add(name, "bake", dispatched, bake_end);
    add(name, "gate", bake_end, gate_end);
  }
  return out;
}

}  // namespace rollout::view
