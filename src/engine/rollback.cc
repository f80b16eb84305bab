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
    std::size_t snapshot_size, const std::vector<state::SnapshotDevice>& targets, int retry) {
  const plan::Rollback& rb = *stage.on_failure.rollback;
  upswift::DeployRequest base;
  base.flow_id = rb.flow_id;
  base.project = stage.project;
  base.app = rb.app;
  base.comment =
      with_marker(rb.comment ? rb.comment
                             : std::optional<std::string>(fmt::format("rollback of {}", plan.name)),
                  rollback_marker(run_id, stage.name, retry));
  std::vector<upswift::DeployRequest> out;
  const upswift::DeployRequest stage_request = stage.deploy_request();
  if (retry == 0 && !targets.empty() && targets.size() == snapshot_size &&
      !selects_by_state(stage_request) && !stage.sample) {
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

RollbackCheck judge_rollback(const std::vector<Reading>& readings, bool timed_out) {
  RollbackCheck c;
  for (std::size_t i = 0; i < readings.size(); ++i) {
    switch (readings[i].reached) {
      case state::DeviceStatus::success:
        c.back.push_back(i);
        break;
      case state::DeviceStatus::failed:
      case state::DeviceStatus::aborted:
        c.failed.push_back(i);
        break;
      default:
        c.unfinished.push_back(i);
    }
  }
  c.over = c.unfinished.empty() || timed_out;
  return c;
}

std::string rollback_target(const plan::Rollback& rollback) {
  return rollback.app ? fmt::format("{} {}", rollback.app->name, rollback.app->version)
                      : fmt::format("rollback flow {}", rollback.flow_id);
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
  if (!spec(s).on_failure.rollback || s.rollback_started) return;
  s.rollback_started = true;
  if (s.record.status != StageStatus::rolling_back) {
    set_status(s, StageStatus::rolling_back);
    save_stage(s);
  }
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
          event(st.record.name, EventKind::error,
                "rollback: could not read the stage's devices: " + r.error.message);
          if (interrupted) return;  // a signal: the rollback goes on at resume
          return rollback_halted(st, "could not read its devices: " + r.error.message);
        }
        const auto targets = rollback_targets(*st.snapshot, *r.value);
        pending.snapshots.push_back({rollback_key(st.record.name), &targets});
        flush();  // while `targets` lives
        plan_rollback(st, targets);
        send_rollback_calls(st);
      }));
}

// The requests of the rollback and of each `retry --rollback` since (recorded under its own
// key), in order: the calls that went through are not sent again.
void Engine::Impl::plan_rollback(StageRun& s, const std::vector<SnapshotDevice>& targets) {
  s.rollback_plan.emplace();
  const auto add = [&](const std::vector<SnapshotDevice>& devices, int retry) {
    for (auto& request :
         rollback_requests(plan, spec(s), run_id, s.snapshot->size(), devices, retry)) {
      std::string body = upswift::deploy_update_body(request, upswift::kRedactedToken);
      s.rollback_plan->push_back({std::move(request), std::move(body)});
    }
  };
  add(targets, 0);
  s.rollback_retry = 0;
  std::size_t again_to = 0;
  while (auto again =
             store.load_snapshot(run_id, rollback_retry_key(s.record.name, s.rollback_retry + 1))) {
    add(*again, ++s.rollback_retry);
    again_to = again->size();
  }
  s.rollback_devices = targets;
  s.rollback_next = 0;
  event(
      s.record.name, EventKind::rollback,
      s.rollback_retry == 0
          ? fmt::format("rolling back the {} device(s) the stage's update reached", targets.size())
          : fmt::format("rollback retry {}: sending the rollback again to the {} device(s) "
                        "where it did not succeed",
                        s.rollback_retry, again_to));
}

// The rollback's calls go out in batches whose intents are written together, a few at a time
// (the client's rate limit paces them further). Once every call was sent and answered, the
// unknown outcomes are settled together, with one reading of the devices, and what certainly
// did not go through is sent again; when every call went through, the stage is rolled back.
void Engine::Impl::send_rollback_calls(StageRun& s) {
  if (s.rollback_halted || s.rollback_sends > 0 || !s.rollback_queue.empty()) return;
  CallLedger& calls = ledger(s, CallKind::rollback);
  std::vector<Unsettled> unknown;
  const ApiCall* latest = nullptr;
  std::vector<std::size_t> to_send;
  bool prefix = true;  // every call before this one went through
  for (std::size_t k = s.rollback_next; k < s.rollback_plan->size(); ++k) {
    const Planned& planned = (*s.rollback_plan)[k];
    const Move move = next_move(calls.tries(planned.body), own_calls, 0);
    if (move.what != Move::done) prefix = false;
    switch (move.what) {
      case Move::done:
        if (prefix) s.rollback_next = k + 1;
        continue;
      case Move::settle:
        unknown.push_back({move.call->id, named_devices(planned.request)});
        if (!latest || move.call->intent_at > latest->intent_at) latest = move.call;
        continue;
      case Move::send:
        if (to_send.size() < options.dispatch_batch) to_send.push_back(k);
        continue;
      case Move::refused:
      case Move::gave_up:
        return rollback_halted(s, move.call->message);
    }
  }
  if (interrupted && (!unknown.empty() || !to_send.empty())) return;  // the resume goes on
  // Each call is to other devices than the rest: every call is sent first, then the unknown
  // outcomes are settled all at once.
  if (!to_send.empty()) return send_rollback_batch(s, to_send);
  if (!unknown.empty()) {
    const std::string what = unknown.size() == 1
                                 ? std::string("rollback deploy_update")
                                 : fmt::format("{} rollback deploy_update calls", unknown.size());
    return settle(s, *latest, std::move(unknown), what);
  }
  check_rollback(s);  // every call went through: whether the devices are back is read next
}

void Engine::Impl::send_rollback_batch(StageRun& s, const std::vector<std::size_t>& positions) {
  std::vector<ApiCall> intents;
  std::vector<std::string> whom;  // one device's uuid, or the stage's whole selection
  for (std::size_t k : positions) {
    const Planned& planned = (*s.rollback_plan)[k];
    const auto devices = named_devices(planned.request);
    const bool one_device = devices.size() == 1;
    intents.push_back(intent(s, CallKind::rollback, planned.body,
                             one_device ? 1 : static_cast<std::int64_t>(s.snapshot->size())));
    whom.push_back(one_device ? devices.front() : fmt::format("{} device(s)", s.snapshot->size()));
  }
  const std::vector<std::int64_t> ids = write_intents(s, std::move(intents));
  for (std::size_t i = 0; i < positions.size(); ++i)
    s.rollback_queue.push_back({(*s.rollback_plan)[positions[i]].request, ids[i], whom[i]});
  send_rollback_queue(s);
}

void Engine::Impl::send_rollback_queue(StageRun& s) {
  // Halted (a refusal) or a signal: what is written ahead and not sent is recorded as not sent
  // (certainly not applied), and a resume sends it.
  while (!s.rollback_queue.empty() && (s.rollback_halted || interrupted)) {
    write_outcome(s, CallKind::rollback, s.rollback_queue.front().call_id, CallOutcome::failed, 0,
                  "not sent: the rollback was stopped");
    s.rollback_queue.pop_front();
  }
  const dag::StageId id = s.id;
  while (!s.rollback_queue.empty() && s.rollback_sends < kSendsAtOnce) {
    Queued q = std::move(s.rollback_queue.front());
    s.rollback_queue.pop_front();
    ++s.rollback_sends;
    awaited.insert(q.call_id);
    api.deploy_update(
        q.request, guarded([this, id, call_id = q.call_id](upswift::Result<upswift::Accepted> r) {
          awaited.erase(call_id);
          StageRun& st = stages[id];
          --st.rollback_sends;
          const CallOutcome outcome =
              r.ok()                                                   ? CallOutcome::accepted
              : r.error.status == upswift::CallStatus::refused         ? CallOutcome::refused
              : r.error.status == upswift::CallStatus::unknown_outcome ? CallOutcome::unknown
                                                                       : CallOutcome::failed;
          write_outcome(st, CallKind::rollback, call_id, outcome, r.error.http_status,
                        r.error.message);
          // Not sent after a signal: certainly not applied, and the resume sends it.
          if (!r.ok() && r.error.status != upswift::CallStatus::unknown_outcome && !interrupted) {
            event(st.record.name, EventKind::error, "rollback deploy_update: " + r.error.message);
            rollback_halted(st, r.error.message);
          }
          send_rollback_queue(st);
          send_rollback_calls(st);  // once the batch's last answer is in
        }));
  }
}

void Engine::Impl::rollback_halted(StageRun& s, const std::string& why) {
  if (s.rollback_halted) return;
  s.rollback_halted = true;
  stopping = Outcome{Ending::failed,
                     fmt::format("rollback of stage {} failed: {}; continue with rollout resume {}",
                                 s.record.name, why, run_id)};
}

bool Engine::Impl::rollback_under_way() const {
  return std::any_of(stages.begin(), stages.end(), [](const StageRun& s) {
    return s.record.status == StageStatus::rolling_back && !s.rollback_halted;
  });
}

}  // namespace rollout::engine
