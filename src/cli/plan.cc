// rollout plan --offline PLAN [--output text|json]: what each stage will do, in order,
// with its resolved gate and the exact deploy_update body it will send.
#include <iostream>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/exit_codes.h"
#include "upswift/deploy.h"

namespace rollout::cli {

namespace {

struct PlanOptions {
  std::string plan;
  bool offline = false;
  std::string output = "text";
};

using Json = nlohmann::ordered_json;

Json threshold_json(const plan::Threshold& t) {
  return plan::format_threshold(t);
}

Json gate_json(const plan::Gate& g) {
  return Json{{"bake", format_duration(g.bake)},
              {"timeout", format_duration(g.timeout)},
              {"poll", format_duration(g.poll)},
              {"min_success", threshold_json(g.min_success)},
              {"max_failed", threshold_json(g.max_failed)},
              {"min_devices", g.min_devices},
              {"on_timeout", plan::name(g.on_timeout)}};
}

std::string gate_text(const plan::Gate& g) {
  return fmt::format(
      "bake {}, timeout {}, poll {}, min_success {}, max_failed {}, min_devices {}, "
      "on_timeout {}",
      format_duration(g.bake), format_duration(g.timeout), format_duration(g.poll),
      plan::format_threshold(g.min_success), plan::format_threshold(g.max_failed), g.min_devices,
      plan::name(g.on_timeout));
}

std::string needs_text(const CheckedPlan& c, dag::StageId id) {
  if (c.graph.needs[id].empty()) return "(none: starts first)";
  std::string out;
  for (dag::StageId n : c.graph.needs[id]) out += (out.empty() ? "" : ", ") + c.plan.stages[n].name;
  return out;
}

std::string api_url(const plan::Plan& p) {
  return p.api.url.value_or("https://api.upswift.io/v1/ (or UPSWIFT_API_URL)");
}

std::string on_failure_text(const plan::OnFailure& f) {
  if (f.action == plan::FailureAction::stop || !f.rollback) return "stop";
  std::string out = fmt::format("rollback with flow {}", f.rollback->flow_id);
  if (f.rollback->app)
    out += fmt::format(" to {} {}", f.rollback->app->name, f.rollback->app->version);
  return out + ", then stop";
}

Json plan_json(const CheckedPlan& c) {
  const plan::Plan& p = c.plan;
  Json stages = Json::array();
  for (dag::StageId id : c.graph.order) {
    const plan::Stage& s = p.stages[id];
    Json needs = Json::array();
    for (dag::StageId n : c.graph.needs[id]) needs.push_back(p.stages[n].name);
    stages.push_back(Json{{"name", s.name},
                          {"needs", needs},
                          {"level", c.graph.level[id]},
                          {"approval", s.approval_required ? "required" : "none"},
                          {"gate", gate_json(s.gate)},
                          {"deploy_update", Json::parse(upswift::deploy_update_body(
                                                s.deploy_request(), upswift::kRedactedToken))}});
  }
  Json rollback = nullptr;
  if (p.on_failure.action == plan::FailureAction::rollback && p.on_failure.rollback) {
    rollback = Json{{"flow_id", p.on_failure.rollback->flow_id}};
    if (p.on_failure.rollback->app) {
      rollback["app"] = {{"name", p.on_failure.rollback->app->name},
                         {"version", p.on_failure.rollback->app->version}};
    }
  }
  return Json{{"plan", p.name},
              {"file", c.path},
              {"max_parallel", p.max_parallel ? Json(*p.max_parallel) : Json(nullptr)},
              {"api",
               {{"url", p.api.url ? Json(*p.api.url) : Json(nullptr)},
                {"rate_limit", plan::format_rate_limit(p.api.rate_limit)}}},
              {"on_failure", {{"action", plan::name(p.on_failure.action)}, {"rollback", rollback}}},
              {"stages", stages}};
}

void print_text(const CheckedPlan& c) {
  const plan::Plan& p = c.plan;
  std::cout << fmt::format("plan '{}' from {}: {} stage(s)\n", p.name, c.path, p.stages.size());
  std::cout << fmt::format("  max_parallel: {}\n",
                           p.max_parallel ? std::to_string(*p.max_parallel) : "unlimited");
  std::cout << fmt::format("  on_failure:   {}\n", on_failure_text(p.on_failure));
  std::cout << fmt::format("  api:          {}, rate limit {}\n", api_url(p),
                           plan::format_rate_limit(p.api.rate_limit));
  int step = 0;
  for (dag::StageId id : c.graph.order) {
    const plan::Stage& s = p.stages[id];
    std::cout << fmt::format("\n{}. {}\n", ++step, s.name);
    std::cout << fmt::format("   needs:    {}\n", needs_text(c, id));
    std::cout << fmt::format("   approval: {}\n",
                             s.approval_required ? "required before dispatch" : "none");
    std::cout << fmt::format("   gate:     {}\n", gate_text(s.gate));
    // The exact bytes POSTed to deploy_update, the token aside.
    std::cout << fmt::format(
        "   deploy_update: {}\n",
        upswift::deploy_update_body(s.deploy_request(), upswift::kRedactedToken));
  }
}

}  // namespace

void add_plan_command(CLI::App& app, Run& run) {
  auto opts = std::make_shared<PlanOptions>();
  CLI::App* cmd = app.add_subcommand("plan",
                                     "Show what a plan will do: stage order, gates and the "
                                     "exact deploy_update bodies.");
  cmd->add_option("plan", opts->plan, "Plan file (YAML)")->required();
  cmd->add_flag("--offline", opts->offline,
                "Do not contact the API: show the plan as written (required for now)");
  cmd->add_option("--output", opts->output, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->footer("The user token is never shown: bodies carry \"<redacted>\" in its place.");
  cmd->callback([opts, &run] {
    run = [opts] {
      if (!opts->offline) {
        std::cerr << "rollout plan: resolving stages against the live fleet is not available in "
                     "this version; run with --offline\n";
        return static_cast<int>(kExitInvalidInput);
      }
      auto checked = load_checked_plan(opts->plan);
      if (!checked) return static_cast<int>(kExitInvalidInput);
      if (opts->output == "json") {
        std::cout << plan_json(*checked).dump(2) << "\n";
      } else {
        print_text(*checked);
      }
      return static_cast<int>(kExitOk);
    };
  });
}

}  // namespace rollout::cli
