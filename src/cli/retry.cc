// rollout retry RUN STAGE [--devices UUID,...]: send a stage's update again to the devices
// whose update failed (or to the chosen few of them), one specific_device call each, as a new
// attempt of the stage; then go on with the run.
#include <algorithm>
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/exit_codes.h"
#include "cli/review.h"
#include "cli/session.h"
#include "engine/engine.h"
#include "engine/run.h"
#include "engine/selection.h"
#include "util/suggest.h"

namespace rollout::cli {

namespace {

struct RetryOptions {
  std::string run_id;
  std::string stage;
  bool failed_only = true;           // the only kind of retry; the flag stays accepted
  std::vector<std::string> devices;  // --devices: only these of the failed devices
  StateOptions state;
  ApiOptions api;
  std::string output = "text";
  bool allow_concurrent = false;
};

int run_retry(RetryOptions& o) {
  o.api.json = o.output == "json";
  auto opened = open_run(o.state, o.run_id);
  auto& store = opened.store;
  const state::RunRecord* run = &opened.run;
  if (!opened.plan) return kExitError;
  const plan::Plan& plan = opened.plan->plan;
  const plan::Stage* stage = nullptr;
  std::vector<std::string> names;
  for (const auto& s : plan.stages) {
    if (s.name == o.stage) stage = &s;
    names.push_back(s.name);
  }
  if (!stage) {
    std::cerr << "rollout retry: " << no_such_stage(run->id, o.stage, names) << "\n";
    return kExitInvalidInput;
  }
  std::optional<state::StageRecord> record;
  for (const auto& r : store->load_stages(run->id)) {
    if (r.name == o.stage) record = r;
  }
  const auto snapshot = store->load_snapshot(run->id, o.stage);
  if (!record || !record->dispatched_at || !snapshot) {
    std::cerr << fmt::format(
        "rollout retry: stage {} of run {} has not been dispatched ({}): there is nothing to "
        "retry\n",
        o.stage, run->id, record ? state::name(record->status) : "no record");
    return kExitInvalidInput;
  }
  if (record->status == state::StageStatus::rolled_back ||
      record->status == state::StageStatus::rolling_back) {
    std::cerr << fmt::format(
        "rollout retry: stage {} of run {} was rolled back: a retry would send again the "
        "update that was rolled back; start a new run instead\n",
        o.stage, run->id);
    return kExitInvalidInput;
  }
  if (state::is_active(record->status)) {
    std::cerr << fmt::format(
        "rollout retry: stage {} of run {} is {}: let its gate decide first (rollout status "
        "{})\n",
        o.stage, run->id, record->status, run->id);
    return kExitInvalidInput;
  }
  if (!take_lease(*store, run->id)) return kExitError;
  if (!alone_or_allowed(*store, *run, o.allow_concurrent)) return kExitError;

  // Which devices' update failed: read from the API now, as the gate would.
  std::vector<state::SnapshotDevice> failed;
  {
    asio::io_context io;
    auto connection =
        ApiConnection::open(io, plan, run->api_url, run_api_options(*store, o.state, *run, o.api));
    std::optional<upswift::Result<std::vector<engine::Reached>>> reached;
    engine::read_reached(connection->api(), stage->deploy_request(), *snapshot,
                         engine::dispatch_marker(run->id, o.stage),
                         [&](upswift::Result<std::vector<engine::Reached>> r) { reached = r; });
    io.run();
    if (!reached || !reached->ok()) {
      std::cerr << fmt::format(
          "rollout retry: could not read stage {}'s devices: {}; nothing "
          "was sent\n",
          o.stage, reached ? reached->error.message : "no answer");
      return kExitError;
    }
    for (std::size_t i = 0; i < snapshot->size(); ++i) {
      if ((*reached->value)[i] == engine::Reached::failed) failed.push_back((*snapshot)[i]);
    }
    if (!o.devices.empty()) {
      // The chosen few: each must be one of the stage's devices whose update failed; a
      // device whose update did not fail is never sent it again by a retry.
      std::vector<state::SnapshotDevice> chosen;
      for (const std::string& uuid : o.devices) {
        const auto at = std::find_if(snapshot->begin(), snapshot->end(),
                                     [&](const auto& d) { return d.uuid == uuid; });
        if (at == snapshot->end()) {
          std::vector<std::string_view> known;
          for (const auto& d : *snapshot) known.push_back(d.uuid);
          std::cerr << fmt::format(
              "rollout retry: device {} is not one of stage {}'s {} device(s){}; nothing was "
              "sent\n",
              uuid, o.stage, snapshot->size(), did_you_mean(uuid, known));
          return kExitInvalidInput;
        }
        const auto status = (*reached->value)[static_cast<std::size_t>(at - snapshot->begin())];
        if (status != engine::Reached::failed) {
          std::cerr << fmt::format(
              "rollout retry: the update of device {} in stage {} is {}, not failed: a retry "
              "sends it again only where it failed; nothing was sent\n",
              uuid, o.stage, state::name(status));
          return kExitInvalidInput;
        }
        if (std::none_of(chosen.begin(), chosen.end(),
                         [&](const auto& d) { return d.uuid == uuid; }))
          chosen.push_back(*at);
      }
      failed = std::move(chosen);
    }
  }
  if (failed.empty()) {
    std::cout << fmt::format("stage {} of run {}: no device's update failed; nothing to retry\n",
                             o.stage, run->id);
    return kExitOk;
  }
  // A time-scaled simulated run's records are in simulated time, ahead of the wall clock:
  // the retry's records must not go back before them.
  const WallTime now = std::max(std::chrono::system_clock::now(), run->updated_at);
  const int attempt = engine::prepare_retry(*store, run->id, o.stage, failed, now);
  if (!o.api.json) {
    std::cout << fmt::format("run {}: retry {} of stage {}: {} device(s) whose update failed\n",
                             run->id, attempt, o.stage, failed.size());
  }
  auto reopened = store->load_run(run->id);
  return drive_run(*store, o.state, *reopened, *opened.plan, o.api);
}

}  // namespace

void add_run_options(CLI::App* cmd, StateOptions& state, ApiOptions& api, std::string& output);

void add_retry_command(CLI::App& app, Run& run) {
  auto o = std::make_shared<RetryOptions>();
  CLI::App* cmd = app.add_subcommand(
      "retry", "Send a stage's update again to its devices whose update failed, then go on.");
  cmd->add_option("run", o->run_id, "Run id, or 'last'")->required();
  cmd->add_option("stage", o->stage, "The stage to retry")->required();
  cmd->add_flag("--failed-only", o->failed_only,
                "Only the devices whose update failed: the default, and the only kind of retry "
                "(accepted for scripts that say it)");
  cmd->add_option("--devices", o->devices,
                  "Only these of the stage's devices whose update failed (uuids, comma-separated "
                  "or repeated)")
      ->delimiter(',');
  add_run_options(cmd, o->state, o->api, o->output);
  cmd->add_flag("--allow-concurrent", o->allow_concurrent,
                "Retry even while another live run of the same plan, or of a stage target it "
                "shares, holds its lease in the same state database");
  cmd->footer(
      std::string(
          "The stage's snapshot devices whose update (this run's) failed are read from the API\n"
          "and recorded as the retry's targets; each gets one deploy_update with a\n"
          "specific_device filter, written ahead like every dispatch. The stage's gate then\n"
          "judges all its devices again, its bake starting over; stages the run's stop cut off\n"
          "go on. A rolled-back stage cannot be retried.\n\n") +
      kExitCodesHelp);
  cmd->callback([o, &run] { run = [o] { return run_retry(*o); }; });
}

}  // namespace rollout::cli
