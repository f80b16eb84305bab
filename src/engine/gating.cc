// A stage's gate: after dispatch, its devices are read at the gate's poll interval, each
// device's state that changed is recorded with the observation, and the gate's verdict
// (gate.h) decides: wait, pass, fail (on_failure), or the timeout's on_timeout.
#include <algorithm>
#include <set>
#include <unordered_map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "engine/engine_impl.h"
#include "util/time_text.h"

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

namespace {

// Adds `more` (ascending) to `changed` (ascending), each position once.
void add_changed(std::vector<std::size_t>& changed, const std::vector<std::size_t>& more) {
  if (more.empty()) return;
  std::vector<std::size_t> merged;
  merged.reserve(changed.size() + more.size());
  std::set_union(changed.begin(), changed.end(), more.begin(), more.end(),
                 std::back_inserter(merged));
  changed = std::move(merged);
}

void all_changed(std::vector<std::size_t>& changed, std::size_t devices) {
  changed.resize(devices);
  for (std::size_t i = 0; i < devices; ++i) changed[i] = i;
}

}  // namespace

void Engine::Impl::poll(StageRun& s) {
  if (stopping || finished) return;
  const dag::StageId id = s.id;
  engine::read_readings(
      api, spec(s).deploy_request(), *s.snapshot, dispatch_marker(run_id, s.record.name),
      guarded([this, id](upswift::Result<std::vector<Reading>> r) {
        StageRun& st = stages[id];
        // Failed meanwhile (abort_when, through another stage's poll): judged already.
        if (st.record.status != StageStatus::gating) return;
        const plan::Gate& gate = spec(st).gate;
        const WallTime now = clock.now();
        const Millis elapsed = since(now, *st.record.dispatched_at);
        if (!r.ok()) {
          event(st.record.name, EventKind::error,
                "could not read device statuses: " + r.error.message);
          if (elapsed >= std::chrono::duration_cast<Millis>(gate.timeout)) {
            on_verdict(st,
                       {Verdict::timeout, "device statuses could not be read: " + r.error.message},
                       elapsed);
          } else {
            schedule_poll(st, std::chrono::duration_cast<Millis>(gate.poll));
          }
          return;
        }
        PollRead read{std::move(*r.value), now, elapsed, {}, false};
        read.changed = note_devices(st, read.readings, now);
        const bool any_under_way = std::any_of(st.seen->begin(), st.seen->end(), [](const Seen& d) {
          return under_way(d.reached, d.started);
        });
        // A device can be lost only while its update is under way: only then are the
        // devices' online states read at a poll.
        if (!any_under_way) return judge_poll(st, std::move(read));
        // Only the groups that hold devices whose updates are under way.
        auto groups = under_way_groups(st, read.online_whole);
        read_presence(
            st, std::move(groups),
            guarded([this, id, read = std::move(read)](upswift::Result<Presence> online) mutable {
              StageRun& stage = stages[id];
              if (stage.record.status != StageStatus::gating) return;
              take_presence(stage, online, read, /*all=*/false);
              judge_poll(stage, std::move(read));
            }));
      }));
}

void Engine::Impl::judge_poll(StageRun& s, PollRead read) {
  note_lost(s, read);
  const StatusCounts counts = tally(read.readings);
  const auto targeted = static_cast<std::int64_t>(s.snapshot->size());
  Judgement j = judge(spec(s).gate, targeted, counts, read.elapsed);
  if (counts.lost > 0) j.reason += "; " + lost_devices(s, read.readings);
  if (j.verdict == Verdict::pass) hold_for_offline(s, read, counts, j);
  s.counts = counts;
  check_abort_when(s, j);
  if (j.verdict == Verdict::wait || counts.success == targeted)
    return record_poll(s, j, counts, read.elapsed, read.now, read.changed);
  // A decision with devices that did not succeed: which of them are online is the
  // operator's next question, so it is kept with the decision (read now, unless this poll
  // read every group of the stage already).
  if (read.online_read && read.online_whole) {
    all_changed(read.changed, s.snapshot->size());
    return record_poll(s, j, counts, read.elapsed, read.now, read.changed);
  }
  const dag::StageId id = s.id;
  read_presence(s, std::nullopt,
                guarded([this, id, j, counts,
                         read = std::move(read)](upswift::Result<Presence> online) mutable {
                  StageRun& stage = stages[id];
                  if (stage.record.status != StageStatus::gating) return;
                  take_presence(stage, online, read, /*all=*/true);
                  record_poll(stage, j, counts, read.elapsed, read.now, read.changed);
                }));
}

void Engine::Impl::take_presence(StageRun& s, const upswift::Result<Presence>& online,
                                 PollRead& read, bool all) {
  if (!online.ok()) {
    event(s.record.name, EventKind::error,
          "could not read which devices are online: " + online.error.message);
    return;
  }
  note_online(s, *online.value, read.now, read.changed, all);
  read.online_read = true;
}

void Engine::Impl::note_lost(StageRun& s, PollRead& read) {
  const plan::Gate& gate = spec(s).gate;
  const WallTime dispatched = *s.record.dispatched_at;
  std::vector<std::size_t> more;
  for (std::size_t i = 0; i < read.readings.size(); ++i) {
    Seen& seen = (*s.seen)[i];
    // Without a fresh reading of its online state, a device stays as it was judged.
    const bool lost = read.online_read
                          ? is_lost(gate, seen.reached, seen.started, seen.online,
                                    seen.online_last.value_or(dispatched), read.now)
                          : seen.lost_at.has_value() && under_way(seen.reached, seen.started);
    read.readings[i].lost = lost;
    if (lost == seen.lost_at.has_value()) continue;
    if (lost) {
      seen.lost_at = read.now;
      event(s.record.name, EventKind::device_lost,
            fmt::format("{}: its update {}, the device offline, {} (lost_after {})",
                        describe_device((*s.snapshot)[i]), state::name(seen.reached),
                        seen.online_last
                            ? "last known online at " + iso_time(*seen.online_last)
                            : "not known online since the dispatch at " + iso_time(dispatched),
                        format_duration(gate.lost_after)));
    } else {
      seen.lost_at.reset();
      event(s.record.name, EventKind::device_back,
            fmt::format("{}: no longer lost ({}{})", describe_device((*s.snapshot)[i]),
                        seen.online == 1 ? "online again, " : "", state::name(seen.reached)));
    }
    more.push_back(i);
  }
  add_changed(read.changed, more);
}

std::string Engine::Impl::lost_devices(const StageRun& s,
                                       const std::vector<Reading>& readings) const {
  std::vector<std::size_t> lost;
  for (std::size_t i = 0; i < readings.size(); ++i) {
    if (readings[i].lost) lost.push_back(i);
  }
  return "lost: " + name_devices(s, lost, "lost");
}

std::string Engine::Impl::name_devices(const StageRun& s, const std::vector<std::size_t>& at,
                                       std::string_view status) const {
  return name_devices(*s.snapshot, at,
                      fmt::format("rollout show {} --devices --stage {} --status {}", run_id,
                                  s.record.name, status));
}

std::string Engine::Impl::name_devices(const std::vector<SnapshotDevice>& devices,
                                       const std::vector<std::size_t>& at,
                                       const std::string& more) const {
  constexpr std::size_t kNamed = 10;
  std::string out;
  for (std::size_t k = 0; k < at.size() && k < kNamed; ++k)
    out += fmt::format("{}{}", k ? ", " : "", describe_device(devices[at[k]]));
  if (at.size() > kNamed) out += fmt::format(" and {} more ({})", at.size() - kNamed, more);
  return out;
}

// A gate that would pass while devices are offline with their updates under way, not lost
// yet: each may be a device the update bricked, declared lost once lost_after has passed.
// Where that could change the verdict (more lost than max_lost, or abort_when counts lost
// devices), the gate waits until each is back or lost. A pass names the devices still
// updating.
void Engine::Impl::hold_for_offline(const StageRun& s, const PollRead& read,
                                    const StatusCounts& counts, Judgement& j) {
  const plan::Gate& gate = spec(s).gate;
  std::vector<std::size_t> dark, updating;
  for (std::size_t i = 0; i < read.readings.size(); ++i) {
    const Seen& seen = (*s.seen)[i];
    if (read.readings[i].lost || !under_way(seen.reached, seen.started)) continue;
    updating.push_back(i);
    if (seen.online == 0) dark.push_back(i);
  }
  const auto targeted = static_cast<std::int64_t>(s.snapshot->size());
  const bool could_fail =
      counts.lost + static_cast<std::int64_t>(dark.size()) > allowed_lost(gate, targeted) ||
      (plan.abort_when && plan.abort_when->lost);
  if (!dark.empty() && could_fail) {
    j = {Verdict::wait,
         fmt::format("would pass, but {} device(s) went offline with the update under way and "
                     "are lost if not back within lost_after {}: {}; waiting until each is back "
                     "or lost",
                     dark.size(), format_duration(gate.lost_after),
                     name_devices(s, dark, "in_progress"))};
    return;
  }
  if (!updating.empty())
    j.reason += fmt::format("; still updating when it passed: {}",
                            name_devices(s, updating, "in_progress"));
}

void Engine::Impl::check_abort_when(StageRun& s, Judgement& j) {
  if (!plan.abort_when || abort_when_met) return;
  if (!abort_counts_loaded) {  // after a resume: the stages' counts as last recorded
    abort_counts_loaded = true;
    flush();
    for (const state::Observation& o : store.load_observations(run_id)) {
      for (StageRun& other : stages) {
        if (other.record.name != o.stage || other.id == s.id) continue;
        other.counts = StatusCounts{o.pending, o.in_progress, o.success, o.failed,
                                    o.aborted, o.missing,     o.lost};
      }
    }
  }
  std::int64_t targeted = 0;
  StatusCounts sum;
  for (const StageRun& other : stages) {
    if (!other.record.dispatched_at) continue;
    if (other.counts) {
      targeted += other.counts->total();
      sum += *other.counts;
    } else if (other.snapshot) {
      targeted += static_cast<std::int64_t>(other.snapshot->size());
    }
  }
  auto reason = abort_criterion_met(*plan.abort_when, targeted, sum);
  if (!reason) return;
  // Where the devices that tripped it are: the stages with failed or lost devices.
  std::vector<std::string> where;
  for (const StageRun& other : stages) {
    if (!other.record.dispatched_at || !other.counts) continue;
    const StatusCounts& c = *other.counts;
    std::vector<std::string> parts;
    if (c.failed + c.aborted > 0) parts.push_back(fmt::format("{} failed", c.failed + c.aborted));
    if (c.lost > 0) parts.push_back(fmt::format("{} lost", c.lost));
    if (!parts.empty())
      where.push_back(fmt::format("{} {}", other.record.name, fmt::join(parts, ", ")));
  }
  if (!where.empty()) *reason += fmt::format(" (in {})", fmt::join(where, "; "));
  abort_when_met = true;
  // The run stops for the criterion, not for the first stage it fails.
  if (!stopping) stopping = Outcome{Ending::stopped, *reason};
  event("", EventKind::abort_criteria,
        *reason + "; no new stage starts, the stages in flight fail");
  j = {Verdict::fail, *reason + "; " + j.reason};
  for (StageRun& other : stages) {
    if (other.id == s.id || other.record.status != StageStatus::gating) continue;
    other.timer.cancel();
    event(other.record.name, EventKind::stage_failed, *reason);
    stage_failed(other, *reason, /*dispatched=*/true);
  }
}

std::optional<std::vector<std::string>> Engine::Impl::under_way_groups(const StageRun& s,
                                                                       bool& whole) const {
  std::set<std::string> wanted, all;
  for (std::size_t i = 0; i < s.snapshot->size(); ++i) {
    const Seen& seen = (*s.seen)[i];
    all.insert((*s.snapshot)[i].group);
    if (under_way(seen.reached, seen.started)) wanted.insert((*s.snapshot)[i].group);
  }
  whole = wanted == all;
  // A device without a group can only be found in the stage's own listing; so can all of a
  // stage's devices when every group of them is wanted.
  if (wanted.count("") || (whole && !spec(s).groups.empty())) {
    whole = true;
    return std::nullopt;
  }
  return std::vector<std::string>(wanted.begin(), wanted.end());
}

void Engine::Impl::read_presence(StageRun& s, std::optional<std::vector<std::string>> groups,
                                 std::function<void(upswift::Result<Presence>)> done) {
  if (!s.index) s.index.emplace(*s.snapshot);
  read_online(api, spec(s).project, groups ? *groups : spec(s).groups, *s.snapshot, *s.index,
              std::move(done));
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
          static_cast<std::int8_t>(!d.online ? -1 : *d.online == state::Online::online),
          d.online_at,
          d.started,
          d.online_last,
          d.lost_at};
    }
  }
  // A device whose update started since the last poll took it from Upswift after that poll:
  // it was online then, whatever a read of its online state says later.
  const WallTime before = s.last_poll.value_or(*s.record.dispatched_at);
  s.last_poll = now;
  std::vector<std::size_t> changed;
  for (std::size_t i = 0; i < devices.size(); ++i) {
    Seen& seen = (*s.seen)[i];
    if (seen.known && seen.reached == readings[i].reached &&
        seen.update_id == readings[i].update_id)
      continue;
    seen.known = true;
    if (readings[i].reached == Reached::in_progress && !seen.started) {
      seen.started = true;
      if (!seen.online_last || *seen.online_last < before) seen.online_last = before;
    }
    seen.reached = readings[i].reached;
    seen.update_id = readings[i].update_id;
    seen.since = now;
    changed.push_back(i);
  }
  return changed;
}

// Each device's online state as read: at a decision (`all`) every device is then to record;
// at a poll, the devices whose online state changed.
void Engine::Impl::note_online(StageRun& s, const Presence& online, WallTime now,
                               std::vector<std::size_t>& changed, bool all) {
  const std::vector<SnapshotDevice>& devices = *s.snapshot;
  commit_observations(s);
  std::vector<std::size_t> more;
  for (std::size_t i = 0; i < devices.size(); ++i) {
    Seen& seen = (*s.seen)[i];
    const std::int8_t state = online[i];
    // A poll reads only the groups of the updates under way: the others keep what was known.
    if (!all && state < 0) continue;
    if (state != seen.online) more.push_back(i);
    seen.online = state;
    seen.online_at = now;
    if (state == 1) seen.online_last = now;
  }
  if (all)
    all_changed(changed, devices.size());
  else
    add_changed(changed, more);
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
            if (seen.online >= 0)
              row.online = seen.online ? state::Online::online : state::Online::offline;
            row.online_at = seen.online_at;
            row.online_last = seen.online_last;
            row.lost_at = seen.lost_at;
            row.started = seen.started;
            return row;
          }};
}

void Engine::Impl::record_poll(StageRun& s, const Judgement& j, const StatusCounts& counts,
                               Millis elapsed, WallTime now,
                               const std::vector<std::size_t>& changed) {
  observe(s, now, elapsed, counts, j, changed);
  on_verdict(s, j, elapsed);
}

void Engine::Impl::observe(const StageRun& s, WallTime now, Millis elapsed,
                           const StatusCounts& counts, const Judgement& j,
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
                       j.reason,
                       counts.lost};
  pending.observations.push_back({o, s.id, changed});
  notify([this, o] { observer.on_observation(o); });
}

void Engine::Impl::on_verdict(StageRun& s, const Judgement& j, Millis elapsed) {
  const plan::Gate& gate = spec(s).gate;
  switch (j.verdict) {
    case Verdict::wait:
      return schedule_poll(s, next_poll(gate, elapsed));
    case Verdict::pass:
      event(s.record.name, EventKind::stage_passed, j.reason);
      return set_stage(s, StageStatus::passed, j.reason);
    case Verdict::fail:
      event(s.record.name, EventKind::stage_failed, j.reason);
      return stage_failed(s, j.reason, /*dispatched=*/true);
    case Verdict::timeout:
      switch (gate.on_timeout) {
        case plan::OnTimeout::pass:
          event(s.record.name, EventKind::stage_passed, "on_timeout pass: " + j.reason);
          return set_stage(s, StageStatus::passed, "on_timeout pass: " + j.reason);
        case plan::OnTimeout::fail:
          event(s.record.name, EventKind::stage_failed, "on_timeout fail: " + j.reason);
          return stage_failed(s, "on_timeout fail: " + j.reason, true);
        case plan::OnTimeout::pause:
          event(s.record.name, EventKind::stage_paused,
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
