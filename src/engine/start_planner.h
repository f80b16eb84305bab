// Which stages may start now, and for each one held, why and until when. Pure: a function
// of the stages in play (their records, whether their needs passed), the run's approvals,
// the plan's windows and freezes, the time, max_parallel and a person's pause; no store, no
// clock, no timers. The engine asks it at every turn and carries out what it says; `status`
// and the live progress ask it what a stage waits for.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dag/graph.h"
#include "plan/model.h"
#include "state/records.h"
#include "util/time.h"

namespace rollout::engine {

// One stage in play, in graph order.
struct StageInPlay {
  dag::StageId id = 0;
  const plan::Stage* spec = nullptr;
  const state::StageRecord* record = nullptr;
  bool needs_met = false;
  // A timer already wakes it when its window opens (the engine's; a view passes false).
  bool window_timer = false;
};

struct StartInput {
  std::vector<StageInPlay> in_play;
  std::span<const state::Approval> approvals;  // the run's
  WallTime now{};
  int max_parallel = 0;
  bool run_paused = false;  // a person's pause: nothing new starts
};

// What the engine is to do with a stage this turn.
enum class StartStep {
  none,          // nothing (under way, or held with nothing to record)
  start,         // dispatch it now
  pass,          // an inconclusive gate a person approved: the stage passes
  ask_approval,  // it becomes awaiting_approval, and says how to approve it
  wait_window,   // it stays waiting for its window (`until`), with a timer
  no_window,     // no window opens within a year outside the freezes: the stage errs
};

// Why a stage that could be next does not start now.
enum class Hold {
  none,               // it starts, or it is not waiting to start
  needs,              // a stage it needs has not passed
  approval,           // approval_required and not approved yet
  inconclusive_gate,  // its gate was inconclusive: a person's approval lets it pass
  run_paused,         // a person paused the run
  max_parallel,       // max_parallel stages are under way
  window,             // outside its maintenance windows, or in a freeze, until `until`
  no_window,          // no window opens within a year outside the freezes
};

struct StartDecision {
  dag::StageId id = 0;
  StartStep step = StartStep::none;
  Hold hold = Hold::none;
  std::optional<WallTime> until;            // window: when it may dispatch
  std::optional<state::Approval> approval;  // the approval that counts for it, if any
  // ask_approval outside its windows: once approved, it still waits (why_waiting's words).
  std::string then;
};

struct StartPlan {
  std::vector<StartDecision> decisions;  // one per stage in play, same order
  int active = 0;                        // stages under way, those it starts included
  bool waiting_on_people = false;        // a stage waits for an approval
  bool passes() const;                   // some stage passes (its dependents may start)
};

StartPlan plan_starts(const StartInput& input);

// Whether approval `a` counts for the stage as its record stands: an approval given before
// an inconclusive gate paused it does not let that gate pass.
bool approval_counts(const state::Approval& a, const state::StageRecord& stage);

// What a held stage waits for, for a person ("a free slot (max_parallel 2)"); empty for
// Hold::none and Hold::needs (the caller names the needs).
std::string describe_hold(const StartDecision& d, const plan::Stage& spec,
                          const std::string& run_id, int max_parallel, WallTime now);

}  // namespace rollout::engine
