// rollout plan PLAN: what each stage targets in the fleet as it is now, the API calls the
// run will need and the shortest time it can take; --out saves it for apply --plan-file.
// rollout plan --offline PLAN: the plan as written: order, gates and deploy_update bodies.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/exit_codes.h"
#include "cli/saved_plan.h"
#include "cli/session.h"
#include "engine/gate.h"
#include "engine/markers.h"
#include "engine/selection.h"
#include "plan/calendar.h"
#include "preview/preview.h"
#include "upswift/deploy.h"
#include "util/sha256.h"
#include "util/time_text.h"

namespace rollout::cli {

namespace {

// The body of a stage's deploy_update exactly as a run sends it, the token aside and RUN
// standing for the run's id: the marker in metadata.comment included. A sampled stage or a
// ramp's step sends one per drawn device, its uuid where DEVICE_UUID stands.
std::string sent_body(const plan::Stage& s) {
  upswift::DeployRequest request = s.deploy_request();
  if (s.sample) {
    request.groups.clear();
    request.filters = {{upswift::FilterType::specific_device, upswift::Operand::is, "DEVICE_UUID"}};
  }
  request.comment = engine::with_marker(request.comment, engine::dispatch_marker("RUN", s.name));
  return upswift::deploy_update_body(request, upswift::kRedactedToken);
}

struct PlanOptions {
  std::string plan;
  bool offline = false;
  std::string output = "text";
  std::string out;
  ApiOptions api;
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
              {"on_timeout", plan::name(g.on_timeout)},
              {"max_lost", threshold_json(g.max_lost)},
              {"lost_after", format_duration(g.lost_after)}};
}

std::string gate_text(const plan::Gate& g) {
  return fmt::format(
      "bake {}, timeout {}, poll {}, min_success {}, max_failed {}, min_devices {}, "
      "on_timeout {}, max_lost {} (lost: offline {} mid-update)",
      format_duration(g.bake), format_duration(g.timeout), format_duration(g.poll),
      plan::format_threshold(g.min_success), plan::format_threshold(g.max_failed), g.min_devices,
      plan::name(g.on_timeout), plan::format_threshold(g.max_lost), format_duration(g.lost_after));
}

// Shares are of the devices a stage targets, in whole devices (min_success rounds up,
// max_failed down): a small max_failed share tolerates nothing in a small stage.
std::optional<std::string> share_note(const plan::Gate& g) {
  if (g.max_failed.kind != plan::Threshold::Kind::percent || g.max_failed.value <= 0 ||
      g.max_failed.value >= 100) {
    return std::nullopt;
  }
  const auto first = static_cast<std::int64_t>(std::ceil(100.0 / g.max_failed.value - 1e-9));
  return fmt::format(
      "(max_failed {} tolerates no failure in a stage of fewer than {} devices; `rollout plan` "
      "without --offline shows each gate in devices)",
      plan::format_threshold(g.max_failed), first);
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
  if (f.scope == plan::RollbackScope::run) out += " of every stage the run updated";
  return out + ", then stop";
}

Json on_failure_json(const plan::OnFailure& f) {
  Json rollback = nullptr;
  if (f.action == plan::FailureAction::rollback && f.rollback) {
    rollback = Json{{"flow_id", f.rollback->flow_id}};
    if (f.rollback->app)
      rollback["app"] = {{"name", f.rollback->app->name}, {"version", f.rollback->app->version}};
  }
  return {{"action", plan::name(f.action)}, {"rollback", rollback}, {"scope", plan::name(f.scope)}};
}

Json plan_json(const CheckedPlan& c) {
  const plan::Plan& p = c.plan;
  Json stages = Json::array();
  for (dag::StageId id : c.graph.order) {
    const plan::Stage& s = p.stages[id];
    Json needs = Json::array();
    for (dag::StageId n : c.graph.needs[id]) needs.push_back(p.stages[n].name);
    stages.push_back(Json{
        {"name", s.name},
        {"needs", needs},
        {"level", c.graph.level[id]},
        {"approval", s.approval_required ? "required" : "none"},
        {"sample", s.sample ? Json(plan::format_sample(*s.sample)) : Json(nullptr)},
        {"ramp", s.ramp ? Json{{"stage", s.ramp->stage},
                               {"step", s.ramp->index + 1},
                               {"steps", s.ramp->steps},
                               {"share", plan::format_percent(s.ramp->percent)}}
                        : Json(nullptr)},
        {"gate", gate_json(s.gate)},
        {"on_failure", s.own_on_failure ? on_failure_json(s.on_failure) : Json(nullptr)},
        {"selection",
         Json::parse(upswift::deploy_update_body(s.deploy_request(), upswift::kRedactedToken))},
        {"deploy_update", Json::parse(sent_body(s))}});
  }
  return Json{
      {"plan", p.name},
      {"file", c.path},
      {"max_parallel", p.max_parallel ? Json(*p.max_parallel) : Json(nullptr)},
      {"api",
       {{"url", p.api.url ? Json(*p.api.url) : Json(nullptr)},
        {"rate_limit", plan::format_rate_limit(p.api.rate_limit)}}},
      {"on_failure", on_failure_json(p.on_failure)},
      {"abort_when",
       p.abort_when ? Json{{"failed", p.abort_when->failed ? threshold_json(*p.abort_when->failed)
                                                           : Json(nullptr)},
                           {"lost", p.abort_when->lost ? threshold_json(*p.abort_when->lost)
                                                       : Json(nullptr)},
                           {"min_finished", p.abort_when->min_finished}}
                    : Json(nullptr)},
      {"stages", stages}};
}

void print_text(const CheckedPlan& c) {
  const plan::Plan& p = c.plan;
  std::cout << fmt::format("plan '{}' from {}: {} stage(s)\n", p.name, c.path, p.stages.size());
  std::cout << fmt::format("  max_parallel: {}\n",
                           p.max_parallel ? std::to_string(*p.max_parallel) : "unlimited");
  std::cout << fmt::format("  on_failure:   {}\n", on_failure_text(p.on_failure));
  if (p.abort_when) std::cout << fmt::format("  abort_when:   {}\n", plan::describe(*p.abort_when));
  std::cout << fmt::format("  api:          {}, rate limit {}\n", api_url(p),
                           plan::format_rate_limit(p.api.rate_limit));
  std::cout << "  bodies:       each deploy_update below as a run sends it, the token aside; RUN "
               "stands for the run's id\n";
  int step = 0;
  for (dag::StageId id : c.graph.order) {
    const plan::Stage& s = p.stages[id];
    std::cout << fmt::format("\n{}. {}\n", ++step, s.name);
    std::cout << fmt::format("   needs:    {}\n", needs_text(c, id));
    std::cout << fmt::format("   approval: {}\n",
                             s.approval_required ? "required before dispatch" : "none");
    std::cout << fmt::format("   gate:     {}\n", gate_text(s.gate));
    if (s.own_on_failure)
      std::cout << fmt::format("   on failure: {} (the stage's own)\n",
                               on_failure_text(s.on_failure));
    if (auto note = share_note(s.gate)) std::cout << fmt::format("             {}\n", *note);
    if (!s.windows.empty()) {
      std::vector<std::string> windows;
      for (const auto& w : s.windows) windows.push_back(plan::describe(w));
      std::cout << fmt::format("   windows:  dispatches only in {}\n", fmt::join(windows, "; "));
    }
    for (const auto& f : s.freezes) {
      std::cout << fmt::format("   freeze:   {}{}\n", f.text,
                               f.reason.empty() ? "" : " (" + f.reason + ")");
    }
    if (s.sample) {
      std::cout << fmt::format(
          "   {};\n             one deploy_update per drawn device, with only\n"
          "             {{\"type\":\"specific_device\",\"operand\":\"is\",\"value\":DEVICE_UUID}}\n"
          "             in its filters; the selection below is what the devices are drawn from\n",
          s.ramp ? "ramp:     " + plan::describe(*s.ramp)
                 : fmt::format("sample:   {} of what the selection finds, less the devices "
                               "earlier stages\n             targeted, drawn per run",
                               plan::format_sample(*s.sample)));
    }
    // The exact bytes POSTed to deploy_update, the token aside.
    if (s.sample) {
      std::cout << fmt::format(
          "   selection: {}\n",
          upswift::deploy_update_body(s.deploy_request(), upswift::kRedactedToken));
    }
    std::cout << fmt::format("   deploy_update{}: {}\n", s.sample ? " (each drawn device)" : "",
                             sent_body(s));
  }
}

std::string selection_text(const plan::Stage& s) {
  std::string out = s.groups.empty() ? "whole project" : "groups ";
  for (std::size_t i = 0; i < s.groups.size(); ++i) out += (i ? ", " : "") + s.groups[i];
  if (!s.filters.empty()) out += fmt::format(" + {} filter(s)", s.filters.size());
  return out;
}

std::string device_text(const state::SnapshotDevice& d) {
  return fmt::format("{} ({}, {})", d.uuid, d.name, d.group);
}

void print_preview(const CheckedPlan& c, const SavedPlan& saved) {
  const preview::Preview& p = saved.preview;
  std::string projects;
  for (const auto& name : p.projects) projects += (projects.empty() ? "" : ", ") + name;
  std::cout << fmt::format("plan '{}' against {} at {}\n", p.plan_name, saved.api_url,
                           local_time(saved.resolved_at));
  std::cout << fmt::format("  project {}: {} device(s), {} online\n\n", projects, p.project_devices,
                           p.project_online);
  std::cout << fmt::format("  {:<16} {:>9} {:>7} {:>8} {:>6}  {}\n", "stage", "targets", "online",
                           "offline", "pages", "selection");
  bool any_dynamic = false;
  for (std::size_t i = 0; i < p.stages.size(); ++i) {
    const preview::StagePreview& s = p.stages[i];
    any_dynamic = any_dynamic || s.dynamic;
    const std::string targets = s.sample_size
                                    ? fmt::format("{} of {}", *s.sample_size, s.devices.size())
                                    : std::to_string(s.devices.size());
    std::cout << fmt::format("  {:<16} {:>9} {:>7} {:>8} {:>6}  {}{}\n", s.name, targets, s.online,
                             s.offline, s.listing_pages, selection_text(c.plan.stages[i]),
                             s.dynamic ? " (*)" : "");
  }
  std::cout << "  (pages: devices_details pages to list a stage's candidates once; its gate "
               "lists them again at every poll)\n";
  if (std::any_of(p.stages.begin(), p.stages.end(),
                  [](const preview::StagePreview& s) { return s.sample_size.has_value(); })) {
    std::cout << "  (N of M: a sample drawn per run from M candidates, less what the stages "
                 "before it target; online/offline count the candidates)\n";
  }
  if (any_dynamic) {
    std::cout << "  (*) selects by update or online state: shown as it selects now; read again "
                 "when the stage dispatches\n";
  }
  std::cout << "\n  gates, with the devices found now:\n";
  std::vector<std::string> warnings;
  for (std::size_t i = 0; i < p.stages.size(); ++i) {
    const preview::StagePreview& s = p.stages[i];
    const plan::Stage& spec = c.plan.stages[i];
    const auto targets = s.sample_size.value_or(static_cast<std::int64_t>(s.devices.size()));
    std::cout << fmt::format("  {:<16} {}\n", s.name,
                             engine::describe_thresholds(spec.gate, targets));
    const std::string now = s.dynamic ? " now (read again when it dispatches)" : "";
    if (engine::nothing_left_to_update(spec.deploy_request(), spec.gate,
                                       static_cast<std::int64_t>(s.devices.size()), s.candidates)) {
      warnings.push_back(fmt::format(
          "{}: nothing left to update{}: all {} of its candidates have it; it will pass as "
          "skipped",
          s.name, now, s.candidates));
    } else if (spec.ramp && targets == 0) {
      warnings.push_back(fmt::format(
          "{}: {} reaches no device beyond the earlier steps now: it will pass at once, sending "
          "nothing",
          s.name, plan::format_percent(spec.ramp->percent)));
    } else if (auto why = engine::check_feasible(spec.gate, targets)) {
      warnings.push_back(fmt::format("{}: {}{}: the run will stop there", s.name, *why, now));
    }
  }
  for (const auto& w : warnings) std::cout << "\nwarning: " << w << "\n";
  constexpr std::size_t kShown = 10;
  if (!p.overlaps.empty()) {
    std::cout << fmt::format("\nwarning: {} device(s) targeted by more than one stage:\n",
                             p.overlaps.size());
    for (std::size_t i = 0; i < std::min(kShown, p.overlaps.size()); ++i) {
      std::string stages;
      for (const auto& st : p.overlaps[i].stages) stages += (stages.empty() ? "" : ", ") + st;
      std::cout << fmt::format("  {}: {}\n", device_text(p.overlaps[i].device), stages);
    }
    if (p.overlaps.size() > kShown)
      std::cout << fmt::format("  and {} more (--output json lists all)\n",
                               p.overlaps.size() - kShown);
  }
  if (!p.unreached.empty()) {
    std::cout << fmt::format("\nunreached: {} device(s) of the project that no stage targets:\n",
                             p.unreached.size());
    for (std::size_t i = 0; i < std::min(kShown, p.unreached.size()); ++i)
      std::cout << "  " << device_text(p.unreached[i]) << "\n";
    if (p.unreached.size() > kShown)
      std::cout << fmt::format("  and {} more (--output json lists all)\n",
                               p.unreached.size() - kShown);
  }
  std::cout << fmt::format(
      "\nAPI calls: {} deploy_update; {} calls in all if every gate passes when its bake ends, "
      "up to {} if every gate runs to its timeout\n",
      p.api.deploy_updates, p.api.min_calls, p.api.max_calls);
  std::string path;
  for (const auto& st : p.critical_path.stages) path += (path.empty() ? "" : " -> ") + st;
  std::cout << fmt::format(
      "shortest run: {} of bakes along {}{}{}\n",
      format_duration(std::chrono::duration_cast<Seconds>(p.critical_path.shortest)), path,
      p.critical_path.approval ? ", plus the approvals it waits for" : "",
      c.plan.max_parallel
          ? fmt::format(" (more if max_parallel {} holds stages back)", *c.plan.max_parallel)
          : "");
  if (std::any_of(c.plan.stages.begin(), c.plan.stages.end(),
                  [](const plan::Stage& s) { return !s.windows.empty() || !s.freezes.empty(); })) {
    std::cout << "  plus any wait for maintenance windows and freezes (see plan --offline)\n";
  }
}

}  // namespace

std::string plan_summary(const CheckedPlan& c, const std::string& url, const SavedPlan* saved) {
  const plan::Plan& p = c.plan;
  std::string out =
      fmt::format("plan '{}' through {}: {} stage(s)\n", p.name, url, p.stages.size());
  for (dag::StageId id : c.graph.order) {
    const plan::Stage& s = p.stages[id];
    std::vector<std::string> parts;
    if (!c.graph.needs[id].empty()) {
      std::vector<std::string> needs;
      for (dag::StageId n : c.graph.needs[id]) needs.push_back(p.stages[n].name);
      parts.push_back(fmt::format("after {}", fmt::join(needs, ", ")));
    }
    if (s.approval_required) parts.push_back("waits for an approval");
    std::string what = selection_text(s);
    if (s.ramp)
      what = fmt::format("ramp {} step {} of {}: {} of {} in all", s.ramp->stage, s.ramp->index + 1,
                         s.ramp->steps, plan::format_percent(s.ramp->percent), what);
    else if (s.sample)
      what = fmt::format("a sample of {} from {}", plan::format_sample(*s.sample), what);
    if (saved) {
      for (const auto& st : saved->preview.stages) {
        if (st.name != s.name) continue;
        what += fmt::format(" ({} device(s) when saved{})",
                            st.sample_size.value_or(static_cast<std::int64_t>(st.devices.size())),
                            st.dynamic ? ", read again at its start" : "");
      }
    }
    parts.push_back(what);
    parts.push_back(s.app
                        ? fmt::format("{} {} with flow {}", s.app->name, s.app->version, s.flow_id)
                        : fmt::format("flow {}", s.flow_id));
    parts.push_back("gate: " + engine::describe_thresholds(s.gate, std::nullopt, false) +
                    ", bake " + format_duration(s.gate.bake));
    if (s.own_on_failure) parts.push_back("on failure: " + on_failure_text(s.on_failure));
    out += fmt::format("  {:<14} {}\n", s.name, fmt::join(parts, "; "));
  }
  out += fmt::format("  on failure: {}\n", on_failure_text(p.on_failure));
  if (p.abort_when) out += fmt::format("  abort when: {}\n", plan::describe(*p.abort_when));
  return out;
}

namespace {

int run_live_plan(PlanOptions& o) {
  auto checked = load_checked_plan(o.plan);
  if (!checked) return kExitInvalidInput;
  const std::string url = run_api_url(checked->plan, o.api);
  if (o.api.simulate_fleet.empty()) {
    if (auto why = client::check_base_url(url)) {
      std::cerr << "rollout: " << *why << "\n";
      return kExitInvalidInput;
    }
  }
  asio::io_context io;
  auto connection = ApiConnection::open(io, checked->plan, url, o.api);
  SavedPlan saved;
  // Absolute: the saved plan is run from any folder.
  saved.plan_file = std::filesystem::absolute(checked->path).lexically_normal().string();
  saved.plan_sha256 = sha256_hex(checked->text);
  saved.api_url = url;
  saved.resolved_at = std::chrono::system_clock::now();
  std::optional<upswift::Result<preview::Preview>> result;
  preview::build_preview(connection->api(), checked->plan, checked->graph,
                         [&](upswift::Result<preview::Preview> r) { result = std::move(r); });
  io.run();
  if (!result || !result->ok()) {
    std::cerr << fmt::format("rollout plan: could not read the fleet through {}: {}\n", url,
                             result ? result->error.message : "no answer");
    return kExitError;
  }
  saved.preview = std::move(*result->value);
  const std::string json = saved_plan_json(saved);
  if (!o.out.empty() && !write_file(o.out, json)) {
    std::cerr << fmt::format("rollout plan: cannot write {}\n", o.out);
    return kExitError;
  }
  if (o.output == "json") {
    std::cout << json;
  } else {
    print_preview(*checked, saved);
    if (!o.out.empty()) {
      std::cout << fmt::format(
          "\nsaved to {}: run exactly this with  rollout apply --plan-file {}\n", o.out, o.out);
    }
  }
  return kExitOk;
}

}  // namespace

void add_plan_command(CLI::App& app, Run& run) {
  auto opts = std::make_shared<PlanOptions>();
  CLI::App* cmd = app.add_subcommand("plan",
                                     "Show what a plan will do: stage order, gates and the "
                                     "exact deploy_update bodies.");
  cmd->add_option("plan", opts->plan, "Plan file (YAML)")->required();
  cmd->add_flag("--offline", opts->offline,
                "Do not contact the API: show the plan as written (order, gates, bodies)");
  cmd->add_option("--output", opts->output, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->add_option("--out", opts->out,
                  "Save what the live plan found to FILE, for rollout apply --plan-file FILE");
  cmd->add_option("--simulate", opts->api.simulate_fleet,
                  "Resolve against an in-process fleet simulator built from FLEET.yaml");
  cmd->footer(
      "Without --offline the stages are resolved against the API (the plan's api.url, else\n"
      "UPSWIFT_API_URL, with the token from UPSWIFT_USER_TOKEN): devices per stage, online and\n"
      "offline, devices two stages target, devices no stage reaches, the API calls the run\n"
      "needs and the shortest time it can take. Nothing is sent: only listings are read.\n"
      "The user token is never shown: bodies carry \"<redacted>\" in its place.");
  cmd->callback([opts, &run] {
    run = [opts] {
      if (!opts->offline) return run_live_plan(*opts);
      if (!opts->out.empty() || !opts->api.simulate_fleet.empty()) {
        std::cerr << "rollout plan: --out and --simulate need the live plan (without --offline)\n";
        return static_cast<int>(kExitInvalidInput);
      }
      auto checked = load_checked_plan(opts->plan);
      if (!checked) return static_cast<int>(kExitInvalidInput);
      if (opts->output == "json") {
        std::cout << plan_json(*checked).dump(2, ' ', false, Json::error_handler_t::replace)
                  << "\n";
      } else {
        print_text(*checked);
      }
      return static_cast<int>(kExitOk);
    };
  });
}

}  // namespace rollout::cli
