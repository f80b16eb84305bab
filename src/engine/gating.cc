// A stage's gate: after dispatch, its devices are read at the gate's poll interval, each
// device's state that changed is recorded with the observation, and the gate's verdict
// (gate.h) decides: wait, pass, fail (on_failure), or the timeout's on_timeout.
#include <algorithm>
#include <unordered_map>

#include <fmt/format.h>

#include "engine/engine_impl.h"

namespace rollout::engine {

void Engine::Impl::begin_gate(StageRun& s, WallTime dispatched_at) {
  if (!s.record.dispatched_at) s.record.dispatched_at = dispatched_at;
  set_stage(s, StageStatus::gating);
  schedule_poll(s, Millis{0});
}

void Engine::Impl::schedule_poll(StageRun& s, Millis delay) {
  const dag::StageId id = s.id;
  s.timer =
      clock.schedule(delay, [self = shared_from_this(), id] { self->poll(self->stages[id]); });
}

void Engine::Impl::poll(StageRun& s) {
  if (stopping || finished) return;
  const dag::StageId id = s.id;
  engine::read_readings(
      api, spec(s).deploy_request(), *s.snapshot, dispatch_marker(run_id, s.record.name),
      guarded([this, id](upswift::Result<std::vector<Reading>> r) {
        StageRun& st = stages[id];
        const plan::Gate& gate = spec(st).gate;
        const WallTime now = clock.now();
        const Millis elapsed = since(now, *st.record.dispatched_at);
        if (!r.ok()) {
          event(st.record.name, "error", "could not read device statuses: " + r.error.message);
          if (elapsed >= std::chrono::duration_cast<Millis>(gate.timeout)) {
            on_verdict(st,
                       {Verdict::timeout, "device statuses could not be read: " + r.error.message},
                       elapsed);
          } else {
            schedule_poll(st, std::chrono::duration_cast<Millis>(gate.poll));
          }
          return;
        }
        const StatusCounts counts = tally(*r.value);
        const auto targeted = static_cast<std::int64_t>(st.snapshot->size());
        Judgement j = judge(gate, targeted, counts, elapsed);
        std::vector<std::size_t> changed = note_devices(st, *r.value, now);
        if (j.verdict == Verdict::wait || counts.success == targeted) {
          return record_poll(st, j, counts, elapsed, now, changed);
        }
        // A decision with devices that did not succeed: which of them are online is the
        // operator's next question, so it is read now and kept with the decision.
        list_online(api, spec(st).project, spec(st).groups,
                    guarded([this, id, j, counts, elapsed, now,
                             changed](upswift::Result<OnlineStates> online) mutable {
                      StageRun& stage = stages[id];
                      if (!online.ok()) {
                        event(stage.record.name, "error",
                              "could not read which devices are online: " + online.error.message);
                      } else {
                        note_online(stage, *online.value, now, changed);
                      }
                      record_poll(stage, j, counts, elapsed, now, changed);
                    }));
      }));
}

// An observation of the stage not committed yet makes its device rows from `seen` when it
// commits: it commits before `seen` changes.
void Engine::Impl::commit_observations(const StageRun& s) {
  if (std::any_of(pending.observations.begin(), pending.observations.end(),
                  [&](const PendingObservation& o) { return o.stage == s.id; }))
    flush();
}

// The devices (snapshot positions) whose state differs from what the gate saw last (all of
// them at the first poll), each since `now`; `s.seen` is brought up to date.
std::vector<std::size_t> Engine::Impl::note_devices(StageRun& s,
                                                    const std::vector<Reading>& readings,
                                                    WallTime now) {
  const std::vector<SnapshotDevice>& devices = *s.snapshot;
  commit_observations(s);
  if (!s.seen) {
    flush();  // the states read back include every one this process recorded
    s.seen.emplace(devices.size());
    const auto recorded = store.load_stage_device_states(run_id, s.record.name);
    std::unordered_map<std::string_view, std::size_t> at;
    if (!recorded.empty()) {  // after a resume: the gate goes on from what it saw
      for (std::size_t i = 0; i < devices.size(); ++i) at.emplace(devices[i].uuid, i);
    }
    for (const state::DeviceState& d : recorded) {
      auto it = at.find(d.uuid);
      if (it == at.end() || !d.status) continue;
      (*s.seen)[it->second] = {
          true,
          *d.status,
          d.update_id,
          d.since,
          static_cast<std::int8_t>(d.online.empty() ? -1 : d.online == "online"),
          d.online_at};
    }
  }
  std::vector<std::size_t> changed;
  for (std::size_t i = 0; i < devices.size(); ++i) {
    Seen& seen = (*s.seen)[i];
    if (seen.known && seen.reached == readings[i].reached &&
        seen.update_id == readings[i].update_id)
      continue;
    seen.known = true;
    seen.reached = readings[i].reached;
    seen.update_id = readings[i].update_id;
    seen.since = now;
    changed.push_back(i);
  }
  return changed;
}

// Each device's online state, as read at a decision: every device is then to record.
void Engine::Impl::note_online(StageRun& s, const OnlineStates& online, WallTime now,
                               std::vector<std::size_t>& changed) {
  const std::vector<SnapshotDevice>& devices = *s.snapshot;
  commit_observations(s);
  changed.clear();
  for (std::size_t i = 0; i < devices.size(); ++i) {
    Seen& seen = (*s.seen)[i];
    auto it = online.find(devices[i].uuid);
    seen.online = static_cast<std::int8_t>(it == online.end() ? -1 : it->second ? 1 : 0);
    seen.online_at = now;
    changed.push_back(i);
  }
}

// The rows of the changed devices, made one at a time as the store writes them.
state::DeviceChanges Engine::Impl::device_rows(const StageRun& s,
                                               const std::vector<std::size_t>& changed) const {
  return {changed.size(), [&s, &changed](std::size_t k) {
            const std::size_t i = changed[k];
            const Seen& seen = (*s.seen)[i];
            state::DeviceState row;
            row.stage = s.record.name;
            row.uuid = (*s.snapshot)[i].uuid;
            row.update_id = seen.update_id;
            row.status = seen.reached;
            row.since = seen.since;
            row.online = seen.online < 0 ? "" : seen.online ? "online" : "offline";
            row.online_at = seen.online_at;
            return row;
          }};
}

void Engine::Impl::record_poll(StageRun& s, const Judgement& j, const StatusCounts& counts,
                               Millis elapsed, WallTime now,
                               const std::vector<std::size_t>& changed) {
  state::Observation o{run_id,
                       s.record.name,
                       now,
                       elapsed.count(),
                       static_cast<std::int64_t>(s.snapshot->size()),
                       counts.pending,
                       counts.in_progress,
                       counts.success,
                       counts.failed,
                       counts.aborted,
                       counts.missing,
                       j.verdict,
                       j.reason};
  pending.observations.push_back({o, s.id, changed});
  notify([this, o] { observer.on_observation(o); });
  on_verdict(s, j, elapsed);
}

void Engine::Impl::on_verdict(StageRun& s, const Judgement& j, Millis elapsed) {
  const plan::Gate& gate = spec(s).gate;
  switch (j.verdict) {
    case Verdict::wait:
      return schedule_poll(s, next_poll(gate, elapsed));
    case Verdict::pass:
      event(s.record.name, "stage_passed", j.reason);
      return set_stage(s, StageStatus::passed, j.reason);
    case Verdict::fail:
      event(s.record.name, "stage_failed", j.reason);
      return stage_failed(s, j.reason, /*dispatched=*/true);
    case Verdict::timeout:
      switch (gate.on_timeout) {
        case plan::OnTimeout::pass:
          event(s.record.name, "stage_passed", "on_timeout pass: " + j.reason);
          return set_stage(s, StageStatus::passed, "on_timeout pass: " + j.reason);
        case plan::OnTimeout::fail:
          event(s.record.name, "stage_failed", "on_timeout fail: " + j.reason);
          return stage_failed(s, "on_timeout fail: " + j.reason, true);
        case plan::OnTimeout::pause:
          event(s.record.name, "stage_paused",
                fmt::format("{}; approve to let it pass: rollout approve {} {}", j.reason, run_id,
                            s.record.name));
          set_stage(s, StageStatus::paused, j.reason);
          s.record.finished_at = clock.now();
          save_stage(s);
          return;
      }
  }
}

}  // namespace rollout::engine
