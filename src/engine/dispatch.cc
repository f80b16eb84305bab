// A stage's dispatch: its devices listed and recorded (the snapshot), then its
// deploy_update calls under the write-ahead protocol. Every call's intent is durable
// before its first byte is sent and its outcome is recorded when the answer comes; a call
// whose answer never came is settled by looking for its update on the devices before
// anything else is sent. What to do next is always decided from the stage's calls (its
// ledger, read once from the store and kept in step), so a resumed run and a running one
// take the same path.
#include <algorithm>
#include <unordered_set>

#include <fmt/format.h>

#include "engine/engine_impl.h"
#include "util/safe_text.h"

namespace rollout::engine {

void Engine::Impl::start_stage(StageRun& s) {
  set_stage(s, StageStatus::dispatching);
  event(s.record.name, EventKind::stage_started,
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
          event(stage.record.name, EventKind::error,
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
        if (spec(stage).sample) {
          // Devices an earlier stage of this run targeted are not drawn again; a ramp's
          // earlier steps count towards its share.
          const auto& ramp = spec(stage).ramp;
          std::set<std::string> taken, ramp_taken;
          for (const StageRun& other : stages) {
            if (other.id == stage.id || !other.snapshot) continue;
            const bool same_ramp =
                ramp && spec(other).ramp && spec(other).ramp->stage == ramp->stage;
            for (const auto& d : *other.snapshot) (same_ramp ? ramp_taken : taken).insert(d.uuid);
          }
          StageDraw draw =
              draw_for_stage(std::move(devices), spec(stage), taken, ramp_taken, run_id);
          const std::string left_out =
              draw.left_out
                  ? fmt::format(" ({} left out: earlier stages targeted them)", draw.left_out)
                  : "";
          if (ramp) {
            how = fmt::format(
                ", step {} of {} of ramp {}: {} of {} device(s), {} in all, {} of them in "
                "earlier steps{}",
                ramp->index + 1, ramp->steps, ramp->stage, plan::format_percent(ramp->percent),
                draw.base, draw.devices.size() + ramp_taken.size(), ramp_taken.size(), left_out);
            if (draw.devices.empty()) {
              const std::string why = fmt::format("no device to add at this step{}", how);
              event(stage.record.name, EventKind::stage_passed, why);
              return set_stage(stage, StageStatus::passed, why);
            }
          } else {
            how = fmt::format(", a sample of {} from {} candidate(s){}",
                              plan::format_sample(*spec(stage).sample), draw.candidates, left_out);
          }
          devices = std::move(draw.devices);
        }
        stage.snapshot = std::move(devices);
        pending.snapshots.push_back({stage.record.name, &*stage.snapshot});
        event(stage.record.name, EventKind::snapshot,
              fmt::format("targets {} device(s){}", stage.snapshot->size(), how));
        notify([this, name = stage.record.name, size = stage.snapshot->size()] {
          observer.on_snapshot(name, size);
        });
        resume_dispatch(stage);
      }));
}

// A stage that updates only what is left (update_status or app filters) and finds every
// candidate done has nothing to do: it passes, skipped, with no snapshot and nothing sent.
// A selection that matches no device at all is not this: min_devices judges it.
void Engine::Impl::skip_nothing_left(StageRun& s, std::int64_t candidates) {
  const std::string why = fmt::format("{} (its filters leave none of its {} candidate(s))",
                                      state::kSkippedReason, candidates);
  event(s.record.name, EventKind::stage_passed, why);
  set_stage(s, StageStatus::passed, why);
}

CallLedger& Engine::Impl::ledger(StageRun& s, CallKind kind) {
  auto& ledger = kind == CallKind::dispatch ? s.dispatches : s.rollbacks;
  if (!ledger) {
    if (!pending.outcomes.empty()) flush();  // so that they are read back with the calls
    ledger.emplace(store.load_stage_calls(run_id, s.record.name, kind));
  }
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
    event(s.record.name, EventKind::stage_failed, "not dispatched: " + *why);
    stage_failed(s, "not dispatched: " + *why, /*dispatched=*/false);
    return;
  }
  if (s.snapshot->empty()) {
    event(s.record.name, EventKind::stage_passed, "no devices to update: nothing sent");
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
      return settle(s, *move.call, {{move.call->id, {}}}, "deploy_update");
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

// A sampled wave's devices, or a retry's: one call per device, each identified by its body,
// sent in batches whose intents are written together before any of them is sent (an
// intent never sent is settled like any unknown outcome). Unknown outcomes are settled,
// all with one reading of the devices, before anything else is sent. When every device's
// call went through, the gate starts; after a retry, its bake starts again. Devices
// already through are passed once per process (`next_device`).
void Engine::Impl::dispatch_each(StageRun& s) {
  if (stopping || s.sends_in_flight > 0 || !s.queued.empty()) return;
  const std::vector<SnapshotDevice>& devices = s.retry_targets ? *s.retry_targets : *s.snapshot;
  CallLedger& calls = ledger(s, CallKind::dispatch);
  std::vector<Unsettled> unknown;
  const ApiCall* latest_unknown = nullptr;
  std::vector<std::size_t> to_send;
  bool prefix = true;  // every device before this one went through
  for (std::size_t i = s.next_device; i < devices.size() && to_send.size() < options.dispatch_batch;
       ++i) {
    const SnapshotDevice& d = devices[i];
    const std::string body =
        upswift::deploy_update_body(device_request(s, d), upswift::kRedactedToken);
    const Move move = next_move(calls.tries(body), own_calls, options.max_dispatch_attempts);
    if (move.what != Move::done) prefix = false;
    switch (move.what) {
      case Move::done:
        if (prefix) {
          const WallTime at = through_at(*move.call);
          s.last_through = s.last_through ? std::max(*s.last_through, at) : at;
          s.next_device = i + 1;
        }
        continue;
      case Move::settle:
        unknown.push_back({move.call->id, {d.uuid}});
        if (!latest_unknown || move.call->intent_at > latest_unknown->intent_at)
          latest_unknown = move.call;
        continue;
      case Move::send:
        to_send.push_back(i);
        continue;
      case Move::refused:
      case Move::gave_up:
        break;
    }
    if (!unknown.empty() || !to_send.empty()) break;  // those first; this one stops the stage
    if (move.what == Move::refused)
      return stage_error(s, fmt::format("{} (device {})", move.call->message, d.uuid));
    return stage_error(s, fmt::format("deploy_update to device {} did not go through in {} "
                                      "attempts: {}",
                                      d.uuid, move.attempts, move.call->message));
  }
  if (!unknown.empty()) {
    const std::string what = settle_what(unknown);
    return settle(s, *latest_unknown, std::move(unknown), what);
  }
  if (!to_send.empty()) return send_each(s, to_send);
  const WallTime through = s.last_through.value_or(clock.now());
  if (s.retry_targets) s.record.dispatched_at = through;
  begin_gate(s, through);
}

// One batch of per-device calls: their intents committed together, then sent a few at a
// time (the client's rate limit paces them further). Once the run is stopping, those not
// sent yet are recorded as not sent (certainly not applied) and are sent by a resume; when
// the batch's last answer is in, the stage's calls decide what follows.
void Engine::Impl::send_each(StageRun& s, const std::vector<std::size_t>& positions) {
  const std::vector<SnapshotDevice>& devices = s.retry_targets ? *s.retry_targets : *s.snapshot;
  std::vector<upswift::DeployRequest> requests;
  std::vector<ApiCall> calls;
  for (std::size_t i : positions) {
    requests.push_back(device_request(s, devices[i]));
    calls.push_back(intent(s, CallKind::dispatch,
                           upswift::deploy_update_body(requests.back(), upswift::kRedactedToken),
                           1));
  }
  crash_point("before_intent");
  const std::vector<std::int64_t> ids = write_intents(s, std::move(calls));
  for (std::size_t k = 0; k < positions.size(); ++k) {
    const SnapshotDevice& d = devices[positions[k]];
    s.queued.push_back({std::move(requests[k]), ids[k], describe_device(d)});
  }
  send_queued(s);
}

void Engine::Impl::send_queued(StageRun& s) {
  while (!s.queued.empty() && stopping) {
    write_outcome(s, CallKind::dispatch, s.queued.front().call_id, CallOutcome::failed, 0,
                  "not sent: the run was stopping");
    s.queued.pop_front();
  }
  const dag::StageId id = s.id;
  while (!s.queued.empty() && s.sends_in_flight < kSendsAtOnce) {
    Queued q = std::move(s.queued.front());
    s.queued.pop_front();
    event(s.record.name, EventKind::dispatch, "deploy_update to device " + q.device);
    ++s.sends_in_flight;
    awaited.insert(q.call_id);
    api.deploy_update(
        q.request, guarded([this, id, call_id = q.call_id](upswift::Result<upswift::Accepted> r) {
          awaited.erase(call_id);
          crash_point("after_answer");
          StageRun& st = stages[id];
          --st.sends_in_flight;
          record_answer(st, call_id, r);
          send_queued(st);
          dispatch_each(st);  // once the batch's last answer is in
        }));
  }
}

ApiCall Engine::Impl::intent(const StageRun& s, CallKind kind, std::string body,
                             std::int64_t devices) const {
  ApiCall call;
  call.run_id = run_id;
  call.stage = s.record.name;
  call.kind = kind;
  call.marker = kind == CallKind::dispatch
                    ? call_marker(run_id, s.record.name, s.retry_targets ? s.retry : 0)
                    : rollback_marker(run_id, s.record.name);
  call.body = std::move(body);
  call.devices = devices;
  call.intent_at = clock.now();
  return call;
}

std::vector<std::int64_t> Engine::Impl::write_intents(StageRun& s, std::vector<ApiCall> calls) {
  CallLedger& calls_of_kind = ledger(s, calls.front().kind);
  const std::vector<std::int64_t> ids = flush(calls);
  for (std::size_t k = 0; k < calls.size(); ++k) {
    calls[k].id = ids[k];
    calls_of_kind.add(calls[k]);
    own_calls.insert(ids[k]);
  }
  return ids;
}

void Engine::Impl::write_outcome(StageRun& s, CallKind kind, std::int64_t call_id,
                                 CallOutcome outcome, int http_status, const std::string& message) {
  const WallTime now = clock.now();
  CallLedger& calls = ledger(s, kind);
  pending.outcomes.push_back({call_id, outcome, http_status, message, now});
  calls.record(call_id, outcome, now, message);
}

// The one deploy_update of a whole stage, written ahead of sending, its outcome recorded
// when the answer comes; then the stage's calls decide what follows (the gate, or settling
// an unknown outcome).
void Engine::Impl::send_dispatch(StageRun& s, const upswift::DeployRequest& request) {
  crash_point("before_intent");
  // The event commits with the intent: both say the call is about to leave.
  event(s.record.name, EventKind::dispatch,
        fmt::format("deploy_update to {} device(s)", s.snapshot->size()));
  const std::int64_t call_id =
      write_intents(s, {intent(s, CallKind::dispatch,
                               upswift::deploy_update_body(request, upswift::kRedactedToken),
                               static_cast<std::int64_t>(s.snapshot->size()))})
          .front();
  const dag::StageId id = s.id;
  awaited.insert(call_id);
  api.deploy_update(request, guarded([this, id, call_id](upswift::Result<upswift::Accepted> r) {
                      awaited.erase(call_id);
                      crash_point("after_answer");
                      StageRun& st = stages[id];
                      record_answer(st, call_id, r);
                      switch (r.error.status) {
                        case upswift::CallStatus::ok:
                          event(st.record.name, EventKind::dispatched,
                                "Upswift accepted the deploy_update");
                          break;
                        case upswift::CallStatus::refused:
                          return stage_error(st, r.error.message);
                        case upswift::CallStatus::failed:
                          return;
                        case upswift::CallStatus::unknown_outcome:
                          break;
                      }
                      resume_dispatch(st);
                    }));
}

// A dispatch's answer: its outcome recorded, an unknown one said; one that could not be sent
// (certainly not applied) stops the run for a person.
void Engine::Impl::record_answer(StageRun& s, std::int64_t call_id,
                                 const upswift::Result<upswift::Accepted>& r) {
  switch (r.error.status) {
    case upswift::CallStatus::ok:
      return write_outcome(s, CallKind::dispatch, call_id, CallOutcome::accepted, 200, "");
    case upswift::CallStatus::refused:
      return write_outcome(s, CallKind::dispatch, call_id, CallOutcome::refused,
                           r.error.http_status, r.error.message);
    case upswift::CallStatus::failed:
      write_outcome(s, CallKind::dispatch, call_id, CallOutcome::failed, r.error.http_status,
                    r.error.message);
      event(s.record.name, EventKind::error, r.error.message);
      return fail_run(fmt::format(
          "stage {}: deploy_update could not be sent ({}); nothing was applied; continue with "
          "rollout resume {}",
          s.record.name, r.error.message, run_id));
    case upswift::CallStatus::unknown_outcome:
      write_outcome(s, CallKind::dispatch, call_id, CallOutcome::unknown, r.error.http_status,
                    r.error.message);
      return event(s.record.name, EventKind::dispatch_unknown, r.error.message);
  }
}

// Calls whose answers never came, of one kind and marker: after the settle delay (when any
// request still in flight at Upswift has long finished), the update carrying the marker is
// looked for on each call's devices, all with one reading. Found: the call went through.
// Not found: it certainly did not, and may be sent again. `latest`: the latest of them.
void Engine::Impl::settle(StageRun& s, const ApiCall& latest, std::vector<Unsettled> calls,
                          const std::string& what) {
  const Millis wait =
      std::max(Millis{0}, options.settle_delay - since(clock.now(), latest.intent_at));
  event(s.record.name, EventKind::settle,
        fmt::format("outcome of the {} unknown: reading the devices in {}s", what,
                    wait.count() / 1000));
  const dag::StageId id = s.id;
  const CallKind kind = latest.kind;
  const WallTime intent_at = latest.intent_at;
  const std::string marker = latest.marker;
  s.settling = true;
  s.timer = clock.schedule(wait, [self = shared_from_this(), id, kind, intent_at, marker,
                                  calls = std::move(calls), what] {
    StageRun& st = self->stages[id];
    engine::read_reached(
        self->api, self->spec(st).deploy_request(), *st.snapshot, marker,
        self->guarded([self, id, kind, intent_at, calls,
                       what](upswift::Result<std::vector<Reached>> r) {
          StageRun& stage = self->stages[id];
          stage.settling = false;
          if (!r.ok()) {
            const std::string why = fmt::format(
                "stage {}: could not read its devices to settle the {}: {}; "
                "continue with rollout resume {}",
                stage.record.name, what, r.error.message, self->run_id);
            self->event(stage.record.name, EventKind::error, why);
            // Stopping already: the run ends resumable, the outcome unknown (finish).
            if (self->stopping) stage.settle_failed = true;
            if (kind == CallKind::dispatch) return self->fail_run(why);
            if (self->interrupted) return;  // a signal: the rollback is settled at resume
            return self->rollback_halted(
                stage, fmt::format("could not read its devices to settle the {}: {}", what,
                                   r.error.message));
          }
          std::unordered_set<std::string_view> reached;
          for (std::size_t i = 0; i < r.value->size(); ++i) {
            if (arrived((*r.value)[i])) reached.insert((*stage.snapshot)[i].uuid);
          }
          std::size_t found = 0;
          for (const Unsettled& call : calls) {
            const bool applied =
                call.devices.empty()
                    ? !reached.empty()
                    : std::any_of(call.devices.begin(), call.devices.end(),
                                  [&](const std::string& uuid) { return reached.count(uuid) > 0; });
            found += applied ? 1 : 0;
            self->write_outcome(
                stage, kind, call.call_id,
                applied ? CallOutcome::settled_applied : CallOutcome::settled_not_applied, 0,
                applied ? "found on the devices" : "not found on the devices");
          }
          const bool applied = found > 0;
          if (calls.size() == 1) {
            self->event(
                stage.record.name,
                applied && kind == CallKind::dispatch ? EventKind::dispatched : EventKind::settle,
                applied ? fmt::format("the {} had gone through (found on the devices)", what)
                        : fmt::format("the {} had not gone through: sending it again", what));
          } else {
            self->event(stage.record.name, EventKind::settle,
                        fmt::format("of the {}, {} had gone through (found on the devices) and "
                                    "{} had not: those are sent again",
                                    what, found, calls.size() - found));
          }
          self->after_settling(stage, kind, applied, intent_at);
        }));
  });
}

std::string Engine::Impl::settle_what(const std::vector<Unsettled>& calls) {
  if (calls.size() == 1 && calls.front().devices.empty()) return "deploy_update";
  if (calls.size() == 1) return fmt::format("deploy_update to {}", calls.front().devices.front());
  return fmt::format("{} deploy_update calls to single devices", calls.size());
}

void Engine::Impl::after_settling(StageRun& s, CallKind kind, bool applied, WallTime intent_at) {
  if (kind == CallKind::rollback) return send_rollback_calls(s);
  if (stopping) return;  // the run's end decides: wind_down (ending.cc)
  if (spec(s).sample || s.retry_targets) return dispatch_each(s);
  if (applied) return begin_gate(s, intent_at);
  resume_dispatch(s);
}

}  // namespace rollout::engine
