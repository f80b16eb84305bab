// rollout apply PLAN: start a new run of the plan.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <random>

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/exit_codes.h"
#include "cli/saved_plan.h"
#include "cli/session.h"
#include "client/upswift_client.h"
#include "engine/run.h"
#include "preview/preview.h"
#include "util/sha256.h"
#include "util/time_text.h"

namespace rollout::cli {

namespace {

struct ApplyOptions {
  std::string plan;
  std::string plan_file;  // --plan-file: a preview saved by rollout plan --out
  StateOptions state;
  ApiOptions api;
  bool yes = false;
  bool dry_run = false;
  bool allow_concurrent = false;
  std::string output = "text";
};

bool confirm(const CheckedPlan& c, const std::string& url, const SavedPlan* saved) {
  std::cout << plan_summary(c, url, saved)
            << fmt::format(
                   "(every deploy_update body: rollout plan --offline {}; each stage's "
                   "devices now: rollout plan {})\n",
                   c.path, c.path)
            << fmt::format("Apply plan '{}'? Type 'yes' to start: ", c.plan.name) << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  return answer == "yes";
}

// Reads --plan-file; nullopt (having said why) when it cannot be used.
std::optional<SavedPlan> read_saved_plan(const std::string& path) {
  std::string why;
  auto text = read_file(path, &why);
  if (!text) {
    std::cerr << fmt::format("{}: error: cannot read the saved plan: {}\n", path, why);
    return std::nullopt;
  }
  auto saved = parse_saved_plan(*text, &why);
  if (!saved) std::cerr << fmt::format("{}: error: {}\n", path, why);
  return saved;
}

// Like Terraform's stale-plan check: the plan file, the API and every stage's selection
// must be what they were when `rollout plan --out` saved them. Says why not.
bool saved_plan_is_current(const SavedPlan& saved, const std::string& saved_path,
                           const CheckedPlan& c, const std::string& url, const ApiOptions& api) {
  const auto refuse = [&](const std::string& why) {
    std::cerr << fmt::format(
        "rollout: {} is stale: {}\nNothing was sent. Run `rollout plan {} "
        "--out {}` again and review it.\n",
        saved_path, why, c.path, saved_path);
    return false;
  };
  if (sha256_hex(c.text) != saved.plan_sha256) {
    return refuse(fmt::format("the plan file {} changed since it was saved", c.path));
  }
  if (url != saved.api_url) {
    return refuse(
        fmt::format("it was resolved against {}; this run would go to {}", saved.api_url, url));
  }
  asio::io_context io;
  auto connection = ApiConnection::open(io, c.plan, url, api);
  std::optional<upswift::Result<preview::Preview>> now;
  preview::build_preview(connection->api(), c.plan, c.graph,
                         [&](upswift::Result<preview::Preview> r) { now = std::move(r); });
  io.run();
  if (!now || !now->ok()) {
    std::cerr << fmt::format(
        "rollout: could not read the fleet to check {}: {}; nothing was sent\n", saved_path,
        now ? now->error.message : "no answer");
    return false;
  }
  const auto changes = preview::stale_stages(saved.preview, *now->value);
  if (changes.empty()) return true;
  std::string lines;
  for (const auto& line : changes) lines += "\n  " + line;
  return refuse(fmt::format("the fleet changed since {}:{}", local_time(saved.resolved_at), lines));
}

int run_apply(ApplyOptions& o) {
  std::optional<SavedPlan> saved;
  if (!o.plan_file.empty()) {
    saved = read_saved_plan(o.plan_file);
    if (!saved) return kExitInvalidInput;
    if (o.plan.empty()) {
      o.plan = saved->plan_file;
    } else if (std::filesystem::absolute(o.plan).lexically_normal() !=
               std::filesystem::absolute(saved->plan_file).lexically_normal()) {
      // Another file than the one it was saved from: fine if it is the same plan, byte for
      // byte; otherwise say which file it was saved from, not that "it changed".
      std::string why;
      const auto text = read_file(o.plan, &why);
      if (!text || sha256_hex(*text) != saved->plan_sha256) {
        std::cerr << fmt::format(
            "rollout: {} was saved from the plan {}, not {}; give that file (or none), or run "
            "`rollout plan {} --out FILE` to save this one. Nothing was sent.\n",
            o.plan_file, saved->plan_file, o.plan, o.plan);
        return kExitInvalidInput;
      }
    }
  } else if (o.plan.empty()) {
    std::cerr << "rollout apply: give a plan file, or --plan-file SAVED from rollout plan --out\n";
    return kExitInvalidInput;
  }
  auto checked = load_checked_plan(o.plan);
  if (!checked) return kExitInvalidInput;
  o.api.json = o.output == "json";
  if (o.dry_run) {
    std::cout << fmt::format(
        "dry run of plan '{}': {} stage(s); nothing is sent and nothing is written.\n"
        "See every deploy_update body with: rollout plan --offline {}\n",
        checked->plan.name, checked->plan.stages.size(), o.plan);
    for (dag::StageId id : checked->graph.order) {
      const auto& s = checked->plan.stages[id];
      std::string needs;
      for (dag::StageId n : checked->graph.needs[id])
        needs += (needs.empty() ? "" : ", ") + checked->plan.stages[n].name;
      std::cout << fmt::format("  {:<16} after: {:<20} {}\n", s.name, needs.empty() ? "-" : needs,
                               s.approval_required ? "approval required" : "");
    }
    return kExitOk;
  }
  const std::string url = run_api_url(checked->plan, o.api);
  if (auto why = api_refusal(url, o.api)) {
    std::cerr << "rollout: " << *why << "\n";
    return kExitInvalidInput;
  }
  if (saved && !saved_plan_is_current(*saved, o.plan_file, *checked, url, o.api))
    return kExitInvalidInput;
  if (o.api.simulate_fleet.empty()) {
    if (!o.yes) {
      if (!isatty(STDIN_FILENO)) {
        std::cerr
            << "rollout: not on a terminal: add --yes to start the rollout without confirmation\n";
        return kExitInvalidInput;
      }
      if (!confirm(*checked, url, saved ? &*saved : nullptr)) {
        std::cerr << "rollout: not started\n";
        return kExitInvalidInput;
      }
    }
  }
  // What the API can tell before anything is written or sent: a mistyped group in a later
  // stage is found now, not after the canary was sent and baked.
  check_state_url(o.state);
  preflight(checked->plan, url, o.api, "Fix the plan, then apply it again.");
  auto store = open_store(o.state, /*create=*/true);
  std::mt19937_64 rng(std::random_device{}());
  const WallTime now = std::chrono::system_clock::now();
  const std::string run_id = engine::new_run_id(now, rng);
  const state::LeaseOwner me = this_process();
  // The run and its lease in one transaction with the check for a live run beside it: two
  // applies started at the same instant cannot both pass the check.
  state::RunClaim claim = run_claim(o.allow_concurrent);
  claim.now = now;
  std::optional<state::RunConflict> conflict;
  const state::RunRecord run =
      engine::create_run(*store, checked->plan,
                         {std::filesystem::absolute(checked->path).lexically_normal().string(),
                          checked->text, me.user, me.host, url},
                         run_id, now, &claim, &conflict);
  if (conflict) {
    refuse_beside(*conflict);
    return kExitError;
  }
  if (saved) {
    // The gates judge exactly the devices that were previewed (stages whose selection
    // depends on update or online state, and samples, are made at the stage's start).
    for (const preview::StagePreview& s : saved->preview.stages) {
      if (s.dynamic || s.sample_size) continue;  // drawn or read at the stage's start
      store->save_snapshot(run_id, s.name, s.devices);
      store->add_event(
          {0, run_id, now, s.name, state::EventKind::snapshot,
           fmt::format("targets {} device(s), as saved in {}", s.devices.size(), o.plan_file)});
    }
  }
  if (!o.api.json) {
    std::cout << fmt::format("run {}: plan '{}', {} stage(s), state in {}\n", run_id,
                             checked->plan.name, checked->plan.stages.size(),
                             resolve_state_path(o.state));
  }
  return drive_run(*store, o.state, run, *checked, o.api);
}

}  // namespace

void add_run_options(CLI::App* cmd, StateOptions& state, ApiOptions& api, std::string& output) {
  add_state_option(cmd, state.state_path);
  add_state_retry_option(cmd, state);
  cmd->add_option(
      "--simulate", api.simulate_fleet,
      "Run against an in-process fleet simulator built from FLEET.yaml instead of Upswift. What "
      "it applied is kept beside the state database (STATE.sim/RUN.jsonl; with a PostgreSQL "
      "state, in ~/.local/state/rollout/sim/), so the run pauses, "
      "resumes and is approved like a real one; resume needs no --simulate (given, it must "
      "name the same file)");
  cmd->add_option(
         "--time-scale", api.time_scale,
         "With a simulated fleet: run time this many times faster (600: 10 minutes a second); "
         "a later process of a --simulate run goes on at the run's own unless given")
      ->check(CLI::Range(0.001, 1e6))
      ->each([&api](const std::string&) { api.time_scale_given = true; });
  cmd->add_option("--output", output,
                  "text, or json: the event stream, one JSON object per line on stdout (README: "
                  "\"The event stream\")")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->add_flag("--no-progress", api.no_progress,
                "Plain timestamped lines even on a terminal (also when NO_COLOR is set or stdout "
                "is not a terminal)");
}

void add_apply_command(CLI::App& app, Run& run) {
  auto o = std::make_shared<ApplyOptions>();
  CLI::App* cmd =
      app.add_subcommand("apply", "Run a plan: dispatch each stage, gate it, record everything.");
  cmd->add_option("plan", o->plan, "Plan file (YAML); with --plan-file, the one it was saved from");
  cmd->add_option("--plan-file", o->plan_file,
                  "Run a plan saved by `rollout plan --out FILE`: refused when the plan file or "
                  "the fleet changed since");
  add_run_options(cmd, o->state, o->api, o->output);
  cmd->add_flag("--yes,-y", o->yes, "Start without asking (needed when not on a terminal)");
  cmd->add_flag("--allow-concurrent", o->allow_concurrent,
                "Start even while a live run of the same plan, or of a stage target (project "
                "and group) this plan shares, holds its lease in the same state database");
  cmd->add_flag("--dry-run", o->dry_run,
                "Check the plan and show the order of stages; send and write nothing");
  cmd->footer(
      std::string(
          "The Upswift token comes from UPSWIFT_USER_TOKEN; the API URL from the plan's api.url,\n"
          "else UPSWIFT_API_URL, else https://api.upswift.io/v1/.\n"
          "Before anything is written or sent, every project and group the stages name is read\n"
          "from the API: one that lists no device is refused (exit 2), naming the stage.\n"
          "Example: rollout apply plans/parallel-regions.yaml --simulate "
          "examples/fleets/small.yaml --time-scale 600\n\n") +
      kExitCodesHelp);
  cmd->callback([o, &run] { run = [o] { return run_apply(*o); }; });
}

}  // namespace rollout::cli
