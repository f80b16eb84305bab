#include "engine/engine.h"

#include <algorithm>
#include <map>
#include <set>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

#include "engine/gate.h"
#include "engine/run.h"
#include "engine/selection.h"
#include "plan/calendar.h"
#include "util/safe_text.h"

namespace rollout::engine {

using state::ApiCall;
using state::SnapshotDevice;
using state::StageRecord;

std::string_view name(Ending e) {
  switch (e) {
    case Ending::completed:
      return "completed";
    case Ending::stopped:
      return "stopped";
    case Ending::paused:
      return "paused";
    case Ending::interrupted:
      return "interrupted";
    case Ending::failed:
      return "failed";
  }
  return "failed";
}

std::string dispatch_marker(const std::string& run_id, const std::string& stage) {
  return fmt::format("[rollout {}/{}]", run_id, stage);
}

std::string rollback_marker(const std::string& run_id, const std::string& stage) {
  return fmt::format("[rollout {}/{}/rollback]", run_id, stage);
}

namespace {

std::string with_marker(const std::optional<std::string>& comment, const std::string& marker) {
  return comment ? fmt::format("{} {}", *comment, marker) : marker;
}

Millis since(WallTime later, WallTime earlier) {
  return std::chrono::duration_cast<Millis>(later - earlier);
}

bool dynamic_selection(const upswift::DeployRequest& r) {
  return std::any_of(r.filters.begin(), r.filters.end(), [](const upswift::Filter& f) {
    return f.type == upswift::FilterType::update_status ||
           f.type == upswift::FilterType::device_state;
  });
}

}  // namespace

struct Engine::Impl : std::enable_shared_from_this<Engine::Impl> {
  // What a stage's gate last saw of one device: a few bytes, whatever the fleet's size.
  struct Seen {
    bool known = false;
    Reached reached = Reached::unlisted;
    std::int64_t update_id = 0;
    WallTime since{};
    std::int8_t online = -1;  // -1: not read, 0: offline, 1: online
    std::optional<WallTime> online_at;
  };

  struct StageRun {
    dag::StageId id = 0;
    StageRecord record;
    std::optional<std::vector<SnapshotDevice>> snapshot;
    int retry = 0;  // the latest `rollout retry` of the stage, and the devices it targets
    std::optional<std::vector<SnapshotDevice>> retry_targets;
    TimerHandle timer;
    bool window_wait = false;  // ready, but outside its windows or in a freeze: a timer wakes it
    bool rollback_started = false;  // in this process: a second start would send it twice
    // What its gate last saw of each device (snapshot order), and since when: a poll
    // writes only the devices that changed. Loaded from the store at the first poll.
    std::optional<std::vector<Seen>> seen;
  };

  Impl(asio::io_context& io_context, const plan::Plan& p, const dag::Graph& g, upswift::FleetApi& a,
       state::StateStore& s, Clock& c, Observer& o, std::string id, EngineOptions opts)
      : io(io_context),
        plan(p),
        graph(g),
        api(a),
        store(s),
        clock(c),
        observer(o),
        run_id(std::move(id)),
        options(std::move(opts)) {}

  asio::io_context& io;
  const plan::Plan& plan;
  const dag::Graph& graph;
  upswift::FleetApi& api;
  state::StateStore& store;
  Clock& clock;
  Observer& observer;
  std::string run_id;
  EngineOptions options;

  std::vector<StageRun> stages;
  std::set<std::int64_t> own_calls;  // the calls this process wrote ahead and sent
  bool interrupted = false;          // a signal: waits for settling and rollbacks end at resume
  // The frontier: the stages not passed whose needs have all passed, or which were under
  // way when the run was resumed, by position in graph.order. A step looks at these only,
  // so its cost follows the stages in play, not the size of the plan.
  std::set<std::size_t> frontier;
  std::vector<std::size_t> position;  // stage -> its position in graph.order
  std::vector<int> unmet;             // per stage: its needs not passed (never more than that)
  std::size_t passed = 0;
  std::function<void(Outcome)> done;
  int in_flight = 0;  // API calls under way
  bool step_posted = false;
  bool finished = false;
  bool aborted = false;
  bool abort_handled = false;       // an abort request is carried out once per process
  std::optional<Outcome> stopping;  // set once the run must end; waits for calls in flight
  TimerHandle heartbeat_timer;
  TimerHandle approval_timer;

  // ---- bookkeeping -------------------------------------------------------------------

  // Messages carry what servers sent (device names, Upswift's words): one line of valid
  // UTF-8 without control characters, wherever they are stored, printed or sent.
  void event(const std::string& stage, const std::string& kind, const std::string& message) {
    state::Event e{0, run_id, clock.now(), stage, kind, printable(message)};
    store.add_event(e);
    observer.on_event(e);
  }

  void crash_point(std::string_view point) {
    if (options.crash_point) options.crash_point(point);
  }

  // Every change of a stage's status goes through here, which keeps the frontier.
  void set_status(StageRun& s, const std::string& status) {
    const bool was_passed = is_done(s);
    s.record.status = status;
    if (was_passed == is_done(s)) return;
    if (was_passed) {  // rolled back after it had passed
      --passed;
      frontier.insert(position[s.id]);
      return;
    }
    ++passed;
    for (dag::StageId d : graph.dependents[s.id]) {
      if (--unmet[d] == 0) frontier.insert(position[d]);
    }
  }

  void set_stage(StageRun& s, const std::string& status, const std::string& reason = {}) {
    set_status(s, status);
    s.record.reason = printable(reason);
    const WallTime now = clock.now();
    if (!s.record.started_at && status != "waiting" && status != "awaiting_approval")
      s.record.started_at = now;
    if (status == "passed" || status == "failed" || status == "rolled_back" ||
        status == "stopped") {
      s.record.finished_at = now;
    }
    save_stage(s);
  }

  void save_stage(const StageRun& s) {
    store.update_stage(s.record);
    observer.on_stage(s.record);
  }

  const plan::Stage& spec(const StageRun& s) const { return plan.stages[s.id]; }

  bool is_done(const StageRun& s) const { return s.record.status == "passed"; }
  bool is_terminal(const StageRun& s) const {
    return s.record.status == "passed" || s.record.status == "failed" ||
           s.record.status == "rolled_back" || s.record.status == "stopped";
  }
  bool is_active(const StageRun& s) const {
    return s.record.status == "dispatching" || s.record.status == "gating";
  }

  // Calls into the API are counted so that an interrupt can wait for their outcomes.
  template <typename Handler>
  auto guarded(Handler h) {
    ++in_flight;
    return [self = shared_from_this(), h = std::move(h)](auto result) mutable {
      --self->in_flight;
      if (self->finished) return;
      h(std::move(result));
      self->post_step();
    };
  }

  // ---- the main loop -----------------------------------------------------------------

  void start(std::function<void(Outcome)> on_done) {
    done = std::move(on_done);
    auto records = store.load_stages(run_id);
    std::map<std::string, StageRecord> by_name;
    for (auto& r : records) by_name[r.name] = r;
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
      stages.push_back(std::move(s));
    }
    position.resize(stages.size());
    for (std::size_t i = 0; i < graph.order.size(); ++i) position[graph.order[i]] = i;
    unmet.assign(stages.size(), 0);
    for (const StageRun& s : stages) {
      for (dag::StageId need : graph.needs[s.id]) unmet[s.id] += is_done(stages[need]) ? 0 : 1;
      if (is_done(s)) {
        ++passed;
      } else if (unmet[s.id] == 0 || s.record.status != "waiting") {
        frontier.insert(position[s.id]);
      }
    }
    store.set_run_status(run_id, "running", "", clock.now(), false);
    // A run that had begun to stop keeps stopping, for the reason it began to: an
    // operator's abort, or a stage that failed.
    const auto request = store.abort_request(run_id);
    if (request) {
      aborted = true;
      stopping = Outcome{Ending::stopped, abort_reason(*request)};
    }
    for (StageRun& s : stages) {
      if (!stopping && (s.record.status == "failed" || s.record.status == "rolled_back" ||
                        s.record.status == "rolling_back")) {
        stopping = Outcome{Ending::stopped,
                           fmt::format("stage {} failed: {}", s.record.name, s.record.reason)};
      }
    }
    // A stage that was mid-way when the last process stopped picks up where it was.
    for (StageRun& s : stages) {
      if (stopping && s.record.status != "rolling_back") continue;
      if (s.record.status == "dispatching") resume_dispatch(s);
      if (s.record.status == "gating") schedule_poll(s, Millis{0});
      if (s.record.status == "rolling_back") rollback(s);
    }
    // An abort requested while no process ran the run is carried out now, once: stages
    // already rolling back above are not started twice.
    if (request && !abort_handled) carry_out_abort(*request);
    beat();
    post_step();
  }

  void beat() {
    store.heartbeat(run_id, options.owner, options.wall_clock());
    // Abort requests come from another process through the store: read on the heartbeat,
    // not on every step, so a busy run does not query for them between every two calls.
    if (!stopping) check_abort();
    heartbeat_timer = clock.schedule(options.heartbeat, [self = shared_from_this()] {
      if (self->finished) return;
      self->beat();
      self->post_step();  // picks up abort requests
    });
  }

  void post_step() {
    if (step_posted || finished) return;
    step_posted = true;
    asio::post(io, [self = shared_from_this()] {
      self->step_posted = false;
      self->step();
    });
  }

  int max_parallel() const {
    return plan.max_parallel ? *plan.max_parallel : static_cast<int>(plan.stages.size());
  }

  bool approved(const StageRecord& stage) {
    const auto approvals = store.load_approvals(run_id);
    return std::any_of(approvals.begin(), approvals.end(),
                       [&](const state::Approval& a) { return approval_counts(a, stage); });
  }

  void step() {
    if (finished) return;
    if (stopping) {
      for (StageRun& s : stages) {
        if (s.record.status != "rolling_back") s.timer.cancel();  // a rollback runs to its end
      }
      if (in_flight == 0 && !rollback_under_way()) finish(*stopping);
      return;
    }
    int active = 0;
    for (auto it = frontier.begin(); it != frontier.end();) {
      const StageRun& s = stages[graph.order[*it]];
      if (is_done(s)) {
        it = frontier.erase(it);
        continue;
      }
      active += is_active(s) ? 1 : 0;
      ++it;
    }
    bool waiting_on_people = false;
    // In graph order; a stage that passes on the way lets the stages after it in (a set's
    // iterators survive insertion).
    for (std::size_t pos : frontier) {
      const dag::StageId id = graph.order[pos];
      StageRun& s = stages[id];
      const std::string& status = s.record.status;
      if (status == "paused") {
        // An inconclusive gate: a person's approval lets it pass.
        if (approved(s.record)) {
          event(s.record.name, "approved",
                "inconclusive gate approved by a person: the stage passes");
          set_stage(s, "passed", "approved after an inconclusive gate");
        } else {
          waiting_on_people = true;
        }
        continue;
      }
      if (status != "waiting" && status != "awaiting_approval") continue;
      const bool needs_met = std::all_of(graph.needs[id].begin(), graph.needs[id].end(),
                                         [&](dag::StageId n) { return is_done(stages[n]); });
      if (!needs_met) continue;
      if (spec(s).approval_required && !approved(s.record)) {
        if (status != "awaiting_approval") {
          set_stage(s, "awaiting_approval");
          event(s.record.name, "approval_needed",
                fmt::format("waiting for approval: rollout approve {} {}", run_id, s.record.name));
        }
        waiting_on_people = true;
        continue;
      }
      if (active >= max_parallel()) continue;
      if (s.window_wait) continue;
      if (!plan::may_dispatch(spec(s), clock.now())) {
        wait_for_window(s);
        continue;
      }
      ++active;
      start_stage(s);
    }
    if (passed == stages.size()) {
      finish({Ending::completed, "every stage passed"});
      return;
    }
    const bool work_left =
        in_flight > 0 || std::any_of(frontier.begin(), frontier.end(), [&](std::size_t pos) {
          const StageRun& s = stages[graph.order[pos]];
          return is_active(s) || s.window_wait;
        });
    if (!work_left) {
      if (waiting_on_people) {
        std::vector<std::string> waiting;
        for (std::size_t pos : frontier) {
          const StageRun& s = stages[graph.order[pos]];
          if (s.record.status == "awaiting_approval")
            waiting.push_back(s.record.name + " (approval)");
          if (s.record.status == "paused")
            waiting.push_back(s.record.name + " (inconclusive gate)");
        }
        std::string list;
        for (const auto& w : waiting) list += (list.empty() ? "" : ", ") + w;
        finish({Ending::paused, fmt::format("waiting for {}", list)});
      } else {
        finish({Ending::failed, "no stage can make progress"});
      }
      return;
    }
    if (waiting_on_people) {
      // Others are still working: look for approvals given from another terminal.
      approval_timer.cancel();
      approval_timer = clock.schedule(options.approval_check,
                                      [self = shared_from_this()] { self->post_step(); });
    }
  }

  // Ready, but outside its maintenance windows or in a freeze: the stage stays waiting,
  // says why (once per change), and a timer wakes the run when it may dispatch. A stage
  // already dispatched is never cut off by a window closing: only dispatch waits.
  void wait_for_window(StageRun& s) {
    const WallTime now = clock.now();
    const auto next = plan::next_dispatch_time(spec(s), now);
    if (!next) {
      stage_error(s, "no maintenance window opens within a year outside the freezes");
      return;
    }
    const std::string why = "waiting: " + plan::why_waiting(spec(s), now);
    if (s.record.reason != why) {
      s.record.reason = why;
      save_stage(s);
      event(s.record.name, "window_wait", why);
    }
    s.window_wait = true;
    const dag::StageId id = s.id;
    s.timer = clock.schedule(std::max(std::chrono::duration_cast<Millis>(*next - now), Millis{1}),
                             [self = shared_from_this(), id] {
                               self->stages[id].window_wait = false;
                               self->post_step();
                             });
  }

  static std::string abort_reason(const state::AbortRequest& request) {
    return fmt::format("aborted by {}{}", request.by,
                       request.rollback ? ", who asked for a rollback" : "");
  }

  void check_abort() {
    if (abort_handled) return;
    if (auto request = store.abort_request(run_id)) carry_out_abort(*request);
  }

  // Once per process: the stages that were dispatched and are not rolled back (or rolling
  // back already) roll back, when asked for and the plan has a rollback flow.
  void carry_out_abort(const state::AbortRequest& request) {
    abort_handled = true;
    event("", "abort",
          fmt::format("abort requested by {}{}", request.by,
                      request.rollback ? ", with rollback" : ""));
    if (request.rollback && !plan.on_failure.rollback) {
      event("", "abort", "the plan has no on_failure.rollback flow: nothing is rolled back");
    }
    if (request.rollback && plan.on_failure.rollback) {
      for (StageRun& s : stages) {
        const std::string& st = s.record.status;
        if (s.record.dispatched_at && st != "rolled_back" && !s.rollback_started) rollback(s);
      }
    }
    stopping = Outcome{Ending::stopped, abort_reason(request)};
    aborted = true;
  }

  bool rollback_under_way() const {
    return std::any_of(stages.begin(), stages.end(),
                       [](const StageRun& s) { return s.record.status == "rolling_back"; });
  }

  void finish(Outcome outcome) {
    if (finished) return;
    finished = true;
    heartbeat_timer.cancel();
    approval_timer.cancel();
    for (StageRun& s : stages) s.timer.cancel();
    std::string status;
    switch (outcome.ending) {
      case Ending::completed:
        status = "completed";
        break;
      case Ending::stopped:
        status = aborted ? "aborted" : "stopped";
        break;
      case Ending::paused:
        status = "paused";
        break;
      case Ending::interrupted:
        status = "interrupted";
        break;
      case Ending::failed:
        status = "failed";
        break;
    }
    const bool final_state =
        outcome.ending == Ending::completed || outcome.ending == Ending::stopped;
    if (final_state) {
      for (StageRun& s : stages) {
        if (!is_terminal(s) && s.record.status != "waiting")
          set_stage(s, "stopped", "the run stopped");
      }
    }
    outcome.reason = printable(outcome.reason);
    event("", "run_" + status, outcome.reason);
    // Last, so that the run's updated_at is its latest record's time: a resumed or retried
    // time-scaled run goes on from there, never before it.
    store.set_run_status(run_id, status, outcome.reason, clock.now(), final_state);
    store.release_lease(run_id, options.owner);
    auto callback = std::move(done);
    if (callback) callback(outcome);
  }

  void interrupt() {
    if (finished || stopping) return;
    interrupted = true;
    event("", "interrupt", "signal received: starting nothing new, waiting for calls in flight");
    stopping = Outcome{Ending::interrupted,
                       "interrupted by a signal; continue with rollout resume " + run_id};
    // Reads have no outcome to record: they end now. A deploy_update in flight is waited
    // for (its timeout bounds it) and its outcome recorded.
    api.cancel_reads();
    post_step();
  }

  void fail_run(const std::string& reason) {
    if (!stopping) stopping = Outcome{Ending::failed, reason};
  }

  // ---- reading devices -----------------------------------------------------------------

  void read_reached(const StageRun& s, const std::string& marker,
                    std::function<void(upswift::Result<std::vector<Reached>>)> done_fn) {
    engine::read_reached(api, spec(s).deploy_request(), *s.snapshot, marker, guarded(done_fn));
  }

  // ---- a stage's procedure ---------------------------------------------------------------

  void start_stage(StageRun& s) {
    set_stage(s, "dispatching");
    event(s.record.name, "stage_started",
          s.snapshot ? fmt::format("its {} device(s) were fixed beforehand", s.snapshot->size())
                     : "listing the stage's devices");
    resume_dispatch(s);
  }

  void take_snapshot(StageRun& s) {
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
            std::erase_if(devices,
                          [&](const SnapshotDevice& d) { return taken.count(d.uuid) > 0; });
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
  void skip_nothing_left(StageRun& s, std::int64_t candidates) {
    const std::string why = fmt::format("{} (its filters leave none of its {} candidate(s))",
                                        state::kSkippedReason, candidates);
    event(s.record.name, "stage_passed", why);
    set_stage(s, "passed", why);
  }

  // A call that Upswift refused, or that never got through, stops its stage for a person to
  // look at. When one resumes the run (having fixed the cause), such calls of the earlier
  // processes are tried again, and attempts are counted afresh: they were certainly not
  // applied, so sending again can never apply an update twice.
  bool of_this_process(const ApiCall& c) const { return own_calls.count(c.id) > 0; }

  std::vector<ApiCall> calls_of(const StageRun& s, const std::string& kind) {
    return store.load_stage_calls(run_id, s.record.name, kind);
  }

  // Decides the next move of a stage in `dispatching` from what the store knows: take the
  // snapshot, send, settle an unknown call, or go on to the gate.
  void resume_dispatch(StageRun& s) {
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
      set_stage(s, "passed", "no devices to update");
      return;
    }
    if (spec(s).sample || s.retry_targets) {
      dispatch_each(s);
      return;
    }
    const auto calls = calls_of(s, "dispatch");
    for (const ApiCall& c : calls) {
      if (c.outcome == "accepted" || c.outcome == "settled_applied") {
        begin_gate(s, c.outcome_at.value_or(c.intent_at));
        return;
      }
    }
    if (!calls.empty()) {
      const ApiCall& last = calls.back();
      if (!last.outcome || *last.outcome == "unknown") {
        settle(s, last);
        return;
      }
      if (*last.outcome == "refused" && of_this_process(last)) {
        stage_error(s, last.message);
        return;
      }
    }
    const auto attempts = std::count_if(calls.begin(), calls.end(),
                                        [this](const ApiCall& c) { return of_this_process(c); });
    if (attempts >= options.max_dispatch_attempts) {
      stage_error(s, fmt::format("deploy_update did not go through in {} attempts: {}", attempts,
                                 calls.back().message));
      return;
    }
    upswift::DeployRequest request = spec(s).deploy_request();
    request.comment = with_marker(request.comment, dispatch_marker(run_id, s.record.name));
    send_dispatch(s, request);
  }

  // ---- a sampled wave: one deploy_update per device ------------------------------------

  // The marker of the stage's calls: a retry's also names it, so that settling a retry's
  // call finds that call's update and not the first one; both contain the stage's marker,
  // which the gate looks for.
  std::string call_marker(const StageRun& s) const {
    const std::string marker = dispatch_marker(run_id, s.record.name);
    return s.retry_targets ? fmt::format("{} (retry {})", marker, s.retry) : marker;
  }

  upswift::DeployRequest device_request(const StageRun& s, const SnapshotDevice& d) const {
    upswift::DeployRequest request = spec(s).deploy_request();
    request.groups.clear();
    request.filters = {{upswift::FilterType::specific_device, upswift::Operand::is, d.uuid}};
    request.comment = with_marker(request.comment, call_marker(s));
    return request;
  }

  // Sends the calls still missing (to a sampled wave's devices, or a retry's), one at a
  // time, in order; each is written ahead and identified by its body. An unknown outcome is
  // settled before anything else is sent. When every device's call went through, the gate
  // starts; after a retry, its bake starts again.
  void dispatch_each(StageRun& s) {
    if (stopping) return;
    std::map<std::string, std::vector<const ApiCall*>> by_body;
    const auto calls = calls_of(s, "dispatch");
    for (const ApiCall& c : calls) by_body[c.body].push_back(&c);
    std::optional<WallTime> last_through;
    for (const SnapshotDevice& d : s.retry_targets ? *s.retry_targets : *s.snapshot) {
      upswift::DeployRequest request = device_request(s, d);
      const std::string body = upswift::deploy_update_body(request, upswift::kRedactedToken);
      const auto& tries = by_body[body];
      if (!tries.empty()) {
        const ApiCall& c = *tries.back();
        if (c.outcome == "accepted" || c.outcome == "settled_applied") {
          const WallTime at = c.outcome_at.value_or(c.intent_at);
          last_through = last_through ? std::max(*last_through, at) : at;
          continue;
        }
        if (!c.outcome || *c.outcome == "unknown") {
          settle_each(s, c, d);
          return;
        }
        if (*c.outcome == "refused" && of_this_process(c)) {
          stage_error(s, fmt::format("{} (device {})", c.message, d.uuid));
          return;
        }
        const auto attempts = std::count_if(
            tries.begin(), tries.end(), [this](const ApiCall* t) { return of_this_process(*t); });
        if (attempts >= options.max_dispatch_attempts) {
          stage_error(s, fmt::format("deploy_update to device {} did not go through in {} "
                                     "attempts: {}",
                                     d.uuid, attempts, c.message));
          return;
        }
      }
      send_dispatch(s, request, &d);
      return;
    }
    if (s.retry_targets) s.record.dispatched_at = last_through.value_or(clock.now());
    begin_gate(s, last_through.value_or(clock.now()));
  }

  // One deploy_update of a stage, written ahead of sending, its outcome recorded when the
  // answer comes; then the stage's records decide what follows (the gate, the next device,
  // settling an unknown outcome). `device`: a sampled wave's per-device call.
  void send_dispatch(StageRun& s, const upswift::DeployRequest& request,
                     const SnapshotDevice* device = nullptr) {
    ApiCall call;
    call.run_id = run_id;
    call.stage = s.record.name;
    call.kind = "dispatch";
    call.marker = call_marker(s);
    call.body = upswift::deploy_update_body(request, upswift::kRedactedToken);
    call.devices = device ? 1 : static_cast<std::int64_t>(s.snapshot->size());
    call.intent_at = clock.now();
    crash_point("before_intent");
    const std::int64_t call_id = store.record_intent(call);
    own_calls.insert(call_id);
    crash_point("after_intent");
    event(s.record.name, "dispatch",
          device ? fmt::format("deploy_update to device {} ({})", device->uuid, device->name)
                 : fmt::format("deploy_update to {} device(s)", call.devices));
    const dag::StageId id = s.id;
    const bool each = device != nullptr;
    api.deploy_update(
        request, guarded([this, id, call_id, each](upswift::Result<upswift::Accepted> r) {
          crash_point("after_answer");
          StageRun& st = stages[id];
          const WallTime now = clock.now();
          switch (r.error.status) {
            case upswift::CallStatus::ok:
              store.record_outcome(call_id, "accepted", 200, "", now);
              crash_point("after_outcome");
              if (!each) event(st.record.name, "dispatched", "Upswift accepted the deploy_update");
              break;
            case upswift::CallStatus::refused:
              store.record_outcome(call_id, "refused", r.error.http_status, r.error.message, now);
              if (!each) return stage_error(st, r.error.message);
              break;
            case upswift::CallStatus::failed:
              store.record_outcome(call_id, "failed", r.error.http_status, r.error.message, now);
              event(st.record.name, "error", r.error.message);
              fail_run(fmt::format(
                  "stage {}: deploy_update could not be sent ({}); nothing was applied; "
                  "continue with rollout resume {}",
                  st.record.name, r.error.message, run_id));
              return;
            case upswift::CallStatus::unknown_outcome:
              store.record_outcome(call_id, "unknown", r.error.http_status, r.error.message, now);
              event(st.record.name, "dispatch_unknown", r.error.message);
              break;
          }
          if (stopping) return;
          if (each) return dispatch_each(st);
          resume_dispatch(st);
        }));
  }

  // A per-device call whose answer never came: after the settle delay, look for this run's
  // update on that device. Found: it went through. Not found: it certainly did not.
  void settle_each(StageRun& s, const ApiCall& call, const SnapshotDevice& device) {
    const Millis wait =
        std::max(Millis{0}, options.settle_delay - since(clock.now(), call.intent_at));
    event(s.record.name, "settle",
          fmt::format("outcome of the deploy_update to {} unknown: reading the devices in {}s",
                      device.uuid, wait.count() / 1000));
    const dag::StageId id = s.id;
    const std::int64_t call_id = call.id;
    const std::string marker = call.marker;
    const std::string uuid = device.uuid;
    s.timer = clock.schedule(wait, [self = shared_from_this(), id, call_id, marker, uuid] {
      self->read_reached(
          self->stages[id], marker,
          [self, id, call_id, uuid](upswift::Result<std::vector<Reached>> r) {
            StageRun& st = self->stages[id];
            if (!r.ok()) {
              self->fail_run(
                  fmt::format("stage {}: could not read its devices to settle an "
                              "unknown deploy_update: {}; continue with rollout "
                              "resume {}",
                              st.record.name, r.error.message, self->run_id));
              return;
            }
            bool applied = false;
            for (std::size_t i = 0; i < r.value->size(); ++i) {
              applied = applied || ((*st.snapshot)[i].uuid == uuid && arrived((*r.value)[i]));
            }
            self->store.record_outcome(
                call_id, applied ? "settled_applied" : "settled_not_applied", 0,
                applied ? "found on the device" : "not found on the device", self->clock.now());
            self->event(st.record.name, "settle",
                        applied ? fmt::format("the deploy_update to {} had gone through", uuid)
                                : fmt::format("the deploy_update to {} had not gone through: "
                                              "sending it again",
                                              uuid));
            if (!self->stopping) self->dispatch_each(st);
          });
    });
  }

  // An intent without a known outcome: after the settle delay, look for this run's update
  // on the stage's devices. Found: it went through. Not found: it certainly did not.
  void settle(StageRun& s, const ApiCall& call) {
    const Millis waited = since(clock.now(), call.intent_at);
    const Millis wait = std::max(Millis{0}, options.settle_delay - waited);
    event(s.record.name, "settle",
          fmt::format("outcome of deploy_update unknown: reading the devices in {}s",
                      wait.count() / 1000));
    const dag::StageId id = s.id;
    const std::int64_t call_id = call.id;
    const std::string marker = call.marker;
    const WallTime intent_at = call.intent_at;
    s.timer = clock.schedule(wait, [self = shared_from_this(), id, call_id, marker, intent_at] {
      StageRun& st = self->stages[id];
      self->read_reached(
          st, marker, [self, id, call_id, intent_at](upswift::Result<std::vector<Reached>> r) {
            StageRun& stage = self->stages[id];
            if (!r.ok()) {
              self->fail_run(
                  fmt::format("stage {}: could not read its devices to settle an unknown "
                              "deploy_update: {}; continue with rollout resume {}",
                              stage.record.name, r.error.message, self->run_id));
              return;
            }
            const bool applied = std::any_of(r.value->begin(), r.value->end(), arrived);
            const WallTime now = self->clock.now();
            if (applied) {
              self->store.record_outcome(call_id, "settled_applied", 0, "found on the devices",
                                         now);
              self->event(stage.record.name, "dispatched",
                          "the deploy_update had gone through (found on the devices)");
              if (!self->stopping) self->begin_gate(stage, intent_at);
            } else {
              self->store.record_outcome(call_id, "settled_not_applied", 0,
                                         "not found on any device", now);
              self->event(stage.record.name, "settle",
                          "the deploy_update had not gone through: sending it again");
              if (!self->stopping) self->resume_dispatch(stage);
            }
          });
    });
  }

  // ---- the gate --------------------------------------------------------------------------

  void begin_gate(StageRun& s, WallTime dispatched_at) {
    if (!s.record.dispatched_at) s.record.dispatched_at = dispatched_at;
    set_stage(s, "gating");
    schedule_poll(s, Millis{0});
  }

  void schedule_poll(StageRun& s, Millis delay) {
    const dag::StageId id = s.id;
    s.timer =
        clock.schedule(delay, [self = shared_from_this(), id] { self->poll(self->stages[id]); });
  }

  void poll(StageRun& s) {
    if (stopping || finished) {
      return;
    }
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
              on_verdict(
                  st, {Verdict::timeout, "device statuses could not be read: " + r.error.message},
                  elapsed);
            } else {
              schedule_poll(st, std::chrono::duration_cast<Millis>(gate.poll));
            }
            return;
          }
          const StatusCounts counts = count(*r.value);
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

  static StatusCounts count(const std::vector<Reading>& readings) {
    StatusCounts counts;
    for (const Reading& device : readings) {
      switch (device.reached) {
        // A device that left the stage's groups is still one of its targets, and not a
        // success.
        case Reached::unlisted:
        case Reached::none:
          ++counts.missing;
          break;
        case Reached::pending:
          ++counts.pending;
          break;
        case Reached::in_progress:
          ++counts.in_progress;
          break;
        case Reached::success:
          ++counts.success;
          break;
        case Reached::failed:
          ++counts.failed;
          break;
        case Reached::aborted:
        case Reached::other:
          ++counts.aborted;
          break;
      }
    }
    return counts;
  }

  // The devices (snapshot positions) whose state differs from what the gate saw last (all
  // of them at the first poll), each since `now`; `s.seen` is brought up to date.
  std::vector<std::size_t> note_devices(StageRun& s, const std::vector<Reading>& readings,
                                        WallTime now) {
    const std::vector<SnapshotDevice>& devices = *s.snapshot;
    if (!s.seen) {
      s.seen.emplace(devices.size());
      const auto recorded = store.load_stage_device_states(run_id, s.record.name);
      std::unordered_map<std::string_view, std::size_t> at;
      if (!recorded.empty()) {  // after a resume: the gate goes on from what it saw
        for (std::size_t i = 0; i < devices.size(); ++i) at.emplace(devices[i].uuid, i);
      }
      for (const state::DeviceState& d : recorded) {
        auto it = at.find(d.uuid);
        auto reached = parse_reached(d.status);
        if (it == at.end() || !reached) continue;
        (*s.seen)[it->second] = {
            true,
            *reached,
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
  void note_online(StageRun& s, const OnlineStates& online, WallTime now,
                   std::vector<std::size_t>& changed) {
    const std::vector<SnapshotDevice>& devices = *s.snapshot;
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
  state::DeviceChanges device_rows(const StageRun& s,
                                   const std::vector<std::size_t>& changed) const {
    return {changed.size(), [&s, &changed](std::size_t k) {
              const std::size_t i = changed[k];
              const Seen& seen = (*s.seen)[i];
              state::DeviceState row;
              row.stage = s.record.name;
              row.uuid = (*s.snapshot)[i].uuid;
              row.update_id = seen.update_id;
              row.status = std::string(name(seen.reached));
              row.since = seen.since;
              row.online = seen.online < 0 ? "" : seen.online ? "online" : "offline";
              row.online_at = seen.online_at;
              return row;
            }};
  }

  void record_poll(StageRun& s, const Judgement& j, const StatusCounts& counts, Millis elapsed,
                   WallTime now, const std::vector<std::size_t>& changed) {
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
                         std::string(name(j.verdict)),
                         j.reason};
    store.add_observation(o, device_rows(s, changed));
    crash_point("after_observation");
    observer.on_observation(o);
    on_verdict(s, j, elapsed);
  }

  void on_verdict(StageRun& s, const Judgement& j, Millis elapsed) {
    const plan::Gate& gate = spec(s).gate;
    switch (j.verdict) {
      case Verdict::wait: {
        const Millis poll_every = std::chrono::duration_cast<Millis>(gate.poll);
        const Millis bake = std::chrono::duration_cast<Millis>(gate.bake);
        const Millis timeout = std::chrono::duration_cast<Millis>(gate.timeout);
        Millis next = poll_every;
        if (elapsed < bake) next = std::min(next, bake - elapsed);
        next = std::min(next, std::max(Millis{0}, timeout - elapsed));
        schedule_poll(s, std::max(next, Millis{1}));
        return;
      }
      case Verdict::pass:
        event(s.record.name, "stage_passed", j.reason);
        set_stage(s, "passed", j.reason);
        return;
      case Verdict::fail:
        event(s.record.name, "stage_failed", j.reason);
        stage_failed(s, j.reason, /*dispatched=*/true);
        return;
      case Verdict::timeout:
        switch (gate.on_timeout) {
          case plan::OnTimeout::pass:
            event(s.record.name, "stage_passed", "on_timeout pass: " + j.reason);
            set_stage(s, "passed", "on_timeout pass: " + j.reason);
            return;
          case plan::OnTimeout::fail:
            event(s.record.name, "stage_failed", "on_timeout fail: " + j.reason);
            stage_failed(s, "on_timeout fail: " + j.reason, true);
            return;
          case plan::OnTimeout::pause:
            event(s.record.name, "stage_paused",
                  fmt::format("{}; approve to let it pass: rollout approve {} {}", j.reason, run_id,
                              s.record.name));
            set_stage(s, "paused", j.reason);
            s.record.finished_at = clock.now();
            save_stage(s);
            return;
        }
    }
  }

  // Upswift refused the call, or it never got through: a person has to look. The stage
  // stays where it was, dispatching, with the reason: once the cause is fixed, a resume
  // sends it again (nothing of it was applied), which a failed stage could not.
  void stage_error(StageRun& s, const std::string& message) {
    event(s.record.name, "error", message);
    set_stage(s, s.record.status, message);
    fail_run(fmt::format("stage {}: {}; fix the cause, then continue with rollout resume {}",
                         s.record.name, message, run_id));
  }

  void stage_failed(StageRun& s, const std::string& reason, bool dispatched) {
    if (dispatched && plan.on_failure.action == plan::FailureAction::rollback &&
        plan.on_failure.rollback) {
      // One write: a crash right here resumes into the rollback, never past it.
      set_stage(s, "rolling_back", reason);
      stopping = Outcome{Ending::stopped,
                         fmt::format("stage {} failed: {}; rolled back", s.record.name, reason)};
      rollback(s);
      return;
    }
    set_stage(s, "failed", reason);
    if (!stopping)
      stopping =
          Outcome{Ending::stopped, fmt::format("stage {} failed: {}", s.record.name, reason)};
  }

  // ---- rollback ----------------------------------------------------------------------------

  // Sends the rollback flow to the stage's devices that got the new version or failed: one
  // deploy_update for the stage's own selection when every device is affected and the
  // selection does not depend on update state, otherwise one per device. The targets are
  // recorded first, so a resumed rollback sends exactly the calls still missing.
  void rollback(StageRun& s) {
    if (!plan.on_failure.rollback || s.rollback_started) return;
    s.rollback_started = true;
    if (s.record.status != "rolling_back") {
      set_status(s, "rolling_back");
      save_stage(s);
    }
    event(s.record.name, "rollback", "rolling back every device the stage's update reached");
    const std::string target_key = s.record.name + "/rollback";
    if (auto targets = store.load_snapshot(run_id, target_key)) {
      send_rollback_calls(s, *targets);
      return;
    }
    const dag::StageId id = s.id;
    read_reached(s, dispatch_marker(run_id, s.record.name),
                 [this, id, target_key](upswift::Result<std::vector<Reached>> r) {
                   StageRun& st = stages[id];
                   if (!r.ok()) {
                     event(st.record.name, "error",
                           "rollback: could not read the stage's devices: " + r.error.message);
                     if (interrupted) return;  // a signal: the rollback goes on at resume
                     stopping = Outcome{
                         Ending::failed,
                         fmt::format("rollback of stage {} could not read its devices ({}); "
                                     "continue with rollout resume {}",
                                     st.record.name, r.error.message, run_id)};
                     return;
                   }
                   std::vector<SnapshotDevice> affected;
                   for (std::size_t i = 0; i < r.value->size(); ++i) {
                     // Every device this run's update reached: one still pending or in progress
                     // would otherwise finish onto the version being rolled back.
                     const Reached device = (*r.value)[i];
                     if (arrived(device) && device != Reached::aborted) {
                       affected.push_back((*st.snapshot)[i]);
                     }
                   }
                   store.save_snapshot(run_id, target_key, affected);
                   send_rollback_calls(st, affected);
                 });
  }

  std::vector<upswift::DeployRequest> rollback_requests(
      const StageRun& s, const std::vector<SnapshotDevice>& targets) {
    const plan::Rollback& rb = *plan.on_failure.rollback;
    upswift::DeployRequest base;
    base.flow_id = rb.flow_id;
    base.project = spec(s).project;
    base.app = rb.app;
    base.comment = with_marker(
        rb.comment ? rb.comment
                   : std::optional<std::string>(fmt::format("rollback of {}", plan.name)),
        rollback_marker(run_id, s.record.name));
    std::vector<upswift::DeployRequest> out;
    const upswift::DeployRequest stage_request = spec(s).deploy_request();
    // The stage's own selection reaches exactly its devices only when it was not sampled
    // and does not depend on update state.
    if (!targets.empty() && targets.size() == s.snapshot->size() &&
        !dynamic_selection(stage_request) && !spec(s).sample) {
      upswift::DeployRequest whole = base;
      whole.groups = stage_request.groups;
      whole.filters = stage_request.filters;
      out.push_back(std::move(whole));
      return out;
    }
    for (const SnapshotDevice& d : targets) {
      upswift::DeployRequest one = base;
      one.filters = {{upswift::FilterType::specific_device, upswift::Operand::is, d.uuid}};
      out.push_back(std::move(one));
    }
    return out;
  }

  void send_rollback_calls(StageRun& s, const std::vector<SnapshotDevice>& targets) {
    const auto requests = rollback_requests(s, targets);
    const auto previous = calls_of(s, "rollback");
    // Each request's body identifies it; anything accepted or settled as applied is done.
    std::map<std::string, const ApiCall*> last_by_body;
    for (const ApiCall& c : previous) last_by_body[c.body] = &c;
    for (const upswift::DeployRequest& request : requests) {
      const std::string body = upswift::deploy_update_body(request, upswift::kRedactedToken);
      auto it = last_by_body.find(body);
      if (it != last_by_body.end()) {
        const ApiCall& c = *it->second;
        if (c.outcome == "accepted" || c.outcome == "settled_applied") continue;
        if (!c.outcome || *c.outcome == "unknown") {
          settle_rollback(s, c, request);
          return;  // one call at a time; the rest follows when this one is settled
        }
      }
      send_one_rollback(s, request, body);
      return;
    }
    set_status(s, "rolled_back");
    s.record.reason = fmt::format("{}{}rolled back {} device(s)", s.record.reason,
                                  s.record.reason.empty() ? "" : "; ", targets.size());
    s.record.finished_at = clock.now();
    save_stage(s);
    event(s.record.name, "rolled_back", s.record.reason);
    post_step();
  }

  void send_one_rollback(StageRun& s, const upswift::DeployRequest& request,
                         const std::string& body) {
    ApiCall call;
    call.run_id = run_id;
    call.stage = s.record.name;
    call.kind = "rollback";
    call.marker = rollback_marker(run_id, s.record.name);
    call.body = body;
    call.devices = request.filters.size() == 1 &&
                           request.filters[0].type == upswift::FilterType::specific_device
                       ? 1
                       : static_cast<std::int64_t>(s.snapshot->size());
    call.intent_at = clock.now();
    const std::int64_t call_id = store.record_intent(call);
    own_calls.insert(call_id);
    crash_point("after_rollback_intent");
    const dag::StageId id = s.id;
    api.deploy_update(
        request, guarded([this, id, call_id](upswift::Result<upswift::Accepted> r) {
          StageRun& st = stages[id];
          const WallTime now = clock.now();
          const char* outcome = r.ok()                                           ? "accepted"
                                : r.error.status == upswift::CallStatus::refused ? "refused"
                                : r.error.status == upswift::CallStatus::unknown_outcome ? "unknown"
                                                                                         : "failed";
          store.record_outcome(call_id, outcome, r.error.http_status, r.error.message, now);
          if (!r.ok() && r.error.status != upswift::CallStatus::unknown_outcome) {
            event(st.record.name, "error", "rollback deploy_update: " + r.error.message);
            stopping = Outcome{Ending::failed,
                               fmt::format("rollback of stage {} failed: {}; continue with rollout "
                                           "resume {}",
                                           st.record.name, r.error.message, run_id)};
            return;
          }
          auto targets = store.load_snapshot(run_id, st.record.name + "/rollback");
          send_rollback_calls(st, targets.value_or(std::vector<SnapshotDevice>{}));
        }));
  }

  void settle_rollback(StageRun& s, const ApiCall& call, const upswift::DeployRequest& request) {
    const Millis wait =
        std::max(Millis{0}, options.settle_delay - since(clock.now(), call.intent_at));
    const dag::StageId id = s.id;
    const std::int64_t call_id = call.id;
    const std::string marker = call.marker;
    std::set<std::string> devices;
    for (const auto& f : request.filters) {
      if (f.type == upswift::FilterType::specific_device) devices.insert(f.value);
    }
    s.timer = clock.schedule(wait, [self = shared_from_this(), id, call_id, marker, devices] {
      self->read_reached(
          self->stages[id], marker,
          [self, id, call_id, devices](upswift::Result<std::vector<Reached>> r) {
            StageRun& st = self->stages[id];
            if (!r.ok()) {
              if (self->interrupted) return;  // a signal: settled at resume
              self->stopping =
                  Outcome{Ending::failed,
                          "rollback: could not read devices to settle a call: " + r.error.message};
              return;
            }
            bool applied = false;
            for (std::size_t i = 0; i < r.value->size(); ++i) {
              applied = applied || (arrived((*r.value)[i]) &&
                                    (devices.empty() || devices.count((*st.snapshot)[i].uuid)));
            }
            self->store.record_outcome(
                call_id, applied ? "settled_applied" : "settled_not_applied", 0,
                applied ? "found on the devices" : "not found on the devices", self->clock.now());
            auto targets = self->store.load_snapshot(self->run_id, st.record.name + "/rollback");
            self->send_rollback_calls(st, targets.value_or(std::vector<SnapshotDevice>{}));
          });
    });
  }
};

Engine::Engine(asio::io_context& io, const plan::Plan& plan, const dag::Graph& graph,
               upswift::FleetApi& api, state::StateStore& store, Clock& clock, Observer& observer,
               std::string run_id, EngineOptions options)
    : impl_(std::make_shared<Impl>(io, plan, graph, api, store, clock, observer, std::move(run_id),
                                   std::move(options))) {}

Engine::~Engine() {
  impl_->finished = true;
  impl_->heartbeat_timer.cancel();
  impl_->approval_timer.cancel();
  for (auto& s : impl_->stages) s.timer.cancel();
}

void Engine::start(std::function<void(Outcome)> done) {
  impl_->start(std::move(done));
}
void Engine::interrupt() {
  impl_->interrupt();
}
bool Engine::finished() const {
  return impl_->finished;
}

}  // namespace rollout::engine
