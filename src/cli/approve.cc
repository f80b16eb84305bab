// rollout approve RUN STAGE: let a stage that waits for a person go on.
#include <algorithm>
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/exit_codes.h"
#include "cli/review.h"
#include "cli/session.h"
#include "engine/run.h"
#include "engine/start_planner.h"

namespace rollout::cli {

namespace {

struct ApproveOptions {
  std::string run_id;
  std::string stage;
  std::string comment;
  StateOptions state;
};

int run_approve(const ApproveOptions& o) {
  auto opened = open_run(o.state, o.run_id);
  auto& store = opened.store;
  const state::RunRecord* run = &opened.run;
  const auto stages = store->load_stages(run->id);
  const state::StageRecord* stage = nullptr;
  std::vector<std::string> names;
  for (const auto& s : stages) {
    if (s.name == o.stage) stage = &s;
    names.push_back(s.name);
  }
  if (!stage) {
    std::cerr << "rollout: " << no_such_stage(run->id, o.stage, names) << "\n";
    return kExitInvalidInput;
  }
  if (stage->status != state::StageStatus::awaiting_approval &&
      stage->status != state::StageStatus::paused && stage->status != state::StageStatus::waiting) {
    std::cerr << fmt::format("rollout: stage {} of run {} is {}: there is nothing to approve\n",
                             o.stage, run->id, state::name(stage->status));
    return kExitInvalidInput;
  }
  if (state::is_final(run->status)) {
    std::cerr << fmt::format("rollout: run {} is {}: it will not continue\n", run->id,
                             state::name(run->status));
    return kExitInvalidInput;
  }
  // A waiting stage is approved ahead only when its plan asks for a person.
  if (stage->status == state::StageStatus::waiting) {
    if (!opened.plan) return kExitError;
    const auto& stages = opened.plan->plan.stages;
    const auto spec = std::find_if(stages.begin(), stages.end(),
                                   [&](const plan::Stage& s) { return s.name == o.stage; });
    if (spec == stages.end() || !spec->approval_required) {
      std::cerr << fmt::format(
          "rollout: stage {} of run {} needs no approval: it starts by itself once the stages "
          "it needs have passed\n",
          o.stage, run->id);
      return kExitInvalidInput;
    }
  }
  // One approval is enough: for a paused gate, one given since it paused.
  for (const auto& a : store->load_approvals(run->id)) {
    if (!engine::approval_counts(a, *stage)) continue;
    std::cerr << fmt::format("rollout: stage {} of run {} is already approved (by {} at {}){}\n",
                             o.stage, run->id, a.by, local_time(a.at),
                             run->status == state::RunStatus::running
                                 ? ""
                                 : fmt::format("; continue with: rollout resume {}", run->id));
    return kExitInvalidInput;
  }
  const std::string who = current_user();
  // Never stamped before the run's own records: a time-scaled run's clock runs ahead of the
  // wall clock, and an approval that looked older than the pause it answers would not take.
  WallTime at = record_time(*store, *run);
  if (stage->finished_at) at = std::max(at, *stage->finished_at);
  store->add_approval({run->id, o.stage, who, at, o.comment});
  store->add_event(
      {0, run->id, at, o.stage, state::EventKind::approved,
       fmt::format("approved by {}{}", who, o.comment.empty() ? "" : ": " + o.comment)});
  std::cout << fmt::format("approved stage {} of run {} as {}.\n", o.stage, run->id, who);
  auto lease = store->lease(run->id);
  if (run->status == state::RunStatus::running && lease) {
    std::cout << "the running process picks it up within seconds.\n";
  } else {
    std::cout << fmt::format("continue with: rollout resume {}\n", run->id);
  }
  return kExitOk;
}

}  // namespace

void add_approve_command(CLI::App& app, Run& run) {
  auto o = std::make_shared<ApproveOptions>();
  CLI::App* cmd = app.add_subcommand(
      "approve",
      "Approve a stage that waits for a person (approval: required, or an inconclusive gate). "
      "Refused for a stage that needs no approval, one already approved, and one that is over.");
  cmd->add_option("run", o->run_id, "Run id, or 'last'")->required();
  cmd->add_option("stage", o->stage, "Stage name")->required();
  cmd->add_option("--comment", o->comment, "Why; recorded with your user name and the time");
  add_state_option(cmd, o->state.state_path);
  cmd->callback([o, &run] { run = [o] { return run_approve(*o); }; });
}

}  // namespace rollout::cli
