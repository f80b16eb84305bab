// How a run that must stop ends. Nothing ends with an outcome unknown: a deploy_update whose
// answer was lost is settled (its update looked for on the devices) before the run ends, and
// a stage it turns out to have reached counts as dispatched. When the run stops with a
// rollback (a failed stage's on_failure, `abort --rollback`), every stage cut off in flight
// (dispatched, its gate not passed) is rolled back with the failed one, and so is every step
// of a ramp whose step failed, those that passed too. Where a settle cannot
// be done (a signal, the API down), the run ends resumable, never terminal.
#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "engine/engine_impl.h"

namespace rollout::engine {

std::vector<Engine::Impl::Unsettled> Engine::Impl::unknown_dispatches(StageRun& s,
                                                                      const ApiCall*& latest) {
  latest = nullptr;
  std::vector<Unsettled> unknown;
  CallLedger& calls = ledger(s, CallKind::dispatch);
  const auto note = [&](const Move& move, std::vector<std::string> devices) {
    if (move.what != Move::settle || awaited.count(move.call->id)) return;
    unknown.push_back({move.call->id, std::move(devices)});
    if (!latest || move.call->intent_at > latest->intent_at) latest = move.call;
  };
  if (!spec(s).sample && !s.retry_targets) {
    note(next_move(calls.all(), own_calls, options.max_dispatch_attempts), {});
    return unknown;
  }
  const std::vector<SnapshotDevice>& devices = s.retry_targets ? *s.retry_targets : *s.snapshot;
  for (std::size_t i = s.next_device; i < devices.size(); ++i) {
    const std::string body =
        upswift::deploy_update_body(device_request(s, devices[i]), upswift::kRedactedToken);
    const auto tries = calls.tries(body);
    if (tries.empty()) continue;
    note(next_move(tries, own_calls, options.max_dispatch_attempts), {devices[i].uuid});
  }
  return unknown;
}

bool Engine::Impl::settle_before_end(StageRun& s) {
  if (s.settle_failed || s.dispatches_known) return false;
  const ApiCall* latest = nullptr;
  std::vector<Unsettled> unknown = unknown_dispatches(s, latest);
  if (unknown.empty()) {
    // Known for good only once no answer of the stage's is still to come.
    const auto calls = ledger(s, CallKind::dispatch).all();
    s.dispatches_known = std::none_of(calls.begin(), calls.end(),
                                      [&](const ApiCall* c) { return awaited.count(c->id) > 0; });
    return false;
  }
  const std::string what = settle_what(unknown);
  settle(s, *latest, std::move(unknown), what);
  return true;
}

std::optional<WallTime> Engine::Impl::first_through(StageRun& s) {
  std::optional<WallTime> first;
  for (const ApiCall* call : ledger(s, CallKind::dispatch).all()) {
    if (call->outcome != CallOutcome::accepted && call->outcome != CallOutcome::settled_applied)
      continue;
    const WallTime at = through_at(*call);
    first = first ? std::min(*first, at) : at;
  }
  return first;
}

void Engine::Impl::wind_down() {
  if (interrupted) return;  // settled, and rolled back, by the resume
  for (StageRun& s : stages) {
    const StageStatus status = s.record.status;
    if (s.settling || s.rollback_started || !s.snapshot) continue;
    // A passed stage rolls back with a ramp of its that failed, and with a failure whose
    // scope is the run.
    if (status == StageStatus::passed && s.record.dispatched_at && spec(s).on_failure.rollback) {
      const bool ramp = spec(s).ramp && failed_ramps.count(spec(s).ramp->stage);
      if (ramp || roll_back_run) {
        set_stage(s, StageStatus::rolling_back,
                  fmt::format("{}; rolling back with {}: {}", s.record.reason,
                              ramp ? "its ramp" : "the run", stopping->reason));
        rollback(s);
        continue;
      }
    }
    // `stopped`: a run that an older version ended with an outcome unknown, resumed to repair.
    if (status != StageStatus::dispatching && status != StageStatus::gating &&
        status != StageStatus::stopped)
      continue;
    if (s.sends_in_flight > 0 || !s.queued.empty()) continue;  // its answers first
    if (settle_before_end(s)) continue;
    if (status != StageStatus::gating) {
      const auto through = first_through(s);
      if (!through) continue;  // nothing of it reached a device
      if (!s.record.dispatched_at) {
        s.record.dispatched_at = *through;
        save_stage(s);
      }
      if (!s.seen && !s.looked) {
        if (!s.looking) last_look(s);
        continue;
      }
    }
    if (!roll_back_in_flight || !spec(s).on_failure.rollback) continue;
    s.timer.cancel();  // its gate's next poll
    set_stage(s, StageStatus::rolling_back,
              fmt::format("cut off before its gate passed: {}", stopping->reason));
    rollback(s);
  }
}

void Engine::Impl::last_look(StageRun& s) {
  s.looking = true;
  const dag::StageId id = s.id;
  engine::read_readings(
      api, spec(s).deploy_request(), *s.snapshot, dispatch_marker(run_id, s.record.name),
      guarded([this, id](upswift::Result<std::vector<Reading>> r) {
        StageRun& st = stages[id];
        st.looked = true;
        if (!r.ok()) {
          event(st.record.name, EventKind::error,
                "could not read the devices of the stage as the run stopped: " + r.error.message);
          return;
        }
        const WallTime now = clock.now();
        const std::vector<std::size_t> changed = note_devices(st, *r.value, now);
        const StatusCounts counts = tally(*r.value);
        st.counts = counts;
        observe(st, now, since(now, *st.record.dispatched_at), counts,
                {Verdict::wait, "read as the run stopped, before its gate could judge it"},
                changed);
      }));
}

bool Engine::Impl::settle_under_way() const {
  return std::any_of(stages.begin(), stages.end(), [](const StageRun& s) { return s.settling; });
}

std::optional<std::string> Engine::Impl::unsettled_calls() {
  std::vector<std::string> found;
  for (StageRun& s : stages) {
    if (s.record.status == StageStatus::waiting ||
        s.record.status == StageStatus::awaiting_approval)
      continue;
    for (const CallKind kind : {CallKind::dispatch, CallKind::rollback}) {
      const auto calls = ledger(s, kind).all();
      const auto n = std::count_if(calls.begin(), calls.end(),
                                   [](const ApiCall* c) { return state::unsettled(*c); });
      if (n == 0) continue;
      found.push_back(fmt::format("{} {} call(s) of stage {}", n,
                                  kind == CallKind::dispatch ? "deploy_update" : "rollback",
                                  s.record.name));
    }
  }
  if (found.empty()) return std::nullopt;
  return fmt::format("{}", fmt::join(found, ", "));
}

}  // namespace rollout::engine
