#include "engine/rollback.h"

#include <algorithm>

#include <fmt/format.h>

#include "engine/engine_impl.h"
#include "engine/markers.h"

namespace rollout::engine {

namespace {

bool selects_by_state(const upswift::DeployRequest& r) {
  return std::any_of(r.filters.begin(), r.filters.end(), [](const upswift::Filter& f) {
    return f.type == upswift::FilterType::update_status ||
           f.type == upswift::FilterType::device_state;
  });
}

}  // namespace

std::vector<state::SnapshotDevice> rollback_targets(
    const std::vector<state::SnapshotDevice>& snapshot,
    const std::vector<state::DeviceStatus>& reached) {
  std::vector<state::SnapshotDevice> affected;
  for (std::size_t i = 0; i < reached.size() && i < snapshot.size(); ++i) {
    if (arrived(reached[i]) && reached[i] != state::DeviceStatus::aborted)
      affected.push_back(snapshot[i]);
  }
  return affected;
}

std::vector<upswift::DeployRequest> rollback_requests(
    const plan::Plan& plan, const plan::Stage& stage, const std::string& run_id,
    std::size_t snapshot_size, const std::vector<state::SnapshotDevice>& targets) {
  const plan::Rollback& rb = *plan.on_failure.rollback;
  upswift::DeployRequest base;
  base.flow_id = rb.flow_id;
  base.project = stage.project;
  base.app = rb.app;
  base.comment =
      with_marker(rb.comment ? rb.comment
                             : std::optional<std::string>(fmt::format("rollback of {}", plan.name)),
                  rollback_marker(run_id, stage.name));
  std::vector<upswift::DeployRequest> out;
  const upswift::DeployRequest stage_request = stage.deploy_request();
  if (!targets.empty() && targets.size() == snapshot_size && !selects_by_state(stage_request) &&
      !stage.sample) {
    upswift::DeployRequest whole = base;
    whole.groups = stage_request.groups;
    whole.filters = stage_request.filters;
    out.push_back(std::move(whole));
    return out;
  }
  for (const state::SnapshotDevice& d : targets) {
    upswift::DeployRequest one = base;
    one.filters = {{upswift::FilterType::specific_device, upswift::Operand::is, d.uuid}};
    out.push_back(std::move(one));
  }
  return out;
}

std::vector<std::string> named_devices(const upswift::DeployRequest& request) {
  std::vector<std::string> out;
  for (const auto& f : request.filters) {
    if (f.type == upswift::FilterType::specific_device) out.push_back(f.value);
  }
  return out;
}

// Sends the rollback flow to the stage's devices that got the new version or failed. The
// targets are recorded first, so a resumed rollback sends exactly the calls still missing.
void Engine::Impl::rollback(StageRun& s) {
  if (!plan.on_failure.rollback || s.rollback_started) return;
  s.rollback_started = true;
  if (s.record.status != StageStatus::rolling_back) {
    set_status(s, StageStatus::rolling_back);
    save_stage(s);
  }
  event(s.record.name, "rollback", "rolling back every device the stage's update reached");
  if (auto targets = store.load_snapshot(run_id, rollback_key(s.record.name))) {
    plan_rollback(s, *targets);
    return send_rollback_calls(s);
  }
  const dag::StageId id = s.id;
  engine::read_reached(
      api, spec(s).deploy_request(), *s.snapshot, dispatch_marker(run_id, s.record.name),
      guarded([this, id](upswift::Result<std::vector<Reached>> r) {
        StageRun& st = stages[id];
        if (!r.ok()) {
          event(st.record.name, "error",
                "rollback: could not read the stage's devices: " + r.error.message);
          if (interrupted) return;  // a signal: the rollback goes on at resume
          stopping = Outcome{Ending::failed,
                             fmt::format("rollback of stage {} could not read its devices ({}); "
                                         "continue with rollout resume {}",
                                         st.record.name, r.error.message, run_id)};
          return;
        }
        const auto targets = rollback_targets(*st.snapshot, *r.value);
        pending.snapshots.push_back({rollback_key(st.record.name), &targets});
        flush();  // while `targets` lives
        plan_rollback(st, targets);
        send_rollback_calls(st);
      }));
}

void Engine::Impl::plan_rollback(StageRun& s, const std::vector<SnapshotDevice>& targets) {
  s.rollback_plan.emplace();
  for (auto& request : rollback_requests(plan, spec(s), run_id, s.snapshot->size(), targets)) {
    std::string body = upswift::deploy_update_body(request, upswift::kRedactedToken);
    s.rollback_plan->push_back({std::move(request), std::move(body)});
  }
  s.rollback_targets = targets.size();
  s.rollback_next = 0;
}

// One call at a time, in order; an unknown outcome is settled before the next is sent.
void Engine::Impl::send_rollback_calls(StageRun& s) {
  CallLedger& calls = ledger(s, CallKind::rollback);
  for (; s.rollback_next < s.rollback_plan->size(); ++s.rollback_next) {
    const Planned& planned = (*s.rollback_plan)[s.rollback_next];
    const Move move = next_move(calls.tries(planned.body), own_calls, 0);
    switch (move.what) {
      case Move::done:
        continue;
      case Move::settle:
        if (interrupted) return;  // a signal: settled at resume
        return settle(s, *move.call, {{move.call->id, named_devices(planned.request)}},
                      "rollback deploy_update");
      case Move::refused:
      case Move::gave_up:
        stopping = Outcome{Ending::failed,
                           fmt::format("rollback of stage {} failed: {}; continue with rollout "
                                       "resume {}",
                                       s.record.name, move.call->message, run_id)};
        return;
      case Move::send:
        if (interrupted) return;  // a signal: the resume sends what is left
        return send_one_rollback(s, planned);
    }
  }
  set_status(s, StageStatus::rolled_back);
  s.record.reason = fmt::format("{}{}rolled back {} device(s)", s.record.reason,
                                s.record.reason.empty() ? "" : "; ", s.rollback_targets);
  s.record.finished_at = clock.now();
  save_stage(s);
  event(s.record.name, "rolled_back", s.record.reason);
  post_step();
}

void Engine::Impl::send_one_rollback(StageRun& s, const Planned& planned) {
  const bool one_device = named_devices(planned.request).size() == 1;
  const std::int64_t call_id =
      write_intents(s, {intent(s, CallKind::rollback, planned.body,
                               one_device ? 1 : static_cast<std::int64_t>(s.snapshot->size()))})
          .front();
  const dag::StageId id = s.id;
  awaited.insert(call_id);
  api.deploy_update(
      planned.request, guarded([this, id, call_id](upswift::Result<upswift::Accepted> r) {
        awaited.erase(call_id);
        StageRun& st = stages[id];
        const CallOutcome outcome =
            r.ok()                                                   ? CallOutcome::accepted
            : r.error.status == upswift::CallStatus::refused         ? CallOutcome::refused
            : r.error.status == upswift::CallStatus::unknown_outcome ? CallOutcome::unknown
                                                                     : CallOutcome::failed;
        write_outcome(st, CallKind::rollback, call_id, outcome, r.error.http_status,
                      r.error.message);
        if (!r.ok() && r.error.status != upswift::CallStatus::unknown_outcome) {
          event(st.record.name, "error", "rollback deploy_update: " + r.error.message);
          stopping = Outcome{Ending::failed,
                             fmt::format("rollback of stage {} failed: {}; continue with rollout "
                                         "resume {}",
                                         st.record.name, r.error.message, run_id)};
          return;
        }
        send_rollback_calls(st);
      }));
}

bool Engine::Impl::rollback_under_way() const {
  return std::any_of(stages.begin(), stages.end(), [](const StageRun& s) {
    return s.record.status == StageStatus::rolling_back;
  });
}

}  // namespace rollout::engine
