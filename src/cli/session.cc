#include "cli/session.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/command.h"
#include "cli/exit_codes.h"
#include "store/postgres_store.h"
#include "util/suggest.h"

namespace rollout::cli {

std::string resolve_state_path(const StateOptions& o) {
  if (!o.state_path.empty()) return o.state_path;
  if (const char* env = std::getenv("ROLLOUT_STATE"); env && *env) return env;
  return "rollout.db";
}

void add_state_option(CLI::App* cmd, std::string& state_path) {
  cmd->add_option("--state", state_path,
                  "Where the runs are kept: a SQLite file, or a PostgreSQL database shared by a "
                  "team, postgresql://USER@HOST:PORT/DB?sslmode=... (its password from "
                  "PGPASSWORD, ~/.pgpass or a service file). Default: $ROLLOUT_STATE, else "
                  "rollout.db");
}

void add_state_retry_option(CLI::App* cmd, StateOptions& state) {
  cmd->add_option_function<std::string>(
         "--state-retry",
         [&state](const std::string& text) {
           std::string why;
           auto d = parse_duration(text, &why);
           if (!d) throw CLI::ValidationError("--state-retry", why);
           state.state_retry = *d;
         },
         "On a PostgreSQL state: for how long a lost connection (a server restart, a network "
         "blip) is made again, with backoff, before the run stops resumable; 0s: not at all "
         "(default 60s)")
      ->type_name("DURATION");
}

WallTime record_time(state::StateStore& store, const state::RunRecord& run) {
  return std::max({std::chrono::system_clock::now(), run.updated_at,
                   store.latest_record(run.id).value_or(run.updated_at)});
}

void check_state_url(const StateOptions& o) {
  const std::string path = resolve_state_path(o);
  // A password in the URL is bad input (exit 2), not a state that failed.
  if (store::is_postgres_url(path)) {
    if (auto why = store::postgres_url_refusal(path)) throw CommandError(kExitInvalidInput, *why);
  }
}

std::unique_ptr<store::SqlStore> open_store(const StateOptions& o, bool create) {
  check_state_url(o);
  const std::string path = resolve_state_path(o);
  try {
    return store::open_state(path, create, std::chrono::duration_cast<Millis>(o.state_retry));
  } catch (const store::StoreError& e) {
    throw CommandError(kExitError, e.what());
  }
}

state::RunRecord find_run(state::StateStore& store, const std::string& id) {
  if (id == "last") {
    auto runs = store.list_runs();
    if (runs.empty()) throw CommandError(kExitInvalidInput, "the state database holds no runs yet");
    show_if_gone(store, runs.back());
    return runs.back();
  }
  auto run = store.load_run(id);
  if (!run) {
    throw CommandError(
        kExitInvalidInput,
        fmt::format("no run '{}' in the state database (rollout runs lists them)", id));
  }
  show_if_gone(store, *run);
  return *run;
}

std::string no_such_stage(const std::string& run_id, const std::string& stage,
                          const std::vector<std::string>& names) {
  const std::vector<std::string_view> candidates(names.begin(), names.end());
  return fmt::format("run {} has no stage '{}'{}; its stages: {}", run_id, stage,
                     did_you_mean(stage, candidates), fmt::join(names, ", "));
}

std::size_t unsettled_calls(state::StateStore& store, const std::string& run_id) {
  const auto calls = store.load_calls(run_id);
  return static_cast<std::size_t>(
      std::count_if(calls.begin(), calls.end(), [](const auto& c) { return state::unsettled(c); }));
}

OpenedRun open_run(const StateOptions& state, const std::string& run_id) {
  auto store = open_store(state);
  auto run = find_run(*store, run_id);
  auto plan = check_stored_plan(run.id, run.plan_path, run.plan_text);
  return OpenedRun{std::move(store), std::move(run), std::move(plan)};
}

void show_if_gone(state::StateStore& store, state::RunRecord& run) {
  if (run.status != state::RunStatus::running) return;
  const auto lease = store.lease(run.id);
  const WallTime now = std::chrono::system_clock::now();
  std::string why;
  if (!lease) {
    why = "no process holds its lease";
  } else if (now - lease->heartbeat_at > lease_stale_after()) {
    why = fmt::format(
        "its process ({}@{}, pid {}) was last heard from {}s ago", lease->owner.user,
        lease->owner.host, lease->owner.pid,
        std::chrono::duration_cast<std::chrono::seconds>(now - lease->heartbeat_at).count());
  } else if (runner::process_is_gone(lease->owner)) {
    why = fmt::format("its process (pid {}) is gone", lease->owner.pid);
  } else {
    return;
  }
  run.status = state::RunStatus::interrupted;
  run.reason =
      fmt::format("{} (crashed or killed); continue with `rollout resume {}`", why, run.id);
}

bool take_lease(state::StateStore& store, const std::string& run_id) {
  const WallTime now = std::chrono::system_clock::now();
  if (auto held = try_lease(store, run_id)) {
    const auto age =
        std::chrono::duration_cast<std::chrono::seconds>(now - held->heartbeat_at).count();
    std::cerr << fmt::format(
        "rollout: run {} is being run by {}@{} (pid {}), last heard from {}s ago; "
        "refusing to run it twice. If that process is gone, its lease goes stale "
        "{}s after its last heartbeat.\n",
        run_id, held->owner.user, held->owner.host, held->owner.pid, age,
        lease_stale_after().count() / 1000);
    return false;
  }
  return true;
}

void refuse_beside(const state::RunConflict& conflict) {
  const auto age = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::system_clock::now() - conflict.lease.heartbeat_at);
  std::cerr << fmt::format(
      "rollout: refusing to start: run {} (plan '{}') is live in this state database, run by "
      "{}@{} (pid {}), last heard from {}s ago, and {}.\nNothing was sent or written. Watch it "
      "with `rollout status {}`; if its process is gone, its lease goes stale {}s after its "
      "last heartbeat; to run both at once anyway, add --allow-concurrent.\n",
      conflict.run.id, conflict.run.plan_name, conflict.lease.owner.user, conflict.lease.owner.host,
      conflict.lease.owner.pid, std::max<long long>(age.count(), 0), conflict.why, conflict.run.id,
      lease_stale_after().count() / 1000);
}

bool alone_or_allowed(state::StateStore& store, const state::RunRecord& run,
                      bool allow_concurrent) {
  auto conflict = store.live_conflict(run, run_claim(allow_concurrent));
  if (!conflict) return true;
  store.release_lease(run.id, this_process());
  refuse_beside(*conflict);
  return false;
}

}  // namespace rollout::cli
