#include "engine/run.h"

#include <ctime>
#include <set>

#include <fmt/format.h>

#include "util/sha256.h"

namespace rollout::engine {

std::string new_run_id(WallTime now, std::mt19937_64& rng) {
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  return fmt::format("r-{}-{:04x}", stamp, std::uniform_int_distribution<int>(0, 0xffff)(rng));
}

std::vector<std::string> run_targets(const plan::Plan& plan) {
  std::set<std::string> keys;
  for (const plan::Stage& stage : plan.stages) {
    const upswift::DeployRequest r = stage.deploy_request();
    if (r.groups.empty()) keys.insert(r.project + "/*");
    for (const std::string& g : r.groups) keys.insert(r.project + "/" + g);
  }
  return {keys.begin(), keys.end()};
}

state::RunRecord create_run(state::StateStore& store, const plan::Plan& plan,
                            const RunOrigin& origin, const std::string& run_id, WallTime now,
                            const state::RunClaim* claim,
                            std::optional<state::RunConflict>* conflict) {
  state::RunRecord run;
  run.id = run_id;
  run.plan_name = plan.name;
  run.plan_path = origin.plan_path;
  run.plan_text = origin.plan_text;
  run.plan_hash = sha256_hex(origin.plan_text);
  run.created_by = origin.user;
  run.host = origin.host;
  run.api_url = origin.api_url;
  run.status = state::RunStatus::running;
  run.created_at = now;
  run.updated_at = now;
  run.targets = run_targets(plan);
  std::vector<state::StageRecord> stages;
  for (std::size_t i = 0; i < plan.stages.size(); ++i) {
    state::StageRecord s;
    s.run_id = run_id;
    s.name = plan.stages[i].name;
    s.position = static_cast<int>(i);
    stages.push_back(s);
  }
  auto refused = store.create_run(run, stages, claim);
  if (conflict) *conflict = std::move(refused);
  return run;
}

namespace {

// A retry's (or a rollback retry's) targets under the next attempt of `key`, written first: a
// crash after this leaves a run that a resume or another retry takes on from its records.
// Then the event that says so ("`label` N: `sending` the K device(s) `which`"), and the run
// left resumable. Returns N.
int open_attempt(state::StateStore& store, const std::string& run_id, const std::string& stage,
                 const std::vector<state::SnapshotDevice>& devices, WallTime now,
                 std::string (*key)(const std::string&, int), std::string_view label,
                 std::string_view sending, std::string_view which) {
  int attempt = 1;
  while (store.load_snapshot(run_id, key(stage, attempt))) ++attempt;
  store.save_snapshot(run_id, key(stage, attempt), devices);
  store.add_event({0, run_id, now, stage, state::EventKind::retry,
                   fmt::format("{} {}: {} the {} device(s) {}", label, attempt, sending,
                               devices.size(), which)});
  store.set_run_status(run_id, state::RunStatus::interrupted,
                       fmt::format("{} {} of stage {}: continue with rollout resume {}", label,
                                   attempt, stage, run_id),
                       now, false);
  return attempt;
}

}  // namespace

int prepare_retry(state::StateStore& store, const std::string& run_id, const std::string& stage,
                  const std::vector<state::SnapshotDevice>& devices, WallTime now) {
  const int attempt = open_attempt(store, run_id, stage, devices, now, retry_key, "retry",
                                   "dispatching again to", "whose update failed");
  for (state::StageRecord r : store.load_stages(run_id)) {
    if (r.name == stage) {
      r.status = state::StageStatus::dispatching;
      r.reason =
          fmt::format("retry {} to {} device(s) whose update failed", attempt, devices.size());
    } else if (r.status == state::StageStatus::stopped) {
      // Cut off when the run stopped: it goes on from what its records say.
      r.status = r.dispatched_at ? state::StageStatus::gating : state::StageStatus::waiting;
      r.reason = fmt::format("resumed with the retry of {}", stage);
    } else {
      continue;
    }
    r.finished_at.reset();
    store.update_stage(r);
  }
  return attempt;
}

int prepare_rollback_retry(state::StateStore& store, const std::string& run_id,
                           const std::string& stage,
                           const std::vector<state::SnapshotDevice>& devices, WallTime now) {
  const int attempt =
      open_attempt(store, run_id, stage, devices, now, rollback_retry_key, "rollback retry",
                   "sending the rollback again to", "where it did not succeed");
  for (state::StageRecord r : store.load_stages(run_id)) {
    if (r.name != stage) continue;
    // Its failure stays its reason; the earlier check's verdict gives way to this one's.
    const auto check = r.reason.find("; rollback: ");
    if (check != std::string::npos) r.reason.resize(check);
    r.reason += fmt::format("; rollback retry {} to {} device(s)", attempt, devices.size());
    r.status = state::StageStatus::rolling_back;
    r.finished_at.reset();
    store.update_stage(r);
  }
  return attempt;
}

}  // namespace rollout::engine
