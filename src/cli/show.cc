// rollout show RUN: everything the state database knows of one run.
#include <iostream>
#include <map>
#include <memory>

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/exit_codes.h"
#include "cli/review.h"
#include "cli/session.h"

namespace rollout::cli {

namespace {

struct ShowOptions {
  std::string run_id = "last";
  StateOptions state;
  std::string output = "text";
};

using Json = nlohmann::ordered_json;

Json observation_json(const state::Observation& o) {
  return {{"time", iso_time(o.at)}, {"stage", o.stage},     {"elapsed_s", o.elapsed_ms / 1000},
          {"targeted", o.targeted}, {"pending", o.pending}, {"in_progress", o.in_progress},
          {"success", o.success},   {"failed", o.failed},   {"aborted", o.aborted},
          {"missing", o.missing},   {"verdict", o.verdict}, {"reason", o.reason}};
}

int run_show(const ShowOptions& o) {
  auto store = open_store(o.state);
  if (!store) return kExitError;
  auto run = find_run(*store, o.run_id);
  if (!run) return kExitInvalidInput;
  const auto stages = store->load_stages(run->id);
  const auto observations = store->load_observations(run->id);
  const auto calls = store->load_calls(run->id);
  const auto approvals = store->load_approvals(run->id);
  const auto events = store->load_events(run->id);
  std::map<std::string, const state::Observation*> last;
  for (const auto& ob : observations) last[ob.stage] = &ob;

  if (o.output == "json") {
    Json j = to_json(*run, stages);
    Json stage_list = Json::array();
    for (const auto& s : stages) {
      Json decisions = Json::array();
      for (const auto& ob : observations) {
        if (ob.stage == s.name && ob.verdict != "wait") decisions.push_back(observation_json(ob));
      }
      auto snapshot = store->load_snapshot(run->id, s.name);
      stage_list.push_back({{"name", s.name},
                            {"status", s.status},
                            {"reason", s.reason},
                            {"started", optional_time(s.started_at)},
                            {"dispatched", optional_time(s.dispatched_at)},
                            {"finished", optional_time(s.finished_at)},
                            {"devices", snapshot ? Json(snapshot->size()) : Json(nullptr)},
                            {"last_observation",
                             last.count(s.name) ? observation_json(*last[s.name]) : Json(nullptr)},
                            {"gate_decisions", decisions}});
    }
    j["stages"] = stage_list;
    Json approvals_json = Json::array();
    for (const auto& a : approvals) {
      approvals_json.push_back(
          {{"stage", a.stage}, {"by", a.by}, {"time", iso_time(a.at)}, {"comment", a.comment}});
    }
    j["approvals"] = approvals_json;
    Json calls_json = Json::array();
    for (const auto& c : calls) {
      calls_json.push_back({{"id", c.id},
                            {"stage", c.stage},
                            {"kind", c.kind},
                            {"devices", c.devices},
                            {"intent", iso_time(c.intent_at)},
                            {"outcome", c.outcome ? Json(*c.outcome) : Json(nullptr)},
                            {"http_status", c.http_status},
                            {"message", c.message},
                            {"answered", optional_time(c.outcome_at)},
                            {"body", Json::parse(c.body)}});
    }
    j["api_calls"] = calls_json;
    Json events_json = Json::array();
    for (const auto& e : events) {
      events_json.push_back(
          {{"time", iso_time(e.at)}, {"stage", e.stage}, {"kind", e.kind}, {"message", e.message}});
    }
    j["events"] = events_json;
    std::cout << j.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
    return kExitOk;
  }

  const WallTime end = run->finished_at.value_or(run->updated_at);
  std::cout << fmt::format("run {}: plan '{}' from {} (sha256 {})\n", run->id, run->plan_name,
                           run->plan_path, run->plan_hash.substr(0, 12));
  std::cout << fmt::format("status:  {}{}\n", run->status,
                           run->reason.empty() ? "" : " - " + run->reason);
  std::cout << fmt::format("by:      {}@{}, through {}\n", run->created_by, run->host,
                           run->api_url);
  std::cout << fmt::format("started: {}, {} {}\n", local_time(run->created_at),
                           run->finished_at ? "took" : "last update after",
                           span(run->created_at, end));

  std::cout << fmt::format("\n{:<14} {:<18} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  {}\n",
                           "STAGE", "STATUS", "DEVICES", "PENDING", "UPDATING", "SUCCESS", "FAILED",
                           "ABORTED", "MISSING", "TIMELINE");
  for (const auto& s : stages) {
    auto snapshot = store->load_snapshot(run->id, s.name);
    const state::Observation* ob = last.count(s.name) ? last[s.name] : nullptr;
    std::string timeline;
    if (s.started_at) timeline += "started " + local_time(*s.started_at).substr(11);
    if (s.dispatched_at) timeline += ", dispatched +" + span(*s.started_at, *s.dispatched_at);
    if (s.finished_at && s.started_at)
      timeline += ", ended +" + span(*s.started_at, *s.finished_at);
    std::cout << fmt::format(
        "{:<14} {:<18} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  {}\n", s.name, s.status,
        snapshot ? std::to_string(snapshot->size()) : "-", ob ? std::to_string(ob->pending) : "-",
        ob ? std::to_string(ob->in_progress) : "-", ob ? std::to_string(ob->success) : "-",
        ob ? std::to_string(ob->failed) : "-", ob ? std::to_string(ob->aborted) : "-",
        ob ? std::to_string(ob->missing) : "-", timeline);
    if (!s.reason.empty()) std::cout << fmt::format("{:<14} {}\n", "", s.reason);
  }

  std::cout << "\ngate decisions:\n";
  bool any = false;
  for (const auto& ob : observations) {
    if (ob.verdict == "wait") continue;
    any = true;
    std::cout << fmt::format("  {}  {:<12} {:<8} {}\n", local_time(ob.at).substr(11), ob.stage,
                             ob.verdict, ob.reason);
  }
  if (!any) std::cout << "  (none yet)\n";

  if (!approvals.empty()) {
    std::cout << "\napprovals:\n";
    for (const auto& a : approvals) {
      std::cout << fmt::format("  {}  {:<12} by {}{}\n", local_time(a.at), a.stage, a.by,
                               a.comment.empty() ? "" : ": " + a.comment);
    }
  }

  std::cout << "\nAPI calls (deploy_update):\n";
  if (calls.empty()) std::cout << "  (none)\n";
  for (const auto& c : calls) {
    std::cout << fmt::format("  #{:<4} {}  {:<12} {:<9} {:>5} device(s)  {}{}\n", c.id,
                             local_time(c.intent_at).substr(11), c.stage, c.kind, c.devices,
                             c.outcome.value_or("NO OUTCOME RECORDED"),
                             c.message.empty() ? "" : " - " + c.message);
  }

  std::cout << "\nevents:\n";
  for (const auto& e : events) {
    std::cout << fmt::format("  {}  {:<12} {:<16} {}\n", local_time(e.at).substr(11),
                             e.stage.empty() ? "run" : e.stage, e.kind, e.message);
  }
  return kExitOk;
}

}  // namespace

void add_show_command(CLI::App& app, Run& run) {
  auto o = std::make_shared<ShowOptions>();
  CLI::App* cmd = app.add_subcommand(
      "show", "Show one run: stages, device counts, gate decisions, approvals, API calls, events.");
  cmd->add_option("run", o->run_id, "Run id, or 'last'")->capture_default_str();
  cmd->add_option("--state", o->state.state_path,
                  "State database (default: $ROLLOUT_STATE, else rollout.db)");
  cmd->add_option("--output", o->output, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->callback([o, &run] { run = [o] { return run_show(*o); }; });
}

}  // namespace rollout::cli
