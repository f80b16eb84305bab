// rollout resume RUN: continue a run from the state database alone.
#include <algorithm>
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/exit_codes.h"
#include "cli/session.h"
#include "util/sha256.h"

namespace rollout::cli {

namespace {

struct ResumeOptions {
  std::string run_id = "last";
  StateOptions state;
  ApiOptions api;
  std::string output = "text";
  bool allow_concurrent = false;
};

int run_resume(ResumeOptions& o) {
  o.api.json = o.output == "json";
  auto opened = open_run(o.state, o.run_id);
  auto& store = opened.store;
  const state::RunRecord* run = &opened.run;
  if (!opened.plan) return kExitError;
  const std::size_t unknown = unsettled_calls(*store, run->id);
  if (state::is_final(run->status) && unknown == 0) {
    std::cerr << fmt::format("rollout: run {} is {} ({}); there is nothing to resume\n", run->id,
                             run->status, run->reason);
    return kExitInvalidInput;
  }
  if (state::is_final(run->status) && !o.api.json) {
    // Left so by an older version: what those calls did is read from the devices first.
    std::cout << fmt::format(
        "run {} is {}, but the outcome of {} of its deploy_update call(s) was never settled: "
        "reading the devices to settle them, then ending the run as its plan says\n",
        run->id, state::name(run->status), unknown);
  }
  // The stored plan is what runs. Say so when the file on disk has changed since.
  std::string why;
  if (auto current = read_file(run->plan_path, &why);
      current && sha256_hex(*current) != run->plan_hash) {
    std::cerr << fmt::format(
        "rollout: note: {} has changed since run {} started; resuming the plan as it was "
        "applied (sha256 {}), not the file\n",
        run->plan_path, run->id, run->plan_hash.substr(0, 12));
  }
  // A run that never started checks its plan against the API first, as apply does. Its plan
  // is stored with it and cannot change: a plan that cannot work needs a new run.
  const auto stages = store->load_stages(run->id);
  if (std::none_of(stages.begin(), stages.end(),
                   [](const state::StageRecord& s) { return s.started_at.has_value(); })) {
    preflight(opened.plan->plan, run->api_url,
              runner::run_api_options(*store, resolve_state_path(o.state), *run, o.api),
              fmt::format("Run {} never started: start a new run with the fixed plan (rollout "
                          "apply {}), not this one (rollout abort {} closes it).",
                          run->id, run->plan_path, run->id));
  }
  // A person's pause is lifted by resume: of a live run, its process goes on at once (at its
  // next heartbeat); otherwise this process does.
  if (auto paused = store->pause_request(run->id)) {
    const std::string who = current_user();
    const WallTime now = record_time(*store, *run);
    store->lift_pause(run->id, who, now);
    store->add_event({0, run->id, now, "", state::EventKind::pause_lifted,
                      fmt::format("pause by {} lifted by {}", paused->by, who)});
    if (auto held = try_lease(*store, run->id)) {
      std::cout << fmt::format(
          "pause of run {} lifted; the process running it ({}@{}, pid {}) starts stages "
          "again\n",
          run->id, held->owner.user, held->owner.host, held->owner.pid);
      return kExitOk;
    }
    store->release_lease(run->id, this_process());
    if (!o.api.json)
      std::cout << fmt::format("pause of run {} by {} lifted\n", run->id, paused->by);
  }
  if (!take_lease(*store, run->id)) return kExitError;
  if (!alone_or_allowed(*store, *run, o.allow_concurrent)) return kExitError;
  if (!o.api.json)
    std::cout << fmt::format("resuming run {} ({}, was {})\n", run->id, run->plan_name,
                             run->status);
  return drive_run(*store, o.state, *run, *opened.plan, o.api);
}

}  // namespace

void add_run_options(CLI::App* cmd, StateOptions& state, ApiOptions& api, std::string& output);

void add_resume_command(CLI::App& app, Run& run) {
  auto o = std::make_shared<ResumeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "resume", "Continue a paused, interrupted or crashed run, without sending any update twice.");
  cmd->add_option("run", o->run_id, "Run id, or 'last'")->capture_default_str();
  add_run_options(cmd, o->state, o->api, o->output);
  cmd->add_flag("--allow-concurrent", o->allow_concurrent,
                "Go on even while another live run of the same plan, or of a stage target "
                "(project and group) this run shares, holds its lease in the same state database");
  cmd->footer(
      std::string(
          "A deploy_update whose outcome was not recorded is settled by reading the devices,\n"
          "and is sent again only if it certainly did not take effect. A run that ended with\n"
          "such a call (left so by an older version) is resumed to settle it.\n\n") +
      kExitCodesHelp);
  cmd->callback([o, &run] { run = [o] { return run_resume(*o); }; });
}

}  // namespace rollout::cli
