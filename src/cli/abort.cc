// rollout abort RUN [--rollback]: stop a run; optionally roll back what it dispatched.
#include <algorithm>
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/exit_codes.h"
#include "cli/session.h"

namespace rollout::cli {

namespace {

struct AbortOptions {
  std::string run_id;
  bool rollback = false;
  StateOptions state;
  ApiOptions api;
  std::string output = "text";
};

int run_abort(AbortOptions& o) {
  auto opened = open_run(o.state, o.run_id);
  auto& store = opened.store;
  const state::RunRecord* run = &opened.run;
  // A run ended with an outcome unknown (by an older version) is not over: an abort with a
  // rollback settles it and rolls back what the settle finds applied.
  const std::size_t unknown = unsettled_calls(*store, run->id);
  // A run stopped after a rollback of only what it had not proven still has stages on the new
  // version (those that passed): an abort with a rollback rolls them back too.
  const auto records = store->load_stages(run->id);
  const bool kept = std::any_of(records.begin(), records.end(), [](const state::StageRecord& s) {
    return s.status == state::StageStatus::passed && s.dispatched_at;
  });
  const bool roll_back_kept = o.rollback && kept && run->status != state::RunStatus::completed;
  if (state::is_final(run->status) && !(o.rollback && unknown > 0) && !roll_back_kept) {
    std::cerr << fmt::format("rollout: run {} is already {}{}\n", run->id, state::name(run->status),
                             unknown > 0 ? fmt::format("; the outcome of {} of its call(s) is not "
                                                       "settled: rollout resume {} settles it",
                                                       unknown, run->id)
                                         : "");
    return kExitInvalidInput;
  }
  const std::string who = current_user();
  const WallTime now = record_time(*store, *run);
  store->request_abort(run->id, {o.rollback, who, now});
  store->add_event(
      {0, run->id, now, "", state::EventKind::abort_requested,
       fmt::format("abort requested by {}{}", who, o.rollback ? ", with rollback" : "")});
  // A live run picks the request up at its next heartbeat; otherwise this process carries it out.
  if (auto held = try_lease(*store, run->id)) {
    std::cout << fmt::format(
        "abort of run {} recorded; the process running it ({}@{}, pid {}) stops within "
        "seconds{}.\n",
        run->id, held->owner.user, held->owner.host, held->owner.pid,
        o.rollback ? " and rolls back what it dispatched" : "");
    return kExitOk;
  }
  // The process that ran it may have carried the request out and ended between the request
  // and this lease (told at once on PostgreSQL): then it is done, by that process.
  if (auto now_run = store->load_run(run->id);
      now_run && state::is_final(now_run->status) && !state::is_final(run->status)) {
    store->release_lease(run->id, this_process());
    std::cout << fmt::format(
        "abort of run {} recorded; the process running it has stopped it ({}: {}).\n", run->id,
        state::name(now_run->status), now_run->reason);
    return kExitOk;
  }
  if (!o.rollback && unknown == 0) {
    store->set_run_status(run->id, state::RunStatus::aborted, fmt::format("aborted by {}", who),
                          now, true);
    store->release_lease(run->id, this_process());
    std::cout << fmt::format("run {} aborted; nothing more will be sent for it.\n", run->id);
    return kExitStopped;
  }
  // With a rollback, or with calls to settle first (their outcome is read from the devices,
  // then the run ends aborted): this process drives the run to its end.
  o.api.json = o.output == "json";
  if (!opened.plan) return kExitError;  // recorded; a run whose plan does not load cannot roll back
  return drive_run(*store, o.state, *run, *opened.plan, o.api);
}

}  // namespace

void add_run_options(CLI::App* cmd, StateOptions& state, ApiOptions& api, std::string& output);

void add_abort_command(CLI::App& app, Run& run) {
  auto o = std::make_shared<AbortOptions>();
  CLI::App* cmd = app.add_subcommand("abort",
                                     "Stop a run: no further stage starts; with --rollback, send "
                                     "the rollback flow to what it updated.");
  cmd->add_option("run", o->run_id, "Run id, or 'last'")->required();
  cmd->add_flag("--rollback", o->rollback,
                "Roll back every dispatched stage's updated and failed devices (needs the API)");
  // The rollback is a run of its own process when nobody runs the run: it takes the same
  // options as resume (--time-scale for a time-scaled simulator, --output json, ...).
  add_run_options(cmd, o->state, o->api, o->output);
  cmd->footer(
      "Upswift v1 has no cancel call: updates already sent run on; abort stops further waves.");
  cmd->callback([o, &run] { run = [o] { return run_abort(*o); }; });
}

}  // namespace rollout::cli
