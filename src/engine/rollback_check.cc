// A rollback is checked as a dispatch is gated: once every one of its calls went through,
// the rollback's update (found by its marker) is read on each device it was sent to, at the
// stage gate's poll interval, until it finished on every one of them or rollback.timeout
// (default: the gate's timeout) has passed since its last call went through. Each device's
// reading is recorded (under the stage's rollback key), and the stage is rolled back only
// when every device's rollback succeeded; otherwise its rollback failed, an alarm of its own
// that ends the run failed, and `rollout retry RUN STAGE --rollback` sends it again there.
#include <algorithm>

#include <fmt/format.h>

#include "engine/engine_impl.h"
#include "engine/markers.h"
#include "util/duration.h"

namespace rollout::engine {

Seconds Engine::Impl::rollback_timeout(const StageRun& s) const {
  const auto& own = spec(s).on_failure.rollback->timeout;
  return own ? *own : spec(s).gate.timeout;
}

void Engine::Impl::check_rollback(StageRun& s) {
  if (s.rollback_checking) return;
  s.rollback_checking = true;
  // Its timeout counts from its last call's answer: a resumed check goes on from there.
  s.rollback_sent_at = s.record.started_at.value_or(clock.now());
  for (const ApiCall* c : ledger(s, CallKind::rollback).all()) {
    if (c->outcome && went_through(*c->outcome))
      s.rollback_sent_at = std::max(s.rollback_sent_at, through_at(*c));
  }
  if (s.rollback_devices->empty()) {
    // None of the stage's devices had taken its update: there was nothing to send.
    return conclude_rollback(s, judge_rollback({}, false), rollback_timeout(s));
  }
  event(s.record.name, EventKind::rollback_check,
        fmt::format("the rollback's calls went through: reading its update on each of its {} "
                    "device(s), for up to {}",
                    s.rollback_devices->size(), format_duration(rollback_timeout(s))));
  poll_rollback(s);
}

void Engine::Impl::poll_rollback(StageRun& s) {
  if (finished || interrupted) return;  // a signal: the resume checks it again
  const dag::StageId id = s.id;
  engine::read_readings(
      api, spec(s).deploy_request(), *s.rollback_devices, rollback_marker(run_id, s.record.name),
      guarded([this, id](upswift::Result<std::vector<Reading>> r) {
        StageRun& st = stages[id];
        if (st.record.status != StageStatus::rolling_back || interrupted) return;
        const WallTime now = clock.now();
        const Seconds timeout = rollback_timeout(st);
        const bool timed_out = since(now, st.rollback_sent_at) >= timeout;
        if (r.ok()) note_rollback(st, *r.value, now);
        if (!r.ok()) {
          event(st.record.name, EventKind::error,
                "rollback check: could not read the devices' statuses: " + r.error.message);
          // Never read by its timeout: not known to have failed. The run stops for a person,
          // the stage still rolling back; a resume checks it again.
          if (timed_out && !st.rollback_seen) {
            return rollback_halted(st, fmt::format("its devices could not be read to check it "
                                                   "within {}: {}",
                                                   format_duration(timeout), r.error.message));
          }
        }
        // Never read at all by its timeout: every device is unfinished, as far as is known.
        const std::vector<Reading> unread(st.rollback_devices->size());
        const RollbackCheck check =
            judge_rollback(st.rollback_seen ? *st.rollback_seen : unread, timed_out);
        if (check.over) return conclude_rollback(st, check, timeout);
        st.timer = clock.schedule(
            std::chrono::duration_cast<Millis>(spec(st).gate.poll),
            [self = shared_from_this(), id] { self->poll_rollback(self->stages[id]); });
      }));
}

void Engine::Impl::note_rollback(StageRun& s, const std::vector<Reading>& readings, WallTime now) {
  const bool first = !s.rollback_seen;  // in this process: every row is written once
  if (first) {
    s.rollback_seen.emplace(readings.size());
    s.rollback_since.assign(readings.size(), now);
  }
  std::vector<std::size_t> changed;
  for (std::size_t i = 0; i < readings.size(); ++i) {
    Reading& seen = (*s.rollback_seen)[i];
    if (!first && seen == readings[i]) continue;
    if (seen.reached != readings[i].reached) s.rollback_since[i] = now;
    seen = readings[i];
    changed.push_back(i);
  }
  if (!changed.empty()) pending.rollback_rows.emplace_back(s.id, std::move(changed));
}

state::DeviceChanges Engine::Impl::rollback_device_rows(
    const StageRun& s, const std::vector<std::size_t>& changed) const {
  return {changed.size(), [&s, &changed](std::size_t k) {
            const std::size_t i = changed[k];
            state::DeviceState row;
            row.stage = state::rollback_key(s.record.name);
            row.uuid = (*s.rollback_devices)[i].uuid;
            row.update_id = (*s.rollback_seen)[i].update_id;
            row.status = (*s.rollback_seen)[i].reached;
            row.since = s.rollback_since[i];
            return row;
          }};
}

void Engine::Impl::conclude_rollback(StageRun& s, const RollbackCheck& check, Seconds timeout) {
  const std::vector<SnapshotDevice>& devices = *s.rollback_devices;
  const std::string more =
      fmt::format("rollout show {} --devices --stage {}", run_id, s.record.name);
  std::string summary =
      devices.empty() ? std::string("rollback: no device had taken the update, nothing was sent")
                      : fmt::format("rollback: {} of {} back on {}", check.back.size(),
                                    devices.size(), rollback_target(*spec(s).on_failure.rollback));
  if (!check.failed.empty()) {
    summary += fmt::format(", {} failed ({})", check.failed.size(),
                           name_devices(devices, check.failed, more));
  }
  if (!check.unfinished.empty()) {
    summary += fmt::format(", {} not finished within {} ({})", check.unfinished.size(),
                           format_duration(timeout), name_devices(devices, check.unfinished, more));
  }
  const bool back = check.failed.empty() && check.unfinished.empty();
  set_status(s, back ? StageStatus::rolled_back : StageStatus::rollback_failed);
  s.record.reason =
      fmt::format("{}{}{}", s.record.reason, s.record.reason.empty() ? "" : "; ", summary);
  s.record.finished_at = clock.now();
  save_stage(s);
  if (back) {
    event(s.record.name, EventKind::rolled_back, summary);
    if (stopping && stopping->ending != Ending::interrupted)
      stopping->reason += fmt::format("; stage {}'s {}", s.record.name, summary);
  } else {
    event(s.record.name, EventKind::rollback_failed,
          fmt::format("{}; send it again where it did not succeed with rollout retry {} {} "
                      "--rollback",
                      summary, run_id, s.record.name));
    // An alarm of its own: the run ends failed, whatever it was stopping for.
    const std::string why = fmt::format(
        "stage {}'s {}: send it again where it did not succeed with rollout retry {} {} "
        "--rollback",
        s.record.name, summary, run_id, s.record.name);
    if (stopping && stopping->ending == Ending::failed)
      stopping->reason += "; " + why;
    else
      stopping = Outcome{Ending::failed, stopping ? stopping->reason + "; " + why : why};
    stopping->next = fmt::format("rollout retry {} {} --rollback", run_id, s.record.name);
  }
  post_step();
}

}  // namespace rollout::engine
