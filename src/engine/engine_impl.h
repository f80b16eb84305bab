// Private to engine/: the state of one run in one process, and its jobs, each in its own
// file:
//   engine.cc     the facade and the main loop (carrying out the start planner, the end)
//   lifecycle.cc  start and resume, heartbeat and lease, abort, interrupt, finish
//   dispatch.cc   the snapshot and the write-ahead protocol: intents, answers, settling
//   gating.cc     polling a stage's devices, recording what changed, the verdict
//   rollback.cc   the rollback flow's targets and requests (pure) and sending them
//   rollback_check.cc  reading the rollback's update on its devices: rolled back or not
//   ending.cc     how a stopping run ends: unknown outcomes settled, stages cut off in
//                 flight rolled back, never a terminal run with an unknown outcome
// The pure parts they use: frontier.h, start_planner.h (which stage may start now, and why
// the others wait), ledger.h, gate.h, rollback.h, markers.h.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "engine/engine.h"
#include "engine/frontier.h"
#include "engine/gate.h"
#include "engine/ledger.h"
#include "engine/rollback.h"
#include "engine/selection.h"
#include "engine/start_planner.h"

namespace rollout::engine {

using state::ApiCall;
using state::CallKind;
using state::CallOutcome;
using state::EventKind;
using state::SnapshotDevice;
using state::StageRecord;
using state::StageStatus;

// "uuid (name)", as messages name a device.
inline std::string describe_device(const SnapshotDevice& d) {
  return fmt::format("{} ({})", d.uuid, d.name);
}

inline Millis since(WallTime later, WallTime earlier) {
  return std::chrono::duration_cast<Millis>(later - earlier);
}

struct Engine::Impl : std::enable_shared_from_this<Engine::Impl> {
  // What a stage's gate last saw of one device: a few bytes, whatever the fleet's size.
  struct Seen {
    bool known = false;
    Reached reached = Reached::unlisted;
    std::int64_t update_id = 0;
    WallTime since{};
    std::int8_t online = -1;  // -1: not read, 0: offline, 1: online
    std::optional<WallTime> online_at;
    bool started = false;  // its update was seen in progress
    // Last known online after the dispatch: read online, or taking its update (which it
    // did after the poll before the one that saw it in progress).
    std::optional<WallTime> online_last;
    std::optional<WallTime> lost_at;
  };

  // A request and its body (token redacted): what identifies its calls in the ledger.
  struct Planned {
    upswift::DeployRequest request;
    std::string body;
  };

  // A per-device call written ahead, waiting for its turn to be sent.
  struct Queued {
    upswift::DeployRequest request;
    std::int64_t call_id = 0;
    std::string device;  // "uuid (name)"
  };
  static constexpr int kSendsAtOnce = 8;

  struct StageRun {
    dag::StageId id = 0;
    StageRecord record;
    std::optional<std::vector<SnapshotDevice>> snapshot;
    int retry = 0;  // the latest `rollout retry` of the stage, and the devices it targets
    std::optional<std::vector<SnapshotDevice>> retry_targets;
    TimerHandle timer;
    bool window_wait = false;    // ready, but outside its windows or in a freeze: a timer wakes it
    bool approval_told = false;  // its approval from another process was said in this log
    bool rollback_started = false;  // in this process: a second start would send it twice
    bool settling = false;          // a settle of its calls is waiting for its delay or its read
    bool settle_failed = false;     // the read to settle them failed while the run was stopping
    // Once the run is stopping, none of its dispatches is unknown any more (none is sent
    // then): not looked for again at every turn.
    bool dispatches_known = false;
    // Dispatched, but cut off before its gate read its devices: read once as the run stops.
    bool looking = false, looked = false;
    // Its calls, read from the store once (when first needed) and kept in step after.
    std::optional<CallLedger> dispatches, rollbacks;
    // Per-device dispatch: the devices before `next_device` went through, the latest at
    // `last_through`; a step goes on from there.
    std::size_t next_device = 0;
    std::optional<WallTime> last_through;
    // The rollback's requests, built once from its recorded targets (and those of each
    // `retry --rollback`, the latest `rollback_retry`), and how many of them (in order)
    // went through.
    std::optional<std::vector<Planned>> rollback_plan;
    std::optional<std::vector<SnapshotDevice>> rollback_devices;  // its targets
    int rollback_retry = 0;
    std::size_t rollback_next = 0;  // the calls before it went through
    // Its check: what it last read of each target (target order), since when, and when the
    // rollback's last call went through (its timeout counts from there).
    bool rollback_checking = false;
    std::optional<std::vector<Reading>> rollback_seen;
    std::vector<WallTime> rollback_since;
    WallTime rollback_sent_at{};
    // Its calls written ahead and not sent yet, those sent whose answers have not come, and
    // whether it stopped for a person (a refusal, an unreadable fleet).
    std::deque<Queued> rollback_queue;
    int rollback_sends = 0;
    bool rollback_halted = false;
    // What its gate last saw of each device (snapshot order), and since when: a poll
    // writes only the devices that changed. Loaded from the store at the first poll.
    std::optional<std::vector<Seen>> seen;
    // Per-device dispatch: the batch's calls written ahead and not sent yet, and those sent
    // whose answers have not come.
    std::deque<Queued> queued;
    int sends_in_flight = 0;
    // Its gate's latest counts, for the run-wide abort_when (loaded from its last
    // observation after a resume).
    std::optional<StatusCounts> counts;
    // Its snapshot's devices by uuid, for reading their online states (made once).
    std::optional<DeviceIndex> index;
    std::optional<WallTime> last_poll;  // when its gate last read the devices (this process)
  };

  // A call whose answer never came, and the devices its update would be on (every device
  // of the stage when empty).
  struct Unsettled {
    std::int64_t call_id = 0;
    std::vector<std::string> devices;
  };

  // What this turn of the loop recorded and has not committed yet, and what the observer is
  // to hear of it once it is committed. It commits in one transaction (flush) at the end of
  // the turn (step), with the next intents before their calls are sent, with the heartbeat,
  // and before the engine reads its own records back. A crash loses at most the turn it
  // happened in, and nothing was sent on the strength of that turn's records.
  struct PendingObservation {
    state::Observation o;
    dag::StageId stage = 0;
    std::vector<std::size_t> changed;  // snapshot positions; rows made from `seen` at commit
  };
  struct Pending {
    std::vector<state::WriteBatch::Snapshot> snapshots;
    std::vector<state::CallResult> outcomes;
    std::vector<PendingObservation> observations;
    // A rollback check's devices that changed: the stage, target positions.
    std::vector<std::pair<dag::StageId, std::vector<std::size_t>>> rollback_rows;
    std::vector<dag::StageId> stages;  // whose records changed, each once
    std::vector<state::Event> events;
    std::optional<state::RunStatusChange> run_status;
    std::vector<std::function<void()>> notices;  // to the observer, in order
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
  std::optional<Frontier> frontier;
  std::set<std::int64_t> own_calls;  // the calls this process wrote ahead and sent
  std::set<std::int64_t> awaited;    // ... and whose answers have not come yet
  bool interrupted = false;          // a signal: waits for settling and rollbacks end at resume
  std::function<void(Outcome)> done;
  int in_flight = 0;  // API calls under way
  bool step_posted = false;
  bool finished = false;
  bool aborted = false;
  bool abort_handled = false;  // an abort request is carried out once per process
  // A person's pause (rollout pause): while it holds, no stage starts; gates go on.
  std::optional<state::PauseRequest> pause;
  std::optional<Outcome> stopping;  // set once the run must end; waits for calls in flight
  // What it was stopping for when a signal came: the end, if nothing is left unknown.
  std::optional<Outcome> before_signal;
  // The run stops with a rollback (a failed stage's on_failure, abort --rollback): the
  // stages cut off in flight (dispatched, their gates not passed) are rolled back too.
  bool roll_back_in_flight = false;
  // ... and, a failure whose on_failure scope is `run`: every stage the run dispatched, the
  // ones that passed too.
  bool roll_back_run = false;
  // Ramps (by the stage as written) one of whose steps failed with a rollback: all their
  // steps are rolled back, those that passed too; a ramp is one stage to its operator.
  std::set<std::string> failed_ramps;
  TimerHandle heartbeat_timer;
  TimerHandle approval_timer;
  Pending pending;

  const plan::Stage& spec(const StageRun& s) const { return plan.stages[s.id]; }
  static bool is_done(const StageRun& s) { return s.record.status == StageStatus::passed; }

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

  // engine.cc: the main loop.
  void post_step();
  void step();
  // What the start planner sees this turn; `approvals` holds the run's approvals it points to.
  StartInput start_input(std::vector<state::Approval>& approvals);
  void carry_out(const StartDecision& d);
  void wait_for_window(StageRun& s, WallTime until);
  int max_parallel() const;

  // lifecycle.cc
  // Commits `pending`, and `intents` with it; returns the intents' ids, in order.
  std::vector<std::int64_t> flush(const std::vector<ApiCall>& intents = {}, bool heartbeat = false);
  void notify(std::function<void()> notice) { pending.notices.push_back(std::move(notice)); }
  void start(std::function<void(Outcome)> on_done);
  void beat();
  void check_abort();
  // Reads whether a pause holds now; says so when that changed.
  void check_pause();
  void carry_out_abort(const state::AbortRequest& request);
  void finish(Outcome outcome);
  void interrupt();
  void fail_run(const std::string& reason);
  void event(const std::string& stage, EventKind kind, const std::string& message);
  void crash_point(std::string_view point);
  void set_status(StageRun& s, StageStatus status);
  void set_stage(StageRun& s, StageStatus status, const std::string& reason = {});
  void save_stage(const StageRun& s);
  void stage_error(StageRun& s, const std::string& message);
  void stage_failed(StageRun& s, const std::string& reason, bool dispatched);
  // A stage failed and its on_failure rolls back: so will the stages cut off in flight, and
  // every step of its ramp (ending.cc).
  void failed_with_rollback(const StageRun& s);

  // dispatch.cc
  void start_stage(StageRun& s);
  void take_snapshot(StageRun& s);
  void skip_nothing_left(StageRun& s, std::int64_t candidates);
  CallLedger& ledger(StageRun& s, CallKind kind);
  void resume_dispatch(StageRun& s);
  void dispatch_each(StageRun& s);
  void send_each(StageRun& s, const std::vector<std::size_t>& positions);
  void send_queued(StageRun& s);
  upswift::DeployRequest device_request(const StageRun& s, const SnapshotDevice& d) const;
  ApiCall intent(const StageRun& s, CallKind kind, std::string body, std::int64_t devices) const;
  // Writes the intents (with whatever is pending) and enters them in the stage's ledger.
  std::vector<std::int64_t> write_intents(StageRun& s, std::vector<ApiCall> calls);
  void write_outcome(StageRun& s, CallKind kind, std::int64_t call_id, CallOutcome outcome,
                     int http_status, const std::string& message);
  void send_dispatch(StageRun& s, const upswift::DeployRequest& request);
  void record_answer(StageRun& s, std::int64_t call_id,
                     const upswift::Result<upswift::Accepted>& r);
  // Settles calls of one kind and marker together, with one reading of the devices.
  void settle(StageRun& s, const ApiCall& call, std::vector<Unsettled> calls,
              const std::string& what);
  void after_settling(StageRun& s, CallKind kind, bool applied, WallTime intent_at);
  // What a settle is about, as its events say it.
  static std::string settle_what(const std::vector<Unsettled>& calls);

  // gating.cc
  void begin_gate(StageRun& s, WallTime dispatched_at);
  void schedule_poll(StageRun& s, Millis delay);
  void poll(StageRun& s);
  // What a poll read, carried through its reads of online states to the verdict.
  struct PollRead {
    std::vector<Reading> readings;
    WallTime now{};
    Millis elapsed{0};
    std::vector<std::size_t> changed;
    bool online_read = false;
    bool online_whole = false;  // ... of every group the stage's devices are in
  };
  void judge_poll(StageRun& s, PollRead read);
  std::vector<std::size_t> note_devices(StageRun& s, const std::vector<Reading>& readings,
                                        WallTime now);
  // Marks the lost devices in `read` from what `seen` knows of their online states; the
  // devices that became lost or came back join `read.changed`.
  void note_lost(StageRun& s, PollRead& read);
  std::string lost_devices(const StageRun& s, const std::vector<Reading>& readings) const;
  // The devices at snapshot positions `at`, ten named, the rest counted with the command that
  // lists them (`status` for its --status).
  std::string name_devices(const StageRun& s, const std::vector<std::size_t>& at,
                           std::string_view status) const;
  // The same of any of the stage's lists of devices; past ten, `more` says where the rest are.
  std::string name_devices(const std::vector<SnapshotDevice>& devices,
                           const std::vector<std::size_t>& at, const std::string& more) const;
  void hold_for_offline(const StageRun& s, const PollRead& read, const StatusCounts& counts,
                        Judgement& j);
  // Run-wide: abort_when over every dispatched stage's latest counts; when met, the stages
  // in flight fail and nothing new starts.
  void check_abort_when(StageRun& s, Judgement& j);
  bool abort_when_met = false;
  bool abort_counts_loaded = false;
  void commit_observations(const StageRun& s);
  // Reads which of the stage's devices are online: get_devices_state of `groups`, else of the
  // stage's own groups.
  void read_presence(StageRun& s, std::optional<std::vector<std::string>> groups,
                     std::function<void(upswift::Result<Presence>)> done);
  // The groups of the devices whose updates are under way (`whole`: they are every group the
  // stage's devices are in); nullopt when the stage's own listing is the one to read.
  std::optional<std::vector<std::string>> under_way_groups(const StageRun& s, bool& whole) const;
  // What an online read brought, noted into `read` (every device at a decision, `all`); an
  // error event when it failed.
  void take_presence(StageRun& s, const upswift::Result<Presence>& online, PollRead& read,
                     bool all);
  void note_online(StageRun& s, const Presence& online, WallTime now,
                   std::vector<std::size_t>& changed, bool all);
  state::DeviceChanges device_rows(const StageRun& s,
                                   const std::vector<std::size_t>& changed) const;
  void record_poll(StageRun& s, const Judgement& j, const StatusCounts& counts, Millis elapsed,
                   WallTime now, const std::vector<std::size_t>& changed);
  void on_verdict(StageRun& s, const Judgement& j, Millis elapsed);
  // Records what a reading of the stage's devices counted, and the `changed` devices' rows.
  void observe(const StageRun& s, WallTime now, Millis elapsed, const StatusCounts& counts,
               const Judgement& j, const std::vector<std::size_t>& changed);

  // ending.cc
  // Once the run is stopping: each stage's unknown outcomes settled, the stages cut off in
  // flight rolled back when the run stops with a rollback.
  void wind_down();
  // Starts settling the stage's dispatches whose outcomes are unknown; false when none is.
  bool settle_before_end(StageRun& s);
  // The stage's dispatches whose outcomes are unknown, and the latest of them.
  std::vector<Unsettled> unknown_dispatches(StageRun& s, const ApiCall*& latest);
  // When the first of the stage's dispatch calls went through, if any did.
  std::optional<WallTime> first_through(StageRun& s);
  bool settle_under_way() const;
  // Reads and records the devices of a stage the run stopped before its gate read them (no
  // verdict: the run is ending), so that every dispatched stage's devices are known.
  void last_look(StageRun& s);
  // "stage eu's deploy_update": the calls whose outcome is still unknown, if any.
  std::optional<std::string> unsettled_calls();

  // rollback.cc
  void rollback(StageRun& s);
  void plan_rollback(StageRun& s, const std::vector<SnapshotDevice>& targets);
  void send_rollback_calls(StageRun& s);
  void send_rollback_batch(StageRun& s, const std::vector<std::size_t>& positions);
  void send_rollback_queue(StageRun& s);
  // A rollback call refused or never through, or its devices unreadable: the rollback stops
  // here, the run ends for a person (failed, resumable).
  void rollback_halted(StageRun& s, const std::string& why);
  bool rollback_under_way() const;

  // rollback_check.cc: once every rollback call went through, the rollback's update is read
  // on each of its devices until it finished on all of them or rollback.timeout passed.
  void check_rollback(StageRun& s);
  void poll_rollback(StageRun& s);
  void note_rollback(StageRun& s, const std::vector<Reading>& readings, WallTime now);
  void conclude_rollback(StageRun& s, const RollbackCheck& check, Seconds timeout);
  Seconds rollback_timeout(const StageRun& s) const;
  state::DeviceChanges rollback_device_rows(const StageRun& s,
                                            const std::vector<std::size_t>& changed) const;
};

}  // namespace rollout::engine
