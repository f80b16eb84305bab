// rollout retry RUN STAGE [--devices UUID,...] [--rollback]: send a stage's update again to
// the devices whose update failed (or to the chosen few of them), one specific_device call
// each, as a new attempt of the stage, then go on with the run; or, with --rollback, its
// rollback to the devices where the rollback did not succeed, then check it again.
#include <algorithm>
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/exit_codes.h"
#include "cli/review.h"
#include "cli/session.h"
#include "engine/engine.h"
#include "engine/markers.h"
#include "engine/run.h"
#include "engine/selection.h"
#include "util/suggest.h"

namespace rollout::cli {

namespace {

struct RetryOptions {
  std::string run_id;
  std::string stage;
  bool failed_only = true;           // the only kind of retry; the flag stays accepted
  bool rollback = false;             // send the stage's rollback again where it did not succeed
  std::vector<std::string> devices;  // --devices: only these of the failed devices
  StateOptions state;
  ApiOptions api;
  std::string output = "text";
  bool allow_concurrent = false;
};

// What a retry sends again, and to which of `devices` (a stage's snapshot, or its rollback's
// targets): those whose update (`what`) is read as one `again` accepts, or the chosen few of
// them. Empty with a message when a chosen device is not one of them.
struct Chosen {
  std::vector<state::SnapshotDevice> devices;
  std::string refused;
};
Chosen choose(const RetryOptions& o, const std::vector<state::SnapshotDevice>& devices,
              const std::vector<engine::Reached>& reached, bool (*again)(engine::Reached),
              std::string_view what) {
  Chosen out;
  for (std::size_t i = 0; i < devices.size(); ++i) {
    if (again(reached[i])) out.devices.push_back(devices[i]);
  }
  if (o.devices.empty()) return out;
  // The chosen few: each must be one of them; a device whose update did not fail is never
  // sent it again by a retry.
  std::vector<state::SnapshotDevice> chosen;
  for (const std::string& uuid : o.devices) {
    const auto at =
        std::find_if(devices.begin(), devices.end(), [&](const auto& d) { return d.uuid == uuid; });
    if (at == devices.end()) {
      std::vector<std::string_view> known;
      for (const auto& d : devices) known.push_back(d.uuid);
      out.refused =
          fmt::format("device {} is not one of stage {}'s {} {}device(s){}", uuid, o.stage,
                      devices.size(), o.rollback ? "rolled-back " : "", did_you_mean(uuid, known));
      return out;
    }
    const auto status = reached[static_cast<std::size_t>(at - devices.begin())];
    if (!again(status)) {
      const char* where = o.rollback ? "failed or never arrived" : "failed";
      out.refused = fmt::format(
          "the {} of device {} in stage {} is {}, not {}: a retry sends it again only where it "
          "{}",
          what, uuid, o.stage, state::name(status), where, where);
      return out;
    }
    if (std::none_of(chosen.begin(), chosen.end(), [&](const auto& d) { return d.uuid == uuid; }))
      chosen.push_back(*at);
  }
  out.devices = std::move(chosen);
  return out;
}

bool update_failed(engine::Reached r) {
  return r == engine::Reached::failed;
}
// Where the rollback's update failed, was aborted, or never arrived; never where it is still
// under way (a second deploy_update would restart it) or succeeded.
bool rollback_not_back(engine::Reached r) {
  return r == engine::Reached::failed || r == engine::Reached::aborted ||
         r == engine::Reached::missing || r == engine::Reached::unlisted;
}

// Why the stage cannot be retried as asked, if it cannot.
std::optional<std::string> refuse(const RetryOptions& o, const state::RunRecord& run,
                                  const state::StageRecord& record) {
  using state::StageStatus;
  const StageStatus st = record.status;
  if (o.rollback) {
    if (st == StageStatus::rollback_failed) return std::nullopt;
    if (st == StageStatus::rolled_back) {
      return fmt::format(
          "stage {} of run {} is rolled back: its rollback succeeded on every device it was sent "
          "to, there is nothing to send again",
          o.stage, run.id);
    }
    if (st == StageStatus::rolling_back) {
      return fmt::format(
          "stage {} of run {} is rolling back: let its rollback's check finish first (rollout "
          "status {})",
          o.stage, run.id, run.id);
    }
    return fmt::format(
        "stage {} of run {} was not rolled back ({}): --rollback sends a rollback again only "
        "where it failed",
        o.stage, run.id, st);
  }
  if (st == StageStatus::rolled_back || st == StageStatus::rolling_back ||
      st == StageStatus::rollback_failed) {
    return fmt::format(
        "stage {} of run {} was rolled back: a retry would send again the update that was "
        "rolled back; start a new run instead{}",
        o.stage, run.id,
        st == StageStatus::rollback_failed
            ? fmt::format(" (or send the rollback again where it failed: rollout retry {} {} "
                          "--rollback)",
                          run.id, o.stage)
            : "");
  }
  if (state::is_active(st)) {
    return fmt::format("stage {} of run {} is {}: let its gate decide first (rollout status {})",
                       o.stage, run.id, st, run.id);
  }
  return std::nullopt;
}

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
  if (auto why = refuse(o, *run, *record)) {
    std::cerr << "rollout retry: " << *why << "\n";
    return kExitInvalidInput;
  }
  // A rollback is sent again to the devices it targeted, found by its own marker.
  const auto targets =
      o.rollback ? store->load_snapshot(run->id, state::rollback_key(o.stage)) : snapshot;
  if (!targets) {
    std::cerr << fmt::format(
        "rollout retry: stage {} of run {} has no recorded rollback targets: nothing to send "
        "again\n",
        o.stage, run->id);
    return kExitError;
  }
  if (!take_lease(*store, run->id)) return kExitError;
  if (!alone_or_allowed(*store, *run, o.allow_concurrent)) return kExitError;

  // Which devices' update failed: read from the API now, as the gate (or the rollback's
  // check) would.
  const std::string what = o.rollback ? "rollback's update" : "update";
  Chosen chosen;
  {
    asio::io_context io;
    auto connection = ApiConnection::open(
        io, plan, run->api_url,
        runner::run_api_options(*store, resolve_state_path(o.state), *run, o.api));
    std::optional<upswift::Result<std::vector<engine::Reached>>> reached;
    engine::read_reached(connection->api(), stage->deploy_request(), *targets,
                         o.rollback ? engine::rollback_marker(run->id, o.stage)
                                    : engine::dispatch_marker(run->id, o.stage),
                         [&](upswift::Result<std::vector<engine::Reached>> r) { reached = r; });
    io.run();
    if (!reached || !reached->ok()) {
      std::cerr << fmt::format(
          "rollout retry: could not read stage {}'s devices: {}; nothing was sent\n", o.stage,
          reached ? reached->error.message : "no answer");
      return kExitError;
    }
    chosen =
        choose(o, *targets, *reached->value, o.rollback ? rollback_not_back : update_failed, what);
  }
  if (!chosen.refused.empty()) {
    std::cerr << "rollout retry: " << chosen.refused << "; nothing was sent\n";
    return kExitInvalidInput;
  }
  if (chosen.devices.empty()) {
    std::cout << fmt::format("stage {} of run {}: no device's {} {}; nothing to retry\n", o.stage,
                             run->id, what,
                             o.rollback ? "failed or is missing (those under way are left to "
                                          "finish)"
                                        : "failed");
    return kExitOk;
  }
  // A time-scaled simulated run's records are in simulated time, ahead of the wall clock:
  // the retry's records must not go back before them.
  const WallTime now = record_time(*store, *run);
  const int attempt =
      o.rollback ? engine::prepare_rollback_retry(*store, run->id, o.stage, chosen.devices, now)
                 : engine::prepare_retry(*store, run->id, o.stage, chosen.devices, now);
  if (!o.api.json) {
    std::cout << fmt::format("run {}: {}retry {} of stage {}: {} device(s) whose {} failed\n",
                             run->id, o.rollback ? "rollback " : "", attempt, o.stage,
                             chosen.devices.size(), what);
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
  cmd->add_flag("--rollback", o->rollback,
                "Send the stage's rollback again instead, to its devices where the rollback's "
                "update failed, was aborted or never arrived (a stage whose status is "
                "rollback_failed); then check it again");
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
          "go on. A rolled-back stage cannot be retried.\n\n"
          "With --rollback, the rollback flow goes again, one specific_device call each, to the\n"
          "devices where the stage's rollback did not succeed (never where it is still under\n"
          "way); its check then reads every device it was sent to, and the stage is rolled\n"
          "back once it succeeded on all of them.\n\n") +
      kExitCodesHelp);
  cmd->callback([o, &run] { run = [o] { return run_retry(*o); }; });
}

}  // namespace rollout::cli
