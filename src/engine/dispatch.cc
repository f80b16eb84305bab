// A stage's dispatch: its devices listed and recorded (the snapshot), then its
// deploy_update calls under the write-ahead protocol. Every call's intent is durable
// before its first byte is sent and its outcome is recorded when the answer comes; a call
// whose answer never came is settled by looking for its update on the devices before
// anything else is sent. What to do next is always decided from the stage's calls (its
// ledger, read once from the store and kept in step), so a resumed run and a running one
// take the same path.
#include <fmt/format.h>

#include "engine/engine_impl.h"
#include "util/safe_text.h"

namespace rollout::engine {

void Engine::Impl::start_stage(StageRun& s) {
  set_stage(s, StageStatus::dispatching);
  event(s.record.name, "stage_started",
        s.snapshot ? fmt::format("its {} device(s) were fixed beforehand", s.snapshot->size())
                   : "listing the stage's devices");
  resume_dispatch(s);
}

void Engine::Impl::take_snapshot(StageRun& s) {
  const dag::StageId id = s.id;
  resolve_selection(
      api, spec(s).deploy_request(), guarded([this, id](upswift::Result<Selection> chosen) {
        StageRun& stage = stages[id];
        if (!chosen.ok()) {
          event(stage.record.name, "error",
                "could not list the stage's devices: " + chosen.error.message);
          fail_run(fmt::format("stage {}: could not list its devices: {}", stage.record.name,
                               chosen.error.message));
          return;
        }
        std::vector<SnapshotDevice> devices = std::move(chosen.value->devices);
        if (nothing_left_to_update(spec(stage).deploy_request(), spec(stage).gate,
                                   static_cast<std::int64_t>(devices.size()),
                                   chosen.value->candidates)) {
          return skip_nothing_left(stage, chosen.value->candidates);
        }
        std::string how;
        if (const auto& sample = spec(stage).sample) {
          // Devices an earlier stage of this run targeted are not drawn again.
          std::set<std::string> taken;
          for (const StageRun& other : stages) {
            if (other.id == stage.id || !other.snapshot) continue;
            for (const auto& d : *other.snapshot) taken.insert(d.uuid);
          }
          const std::size_t found = devices.size();
          std::erase_if(devices, [&](const SnapshotDevice& d) { return taken.count(d.uuid) > 0; });
          const std::size_t left_out = found - devices.size();
          const std::size_t candidates = devices.size();
          devices = draw_sample(std::move(devices), *sample, run_id + "/" + stage.record.name);
          how = fmt::format(
              ", a sample of {} from {} candidate(s){}", plan::format_sample(*sample), candidates,
              left_out ? fmt::format(" ({} left out: earlier stages targeted them)", left_out)
                       : "");
        }
        store.save_snapshot(run_id, stage.record.name, devices);
        stage.snapshot = std::move(devices);
        event(stage.record.name, "snapshot",
              fmt::format("targets {} device(s){}", stage.snapshot->size(), how));
        observer.on_snapshot(stage.record.name, stage.snapshot->size());
        crash_point("after_snapshot");
        resume_dispatch(stage);
      }));
}

// A stage that updates only what is left (update_status or app filters) and finds every
// candidate done has nothing to do: it passes, skipped, with no snapshot and nothing sent.
// A selection that matches no device at all is not this: min_devices judges it.
void Engine::Impl::skip_nothing_left(StageRun& s, std::int64_t candidates) {
  const std::string why = fmt::format("{} (its filters leave none of its {} candidate(s))",
                                      state::kSkippedReason, candidates);
  event(s.record.name, "stage_passed", why);
  set_stage(s, StageStatus::passed, why);
}

CallLedger& Engine::Impl::ledger(StageRun& s, CallKind kind) {
  auto& ledger = kind == CallKind::dispatch ? s.dispatches : s.rollbacks;
  if (!ledger) ledger.emplace(store.load_stage_calls(run_id, s.record.name, kind));
  return *ledger;
}

// Decides the next move of a stage in `dispatching` from what the store knows: take the
// snapshot, send, settle an unknown call, or go on to the gate. A call that Upswift refused,
// or that never got through, stops the stage for a person; when one resumes the run
// (having fixed the cause) such calls of earlier processes are tried again, with attempts
// counted afresh: they were certainly not applied, so sending again never applies twice.
void Engine::Impl::resume_dispatch(StageRun& s) {
  if (stopping) return;
  if (!s.snapshot) {
    take_snapshot(s);
    return;
  }
  if (auto why = check_feasible(spec(s).gate, static_cast<std::int64_t>(s.snapshot->size()))) {
    event(s.record.name, "stage_failed", "not dispatched: " + *why);
    stage_failed(s, "not dispatched: " + *why, /*dispatched=*/false);
    return;
  }
  if (s.snapshot->empty()) {
    event(s.record.name, "stage_passed", "no devices to update: nothing sent");
    set_stage(s, StageStatus::passed, "no devices to update");
    return;
  }
  if (spec(s).sample || s.retry_targets) {
    dispatch_each(s);
    return;
  }
  // One call for the whole stage: every dispatch of it is a try of that one request.
  const Move move =
      next_move(ledger(s, CallKind::dispatch).all(), own_calls, options.max_dispatch_attempts);
  switch (move.what) {
    case Move::done:
      return begin_gate(s, through_at(*move.call));
    case Move::settle:
      return settle(s, *move.call, {}, "deploy_update");
    case Move::refused:
      return stage_error(s, move.call->message);
    case Move::gave_up:
      return stage_error(s, fmt::format("deploy_update did not go through in {} attempts: {}",
                                        move.attempts, move.call->message));
    case Move::send:
      break;
  }
  upswift::DeployRequest request = spec(s).deploy_request();
  request.comment = with_marker(request.comment, dispatch_marker(run_id, s.record.name));
  send_dispatch(s, request);
}

upswift::DeployRequest Engine::Impl::device_request(const StageRun& s,
                                                    const SnapshotDevice& d) const {
  upswift::DeployRequest request = spec(s).deploy_request();
  request.groups.clear();
  request.filters = {{upswift::FilterType::specific_device, upswift::Operand::is, d.uuid}};
  request.comment = with_marker(request.comment,
                                call_marker(run_id, s.record.name, s.retry_targets ? s.retry : 0));
  return request;
}

// A sampled wave's devices, or a retry's: one call per device, in order, each written ahead
// and identified by its body. An unknown outcome is settled before anything else is sent.
// When every device's call went through, the gate starts; after a retry, its bake starts
// again. Devices already through are passed once per process (`next_device`).
void Engine::Impl::dispatch_each(StageRun& s) {
  if (stopping) return;
  const std::vector<SnapshotDevice>& devices = s.retry_targets ? *s.retry_targets : *s.snapshot;
  CallLedger& calls = ledger(s, CallKind::dispatch);
  for (; s.next_device < devices.size(); ++s.next_device) {
    const SnapshotDevice& d = devices[s.next_device];
    const upswift::DeployRequest request = device_request(s, d);
    const std::string body = upswift::deploy_update_body(request, upswift::kRedactedToken);
    const Move move = next_move(calls.tries(body), own_calls, options.max_dispatch_attempts);
    switch (move.what) {
      case Move::done: {
        const WallTime at = through_at(*move.call);
        s.last_through = s.last_through ? std::max(*s.last_through, at) : at;
        continue;
      }
      case Move::settle:
        return settle(s, *move.call, {d.uuid}, fmt::format("deploy_update to {}", d.uuid));
      case Move::refused:
        return stage_error(s, fmt::format("{} (device {})", move.call->message, d.uuid));
      case Move::gave_up:
        return stage_error(s, fmt::format("deploy_update to device {} did not go through in {} "
                                          "attempts: {}",
                                          d.uuid, move.attempts, move.call->message));
      case Move::send:
        return send_dispatch(s, request, &d);
    }
  }
  const WallTime through = s.last_through.value_or(clock.now());
  if (s.retry_targets) s.record.dispatched_at = through;
  begin_gate(s, through);
}

std::int64_t Engine::Impl::write_intent(StageRun& s, CallKind kind, const std::string& body,
                                        std::int64_t devices) {
  ApiCall call;
  call.run_id = run_id;
  call.stage = s.record.name;
  call.kind = kind;
  call.marker = kind == CallKind::dispatch
                    ? call_marker(run_id, s.record.name, s.retry_targets ? s.retry : 0)
                    : rollback_marker(run_id, s.record.name);
  call.body = body;
  call.devices = devices;
  call.intent_at = clock.now();
  call.id = store.record_intent(call);
  ledger(s, kind).add(call);
  own_calls.insert(call.id);
  return call.id;
}

void Engine::Impl::write_outcome(StageRun& s, CallKind kind, std::int64_t call_id,
                                 CallOutcome outcome, int http_status, const std::string& message) {
  const WallTime now = clock.now();
  store.record_outcome(call_id, outcome, http_status, message, now);
  ledger(s, kind).record(call_id, outcome, now, message);
}

// One deploy_update of a stage, written ahead of sending, its outcome recorded when the
// answer comes; then the stage's calls decide what follows (the gate, the next device,
// settling an unknown outcome). `device`: a per-device call.
void Engine::Impl::send_dispatch(StageRun& s, const upswift::DeployRequest& request,
                                 const SnapshotDevice* device) {
  crash_point("before_intent");
  const std::int64_t call_id = write_intent(
      s, CallKind::dispatch, upswift::deploy_update_body(request, upswift::kRedactedToken),
      device ? 1 : static_cast<std::int64_t>(s.snapshot->size()));
  crash_point("after_intent");
  event(s.record.name, "dispatch",
        device ? fmt::format("deploy_update to device {} ({})", device->uuid, device->name)
               : fmt::format("deploy_update to {} device(s)", s.snapshot->size()));
  const dag::StageId id = s.id;
  const bool each = device != nullptr;
  api.deploy_update(
      request, guarded([this, id, call_id, each](upswift::Result<upswift::Accepted> r) {
        crash_point("after_answer");
        StageRun& st = stages[id];
        switch (r.error.status) {
          case upswift::CallStatus::ok:
            write_outcome(st, CallKind::dispatch, call_id, CallOutcome::accepted, 200, "");
            crash_point("after_outcome");
            if (!each) event(st.record.name, "dispatched", "Upswift accepted the deploy_update");
            break;
          case upswift::CallStatus::refused:
            write_outcome(st, CallKind::dispatch, call_id, CallOutcome::refused,
                          r.error.http_status, r.error.message);
            if (!each) return stage_error(st, r.error.message);
            break;
          case upswift::CallStatus::failed:
            write_outcome(st, CallKind::dispatch, call_id, CallOutcome::failed, r.error.http_status,
                          r.error.message);
            event(st.record.name, "error", r.error.message);
            fail_run(
                fmt::format("stage {}: deploy_update could not be sent ({}); nothing was "
                            "applied; continue with rollout resume {}",
                            st.record.name, r.error.message, run_id));
            return;
          case upswift::CallStatus::unknown_outcome:
            write_outcome(st, CallKind::dispatch, call_id, CallOutcome::unknown,
                          r.error.http_status, r.error.message);
            event(st.record.name, "dispatch_unknown", r.error.message);
            break;
        }
        if (stopping) return;
        if (each) return dispatch_each(st);
        resume_dispatch(st);
      }));
}

// A call whose answer never came, of either kind: after the settle delay (when any request
// still in flight at Upswift has long finished), the update carrying the call's marker is
// looked for on `devices` (every device of the stage when empty). Found: it went through.
// Not found: it certainly did not, and may be sent again.
void Engine::Impl::settle(StageRun& s, const ApiCall& call, std::vector<std::string> devices,
                          const std::string& what) {
  const Millis wait =
      std::max(Millis{0}, options.settle_delay - since(clock.now(), call.intent_at));
  event(s.record.name, "settle",
        fmt::format("outcome of the {} unknown: reading the devices in {}s", what,
                    wait.count() / 1000));
  const dag::StageId id = s.id;
  const std::int64_t call_id = call.id;
  const CallKind kind = call.kind;
  const WallTime intent_at = call.intent_at;
  const std::string marker = call.marker;
  s.timer = clock.schedule(wait, [self = shared_from_this(), id, call_id, kind, intent_at, marker,
                                  devices = std::move(devices), what] {
    StageRun& st = self->stages[id];
    engine::read_reached(
        self->api, self->spec(st).deploy_request(), *st.snapshot, marker,
        self->guarded([self, id, call_id, kind, intent_at, devices,
                       what](upswift::Result<std::vector<Reached>> r) {
          StageRun& stage = self->stages[id];
          if (!r.ok()) {
            const std::string why = fmt::format(
                "stage {}: could not read its devices to settle the {}: {}; "
                "continue with rollout resume {}",
                stage.record.name, what, r.error.message, self->run_id);
            if (kind == CallKind::dispatch) return self->fail_run(why);
            if (self->interrupted) return;  // a signal: the rollback is settled at resume
            self->stopping = Outcome{Ending::failed, why};
            return;
          }
          bool applied = false;
          for (std::size_t i = 0; i < r.value->size(); ++i) {
            const std::string& uuid = (*stage.snapshot)[i].uuid;
            applied = applied || (arrived((*r.value)[i]) &&
                                  (devices.empty() || std::find(devices.begin(), devices.end(),
                                                                uuid) != devices.end()));
          }
          self->write_outcome(
              stage, kind, call_id,
              applied ? CallOutcome::settled_applied : CallOutcome::settled_not_applied, 0,
              applied ? "found on the devices" : "not found on the devices");
          self->event(stage.record.name,
                      applied && kind == CallKind::dispatch ? "dispatched" : "settle",
                      applied ? fmt::format("the {} had gone through (found on the devices)", what)
                              : fmt::format("the {} had not gone through: sending it again", what));
          self->after_settling(stage, kind, applied, intent_at);
        }));
  });
}

void Engine::Impl::after_settling(StageRun& s, CallKind kind, bool applied, WallTime intent_at) {
  if (kind == CallKind::rollback) return send_rollback_calls(s);
  if (stopping) return;
  if (spec(s).sample || s.retry_targets) return dispatch_each(s);
  if (applied) return begin_gate(s, intent_at);
  resume_dispatch(s);
}

}  // namespace rollout::engine
