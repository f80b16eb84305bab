// A run's life in one process: started or resumed from its records, kept alive by its
// lease's heartbeat, stopped by an abort, a signal, a failed stage or its end. And the
// bookkeeping every job shares: events, stage records, crash points.
#include <algorithm>
#include <map>
#include <utility>

#include <fmt/format.h>

#include "engine/engine_impl.h"
#include "util/safe_text.h"

namespace rollout::engine {

namespace {

std::string abort_reason(const state::AbortRequest& request) {
  return fmt::format("aborted by {}{}", request.by,
                     request.rollback ? ", who asked for a rollback" : "");
}

state::RunStatus run_status(Ending ending, bool aborted) {
  switch (ending) {
    case Ending::completed:
      return state::RunStatus::completed;
    case Ending::stopped:
      return aborted ? state::RunStatus::aborted : state::RunStatus::stopped;
    case Ending::paused:
      return state::RunStatus::paused;
    case Ending::interrupted:
      return state::RunStatus::interrupted;
    case Ending::failed:
      return state::RunStatus::failed;
  }
  return state::RunStatus::failed;
}

}  // namespace

// Messages carry what servers sent (device names, Upswift's words): one line of valid UTF-8
// without control characters, wherever they are stored, printed or sent.
void Engine::Impl::event(const std::string& stage, EventKind kind, const std::string& message) {
  state::Event e{0, run_id, clock.now(), stage, kind, printable(message)};
  pending.events.push_back(e);
  notify([this, e = std::move(e)] { observer.on_event(e); });
}

std::vector<std::int64_t> Engine::Impl::flush(const std::vector<ApiCall>& intents, bool heartbeat) {
  Pending p = std::exchange(pending, {});
  state::WriteBatch batch;
  batch.run_id = run_id;
  batch.snapshots = std::move(p.snapshots);
  batch.intents = intents;
  batch.outcomes = std::move(p.outcomes);
  for (const PendingObservation& o : p.observations)
    batch.observations.emplace_back(o.o, device_rows(stages[o.stage], o.changed));
  for (const auto& [id, changed] : p.rollback_rows)
    batch.device_states.emplace_back(state::rollback_key(stages[id].record.name),
                                     rollback_device_rows(stages[id], changed));
  for (dag::StageId id : p.stages) batch.stages.push_back(stages[id].record);
  batch.events = std::move(p.events);
  batch.run_status = std::move(p.run_status);
  if (heartbeat) batch.heartbeat.emplace(options.owner, options.wall_clock());
  if (batch.empty()) return {};
  const std::vector<std::int64_t> ids = store.write(batch);
  // The crash points name what has just become durable, once for each record: the n-th
  // outcome is the n-th however many answers shared its transaction.
  const auto reached = [this](std::string_view point, std::size_t records) {
    for (std::size_t i = 0; i < records; ++i) crash_point(point);
  };
  reached("after_snapshot", batch.snapshots.size());
  if (!intents.empty()) {
    reached(intents.front().kind == CallKind::rollback ? "after_rollback_intent" : "after_intent",
            intents.size());
  }
  reached("after_outcome", batch.outcomes.size());
  reached("after_observation", batch.observations.size());
  for (auto& notice : p.notices) notice();
  return ids;
}

void Engine::Impl::crash_point(std::string_view point) {
  if (options.crash_point) options.crash_point(point);
}

// Every change of a stage's status goes through here, which keeps the frontier.
void Engine::Impl::set_status(StageRun& s, StageStatus status) {
  s.record.status = status;
  if (status == StageStatus::passed) {
    frontier->pass(s.id);
  } else {
    frontier->unpass(s.id);  // rolled back after it had passed, if it had
  }
}

void Engine::Impl::set_stage(StageRun& s, StageStatus status, const std::string& reason) {
  set_status(s, status);
  s.record.reason = printable(reason);
  const WallTime now = clock.now();
  if (!s.record.started_at && status != StageStatus::waiting &&
      status != StageStatus::awaiting_approval)
    s.record.started_at = now;
  if (is_terminal(status)) s.record.finished_at = now;
  save_stage(s);
}

void Engine::Impl::save_stage(const StageRun& s) {
  if (std::find(pending.stages.begin(), pending.stages.end(), s.id) == pending.stages.end())
    pending.stages.push_back(s.id);
  notify([this, record = s.record, at = clock.now()] { observer.on_stage(record, at); });
}

void Engine::Impl::start(std::function<void(Outcome)> on_done) {
  done = std::move(on_done);
  auto records = store.load_stages(run_id);
  std::map<std::string, StageRecord> by_name;
  for (auto& r : records) by_name[r.name] = r;
  std::vector<bool> passed, started;
  for (dag::StageId id = 0; id < plan.stages.size(); ++id) {
    StageRun s;
    s.id = id;
    auto it = by_name.find(plan.stages[id].name);
    if (it == by_name.end())
      throw std::runtime_error("state database has no record of stage " + plan.stages[id].name);
    s.record = it->second;
    s.snapshot = store.load_snapshot(run_id, s.record.name);
    while (auto targets = store.load_snapshot(run_id, retry_key(s.record.name, s.retry + 1))) {
      s.retry += 1;
      s.retry_targets = std::move(targets);
    }
    passed.push_back(is_done(s));
    started.push_back(s.record.status != StageStatus::waiting);
    stages.push_back(std::move(s));
  }
  frontier.emplace(graph, passed, started);
  pending.run_status = state::RunStatusChange{state::RunStatus::running, "", clock.now(), false};
  // A run that had begun to stop keeps stopping, for the reason it began to: an operator's
  // abort, or a stage that failed.
  const auto request = store.abort_request(run_id);
  if (request) {
    aborted = true;
    stopping = Outcome{Ending::stopped, abort_reason(*request)};
    roll_back_in_flight = request->rollback;
  }
  for (StageRun& s : stages) {
    const StageStatus st = s.record.status;
    const bool failed = st == StageStatus::failed || st == StageStatus::rolled_back ||
                        st == StageStatus::rolling_back || st == StageStatus::rollback_failed;
    if (failed && spec(s).on_failure.action == plan::FailureAction::rollback)
      failed_with_rollback(s);
    // Its rollback failed on some devices: the run ends failed until it is sent again there.
    if (st == StageStatus::rollback_failed && (!stopping || stopping->ending != Ending::failed)) {
      stopping = Outcome{Ending::failed,
                         fmt::format("stage {}: {}; send the rollback again where it did not "
                                     "succeed with rollout retry {} {} --rollback",
                                     s.record.name, s.record.reason, run_id, s.record.name),
                         fmt::format("rollout retry {} {} --rollback", run_id, s.record.name)};
    }
    if (!stopping && failed) {
      stopping = Outcome{Ending::stopped,
                         fmt::format("stage {} failed: {}", s.record.name, s.record.reason)};
    }
  }
  // A stage that was mid-way when the last process stopped picks up where it was.
  for (StageRun& s : stages) {
    const StageStatus st = s.record.status;
    if (stopping && st != StageStatus::rolling_back) continue;
    if (st == StageStatus::dispatching) resume_dispatch(s);
    if (st == StageStatus::gating) schedule_poll(s, Millis{0});
    if (st == StageStatus::rolling_back) rollback(s);
  }
  // An abort requested while no process ran the run is carried out now, once: stages
  // already rolling back above are not started twice.
  if (request && !abort_handled) carry_out_abort(*request);
  beat();
  post_step();
}

void Engine::Impl::beat() {
  flush({}, /*heartbeat=*/true);
  // Abort requests and pauses come from another process through the store: read on the
  // heartbeat, not on every step, so a busy run does not query for them between every two
  // calls.
  if (!stopping) {
    check_abort();
    check_pause();
  }
  heartbeat_timer = clock.schedule(options.heartbeat, [self = shared_from_this()] {
    if (self->finished) return;
    self->beat();
    self->post_step();  // picks up abort requests
  });
}

void Engine::Impl::check_pause() {
  auto now = store.pause_request(run_id);
  if (now && !pause) {
    event("", EventKind::pause,
          fmt::format("paused by {}{}: no new stage starts, the gates under way go on; rollout "
                      "resume {} lets it go on",
                      now->by, now->comment.empty() ? "" : " (" + now->comment + ")", run_id));
  } else if (!now && pause) {
    event("", EventKind::pause_lifted, "the pause was lifted: stages start again");
  }
  pause = std::move(now);
}

void Engine::Impl::check_abort() {
  if (abort_handled) return;
  if (auto request = store.abort_request(run_id)) carry_out_abort(*request);
}

// Once per process: the stages that were dispatched and are not rolled back (or rolling
// back already) roll back, when asked for and the plan has a rollback flow.
void Engine::Impl::carry_out_abort(const state::AbortRequest& request) {
  abort_handled = true;
  event("", EventKind::abort,
        fmt::format("abort requested by {}{}", request.by,
                    request.rollback ? ", with rollback" : ""));
  if (request.rollback && std::none_of(stages.begin(), stages.end(), [this](const StageRun& s) {
        return spec(s).on_failure.rollback.has_value();
      })) {
    event("", EventKind::abort, "the plan has no on_failure.rollback flow: nothing is rolled back");
  }
  if (request.rollback) {
    for (StageRun& s : stages) {
      if (spec(s).on_failure.rollback && s.record.dispatched_at &&
          s.record.status != StageStatus::rolled_back &&
          s.record.status != StageStatus::rollback_failed && !s.rollback_started) {
        // Its reason is now the abort, not its gate's old verdict.
        s.record.reason = abort_reason(request);
        rollback(s);
      }
    }
  }
  stopping = Outcome{Ending::stopped, abort_reason(request)};
  aborted = true;
  if (request.rollback) roll_back_in_flight = true;
}

void Engine::Impl::finish(Outcome outcome) {
  if (finished) return;
  const auto unknown = unsettled_calls();
  // A signal that came when nothing was left to settle or roll back ends nothing early.
  if (outcome.ending == Ending::interrupted && before_signal && !unknown && !rollback_under_way())
    outcome = *before_signal;
  // Never a terminal run with an outcome unknown: it stays resumable, and the resume settles it.
  if (unknown && is_final(run_status(outcome.ending, aborted))) {
    outcome = {Ending::interrupted,
               fmt::format("{}; the outcome of {} is not known yet: continue with rollout resume "
                           "{}, which settles it first",
                           outcome.reason, *unknown, run_id)};
  }
  finished = true;
  heartbeat_timer.cancel();
  approval_timer.cancel();
  for (StageRun& s : stages) s.timer.cancel();
  const state::RunStatus status = run_status(outcome.ending, aborted);
  const bool final_state = is_final(status);
  if (final_state) {
    for (StageRun& s : stages) {
      if (!is_terminal(s.record.status) && s.record.status != StageStatus::waiting)
        set_stage(s, StageStatus::stopped, "the run stopped");
    }
  }
  // A rollback of what the run did not prove leaves the stages that passed on the new version:
  // said, with the command that rolls them back too.
  if (status != state::RunStatus::interrupted && status != state::RunStatus::paused &&
      std::any_of(stages.begin(), stages.end(), [](const StageRun& s) {
        return s.record.status == StageStatus::rolled_back ||
               s.record.status == StageStatus::rollback_failed;
      })) {
    std::vector<std::string> kept;
    for (const StageRun& s : stages) {
      if (s.record.status == StageStatus::passed && s.record.dispatched_at)
        kept.push_back(s.record.name);
    }
    if (!kept.empty()) {
      std::string names;
      for (std::size_t i = 0; i < kept.size(); ++i)
        names += (i == 0 ? "" : i + 1 == kept.size() ? " and " : ", ") + kept[i];
      outcome.reason += fmt::format(
          "; {} {} the new version (rollout abort {} --rollback rolls {} back too)", names,
          kept.size() == 1 ? "keeps" : "keep", run_id, kept.size() == 1 ? "it" : "them");
    }
  }
  outcome.reason = printable(outcome.reason);
  event("", state::run_ended(status), outcome.reason);
  // Last, so that the run's updated_at is its latest record's time: a resumed or retried
  // time-scaled run goes on from there, never before it.
  const WallTime at = clock.now();
  pending.run_status = state::RunStatusChange{status, outcome.reason, at, final_state};
  flush();
  store.release_lease(run_id, options.owner);
  observer.on_run(status, outcome.reason, at);
  auto callback = std::move(done);
  if (callback) callback(outcome);
}

void Engine::Impl::interrupt() {
  if (finished || interrupted) return;
  interrupted = true;
  event("", EventKind::interrupt,
        "signal received: starting nothing new, waiting for calls in flight");
  // A run stopping already (a failed stage rolling back, a settle) stops now, resumable.
  before_signal = stopping;
  stopping = Outcome{Ending::interrupted,
                     fmt::format("{}interrupted by a signal; continue with rollout resume {}",
                                 before_signal ? before_signal->reason + "; " : "", run_id)};
  // Reads have no outcome to record: they end now. A deploy_update in flight is waited for
  // (its timeout bounds it) and its outcome recorded.
  api.cancel_reads();
  post_step();
}

void Engine::Impl::fail_run(const std::string& reason) {
  if (!stopping) stopping = Outcome{Ending::failed, reason};
}

// Upswift refused the call, or it never got through: a person has to look. The stage stays
// where it was, dispatching, with the reason: once the cause is fixed, a resume sends it
// again (nothing of it was applied), which a failed stage could not.
void Engine::Impl::stage_error(StageRun& s, const std::string& message) {
  event(s.record.name, EventKind::error, message);
  set_stage(s, s.record.status, message);
  fail_run(fmt::format("stage {}: {}; fix the cause, then continue with rollout resume {}",
                       s.record.name, message, run_id));
}

void Engine::Impl::failed_with_rollback(const StageRun& s) {
  roll_back_in_flight = true;
  if (spec(s).on_failure.scope == plan::RollbackScope::run) roll_back_run = true;
  if (spec(s).ramp) failed_ramps.insert(spec(s).ramp->stage);
}

void Engine::Impl::stage_failed(StageRun& s, const std::string& reason, bool dispatched) {
  if (dispatched && spec(s).on_failure.action == plan::FailureAction::rollback &&
      spec(s).on_failure.rollback) {
    // One write: a crash right here resumes into the rollback, never past it.
    set_stage(s, StageStatus::rolling_back, reason);
    failed_with_rollback(s);
    // The first cause stands (abort_when, a sibling that failed first).
    if (!stopping)
      stopping =
          Outcome{Ending::stopped, fmt::format("stage {} failed: {}", s.record.name, reason)};
    rollback(s);
    return;
  }
  set_stage(s, StageStatus::failed, reason);
  if (!stopping)
    stopping = Outcome{Ending::stopped, fmt::format("stage {} failed: {}", s.record.name, reason)};
}

}  // namespace rollout::engine
