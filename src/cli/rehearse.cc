// rollout rehearse PLAN --fleet FLEET.yaml [--runs N]: the predicted timeline of a run.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/exit_codes.h"
#include "rehearsal/rehearsal.h"
#include "util/duration.h"

namespace rollout::cli {

namespace {

struct RehearseOptions {
  std::string plan;
  std::string fleet;
  int runs = 1;
  std::optional<std::uint64_t> seed;
  std::string approval_delay = "0s";
  std::string output = "text";
};

using Json = nlohmann::ordered_json;

std::string at(const std::optional<Millis>& t) {
  return t ? "+" + format_duration(std::chrono::duration_cast<Seconds>(*t)) : std::string("-");
}

Json ms_json(const std::optional<Millis>& t) {
  return t ? Json(t->count() / 1000.0) : Json(nullptr);
}

Json result_json(const rehearsal::Result& r) {
  Json stages = Json::array();
  for (const auto& s : r.stages) {
    stages.push_back({{"stage", s.name},
                      {"status", s.status},
                      {"reason", s.reason},
                      {"devices", s.devices},
                      {"starts_s", ms_json(s.started)},
                      {"dispatched_s", ms_json(s.dispatched)},
                      {"ends_s", ms_json(s.finished)},
                      {"deploy_update_calls", s.deploy_calls}});
  }
  return {{"type", "rehearsal"},
          {"seed", r.seed},
          {"ending", engine::name(r.ending)},
          {"reason", r.reason},
          {"duration_s", r.duration.count() / 1000.0},
          {"api_calls",
           {{"deploy_update", r.deploy_calls},
            {"devices_details", r.details_calls},
            {"get_devices_state", r.state_calls}}},
          {"stages", stages}};
}

void print_one(const rehearsal::Result& r) {
  std::cout << fmt::format("{:<16} {:<15} {:>8} {:>10} {:>12} {:>10} {:>14}\n", "STAGE", "RESULT",
                           "DEVICES", "STARTS", "DISPATCHED", "ENDS", "DEPLOY_UPDATE");
  for (const auto& s : r.stages) {
    std::cout << fmt::format("{:<16} {:<15} {:>8} {:>10} {:>12} {:>10} {:>14}\n", s.name,
                             state::name(s.status), s.devices, at(s.started), at(s.dispatched),
                             at(s.finished), s.deploy_calls);
    if (s.status != state::StageStatus::passed && s.status != state::StageStatus::waiting &&
        !s.reason.empty())
      std::cout << fmt::format("{:<16} {}\n", "", s.reason);
  }
  std::cout << fmt::format(
      "\nrun {} after {} of virtual time: {}\nAPI calls: {} deploy_update, {} devices_details, {} "
      "get_devices_state\n",
      engine::name(r.ending), format_duration(std::chrono::duration_cast<Seconds>(r.duration)),
      r.reason, r.deploy_calls, r.details_calls, r.state_calls);
}

std::string percent(int n, int of) {
  return fmt::format("{:.0f}%", 100.0 * n / std::max(of, 1));
}

Millis quantile(std::vector<Millis> v, double q) {
  if (v.empty()) return Millis{0};
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
}

void print_spread(const std::vector<rehearsal::Result>& results) {
  const int n = static_cast<int>(results.size());
  std::map<std::string_view, int> endings;
  std::vector<Millis> durations;
  for (const auto& r : results) {
    ++endings[engine::name(r.ending)];
    durations.push_back(r.duration);
  }
  std::cout << fmt::format("{} rehearsals, seeds {}..{}\n", n, results.front().seed,
                           results.back().seed);
  for (const auto& [ending, count] : endings)
    std::cout << fmt::format("  run {} in {} ({} of {})\n", ending, percent(count, n), count, n);
  std::cout << fmt::format(
      "  duration: median {}, 90th percentile {}\n\n",
      format_duration(std::chrono::duration_cast<Seconds>(quantile(durations, 0.5))),
      format_duration(std::chrono::duration_cast<Seconds>(quantile(durations, 0.9))));
  std::cout << fmt::format("{:<16} {:>7} {:>7} {:>7} {:>8} {:>11} {:>10} {:>10}\n", "STAGE",
                           "PASSED", "FAILED", "PAUSED", "STOPPED", "NOT_REACHED", "ENDS_P50",
                           "ENDS_P90");
  std::vector<std::string> findings;
  for (std::size_t i = 0; i < results.front().stages.size(); ++i) {
    const std::string& name = results.front().stages[i].name;
    // STOPPED: started, then cut off by the run's stop; NOT_REACHED: never started.
    int passed = 0, failed = 0, paused = 0, stopped = 0, not_reached = 0;
    std::vector<Millis> ends;
    for (const auto& r : results) {
      const auto& s = r.stages[i];
      using state::StageStatus;
      if (s.status == StageStatus::passed)
        ++passed;
      else if (s.status == StageStatus::failed || s.failed_itself)
        ++failed;
      else if (s.status == StageStatus::paused)
        ++paused;
      else if (s.started)
        ++stopped;
      else
        ++not_reached;
      if (s.finished && s.status == StageStatus::passed) ends.push_back(*s.finished);
    }
    std::cout << fmt::format(
        "{:<16} {:>7} {:>7} {:>7} {:>8} {:>11} {:>10} {:>10}\n", name, percent(passed, n),
        percent(failed, n), percent(paused, n), percent(stopped, n), percent(not_reached, n),
        ends.empty() ? "-" : at(quantile(ends, 0.5)), ends.empty() ? "-" : at(quantile(ends, 0.9)));
    if (failed > 0)
      findings.push_back(
          fmt::format("the {} gate fails in {} of rehearsals", name, percent(failed, n)));
    if (paused > 0)
      findings.push_back(fmt::format("the {} gate is inconclusive (pauses) in {} of rehearsals",
                                     name, percent(paused, n)));
  }
  if (!findings.empty()) {
    std::cout << "\n";
    for (const auto& f : findings) std::cout << "  " << f << "\n";
  }
}

// The exit code `apply` would give for the predicted ending; over several rehearsals the
// gravest: a stop (3), else a pause (4), else an error (1), else 0.
int predicted_exit(const std::vector<rehearsal::Result>& results) {
  bool paused = false, failed = false;
  for (const auto& r : results) {
    if (r.ending == engine::Ending::stopped) return kExitStopped;
    paused = paused || r.ending == engine::Ending::paused;
    failed =
        failed || (r.ending != engine::Ending::completed && r.ending != engine::Ending::paused);
  }
  if (paused) return kExitPaused;
  return failed ? kExitError : kExitOk;
}

int run_rehearse(const RehearseOptions& o) {
  auto checked = load_checked_plan(o.plan);
  if (!checked) return kExitInvalidInput;
  auto fleet = load_fleet_file(o.fleet);
  if (!fleet) return kExitInvalidInput;
  std::string why;
  auto delay = parse_duration(o.approval_delay, &why);
  if (!delay) {
    std::cerr << fmt::format("rollout: --approval-delay '{}': {}\n", o.approval_delay, why);
    return kExitInvalidInput;
  }
  rehearsal::Options options;
  options.approval_delay = std::chrono::duration_cast<Millis>(*delay);
  // Virtual time starts now, so windows of time in the plan fall as they would today.
  options.start = std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now());
  const std::uint64_t first_seed = o.seed.value_or(fleet->seed);
  // Rehearsals are independent: as many at once as the machine has cores.
  const std::vector<rehearsal::Result> results = rehearsal::rehearse_many(
      checked->plan, checked->graph, *fleet, first_seed, o.runs, options,
      std::max(1u, std::thread::hardware_concurrency()), [&](const rehearsal::Result& r) {
        if (o.output == "json")
          std::cout << result_json(r).dump(-1, ' ', false, Json::error_handler_t::replace) << "\n"
                    << std::flush;
      });
  if (o.output == "json") return predicted_exit(results);
  std::cout << fmt::format("rehearsal of plan '{}' against {} (virtual clock; nothing is sent)\n\n",
                           checked->plan.name, o.fleet);
  if (o.runs == 1)
    print_one(results.front());
  else
    print_spread(results);
  return predicted_exit(results);
}

}  // namespace

void add_rehearse_command(CLI::App& app, Run& run) {
  auto o = std::make_shared<RehearseOptions>();
  CLI::App* cmd = app.add_subcommand(
      "rehearse",
      "Run the whole plan against a simulated fleet on a virtual clock (no real waiting) and "
      "print the predicted timeline: when each stage starts and ends, its API calls, and where a "
      "gate would stop or pause it.");
  cmd->add_option("plan", o->plan, "Plan file (YAML)")->required();
  cmd->add_option("--fleet", o->fleet, "The simulated fleet (FLEET.yaml, as for rollout sim)")
      ->required();
  cmd->add_option("--runs", o->runs,
                  "Rehearse this many times with seeds seed, seed+1, ...; "
                  "report the spread")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--seed", o->seed,
                  "The first seed (default: the fleet file's seed, which `rollout sim` also uses)");
  cmd->add_option("--approval-delay", o->approval_delay,
                  "How long after being asked a person approves a stage")
      ->capture_default_str();
  cmd->add_option("--output", o->output, "text, or json: one object per rehearsal")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->footer(
      "A rehearsal with the fleet file's own seed predicts a run against `rollout sim --fleet\n"
      "FLEET.yaml`: the same devices succeed and fail at the same times after dispatch.\n"
      "Approvals are given --approval-delay after they are asked for, as a person would, the\n"
      "run going on when they come (as `rollout resume` does).\n"
      "Exit code: what `rollout apply` would exit with: 0 completed, 3 stopped, 4 paused, 1 an\n"
      "error; with --runs, the gravest of them (3, then 4, then 1), so a pipeline can gate on\n"
      "it.\n"
      "Example: rollout rehearse plans/canary-then-fleet.yaml --fleet examples/fleets/large.yaml "
      "--runs 20");
  cmd->callback([o, &run] { run = [o] { return run_rehearse(*o); }; });
}

}  // namespace rollout::cli
