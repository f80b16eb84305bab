// rollout show RUN: everything the state database knows of one run.
#include <algorithm>
#include <iostream>
#include <map>
#include <memory>

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/exit_codes.h"
#include "cli/review.h"
#include "cli/session.h"
#include "engine/gate.h"

namespace rollout::cli {

namespace {

using Json = nlohmann::ordered_json;

struct ShowOptions {
  std::string run_id = "last";
  StateOptions state;
  std::string output = "text";
  bool devices = false;
  std::string stage;                  // --devices of this stage only
  std::vector<std::string> statuses;  // --devices in these statuses only
};

// The statuses a device can have at a gate, and "unread" for one no gate read yet.
const std::vector<std::string> kDeviceStatuses = [] {
  const auto& words = state::Words<state::DeviceStatus>::names;
  std::vector<std::string> all(words.begin(), words.end());
  all.emplace_back("unread");
  all.emplace_back("lost");
  return all;
}();

Json device_json(const state::DeviceState& d) {
  return {{"uuid", d.uuid},
          {"name", d.name},
          {"group", d.group},
          {"update_id", d.update_id ? Json(d.update_id) : Json(nullptr)},
          {"status", shown_device_status(d)},
          {"update_status", d.status ? Json(*d.status) : Json(nullptr)},
          {"since", !d.status ? Json(nullptr) : Json(iso_time(d.since))},
          {"online", d.online ? Json(*d.online) : Json(nullptr)},
          {"online_read", optional_time(d.online_at)},
          {"online_last", optional_time(d.online_last)},
          {"lost_since", optional_time(d.lost_at)},
          // Where the stage was rolled back: how far its rollback's update got on the device.
          {"rollback", !d.rollback_status
                           ? Json(nullptr)
                           : Json{{"update_id", d.rollback_update_id ? Json(d.rollback_update_id)
                                                                     : Json(nullptr)},
                                  {"status", *d.rollback_status},
                                  {"since", iso_time(d.rollback_since)}}}};
}

// rollout show RUN --devices: one line per targeted device.
int show_devices(const ShowOptions& o, state::StateStore& store, const state::RunRecord& run,
                 const std::vector<state::StageRecord>& stages) {
  if (!o.stage.empty() && std::none_of(stages.begin(), stages.end(),
                                       [&](const auto& s) { return s.name == o.stage; })) {
    std::vector<std::string> names;
    for (const auto& s : stages) names.push_back(s.name);
    std::cerr << "rollout show: " << no_such_stage(run.id, o.stage, names) << "\n";
    return kExitInvalidInput;
  }
  // The words CLI11 checked against kDeviceStatuses, as shown: "unread" is no status at all,
  // "lost" a lost device whatever its update's status.
  const std::vector<std::string>& wanted = o.statuses;
  std::vector<state::DeviceState> shown;
  for (auto& d : store.load_device_states(run.id)) {
    if (!o.stage.empty() && d.stage != o.stage) continue;
    if (!wanted.empty() &&
        std::find(wanted.begin(), wanted.end(), shown_device_status(d)) == wanted.end())
      continue;
    shown.push_back(std::move(d));
  }
  if (o.output == "json") {
    Json list = Json::array();
    for (const auto& d : shown) {
      Json j = device_json(d);
      j["stage"] = d.stage;
      list.push_back(std::move(j));
    }
    std::cout << Json{{"run", run.id}, {"devices", list}}.dump(2, ' ', false,
                                                               Json::error_handler_t::replace)
              << "\n";
    return kExitOk;
  }
  // The ROLLBACK column only where a rollback was checked: the status of its update.
  const bool rollbacks = std::any_of(shown.begin(), shown.end(),
                                     [](const auto& d) { return d.rollback_status.has_value(); });
  const auto last_columns = [rollbacks](const std::string& online, const std::string& rollback) {
    return rollbacks ? fmt::format("{:<19} {}", online, rollback) : online;
  };
  std::cout << fmt::format("{:<14} {:<14} {:<20} {:<12} {:>9} {:<12} {:<19} {}\n", "STAGE",
                           "DEVICE", "NAME", "GROUP", "UPDATE", "STATUS", "SINCE",
                           last_columns("ONLINE", "ROLLBACK"));
  for (const auto& d : shown) {
    std::string rollback;
    if (rollbacks) {
      rollback = !d.rollback_status ? "-"
                                    : fmt::format("{} since {}", state::name(*d.rollback_status),
                                                  local_time(d.rollback_since).substr(11));
    }
    std::cout << fmt::format(
        "{:<14} {:<14} {:<20} {:<12} {:>9} {:<12} {:<19} {}\n", d.stage, d.uuid, d.name, d.group,
        d.update_id ? std::to_string(d.update_id) : "-",
        d.lost_at ? fmt::format("lost ({})", state::name(*d.status)) : shown_device_status(d),
        !d.status ? "-" : local_time(d.since),
        last_columns(!d.online
                         ? "-"
                         : fmt::format("{} at {}", *d.online, local_time(*d.online_at).substr(11)),
                     rollback));
  }
  std::string none;
  if (shown.empty() && o.statuses.empty()) {
    none = o.stage.empty() ? ": no stage of this run has listed its devices yet"
                           : fmt::format(": stage {} has not listed its devices yet", o.stage);
  }
  std::cout << fmt::format("{} device(s){}\n", shown.size(), none);
  return kExitOk;
}

int run_show(const ShowOptions& o) {
  auto opened = open_run(o.state, o.run_id);
  auto& store = opened.store;
  const state::RunRecord* run = &opened.run;
  if (o.devices) return show_devices(o, *store, *run, store->load_stages(run->id));
  const state::RunHistory history = load_history(*store, run->id);
  const auto& stages = history.stages;
  const auto& observations = history.observations;
  const auto& calls = history.calls;
  const auto& approvals = history.approvals;
  const auto& events = history.events;
  std::map<std::string, const state::Observation*> last;
  for (const auto& ob : observations) last[ob.stage] = &ob;

  const auto& device_states = history.device_states;
  auto find_stage = [&](const std::string& name) -> const plan::Stage* {
    if (!opened.plan) return nullptr;
    for (const auto& st : opened.plan->plan.stages) {
      if (st.name == name) return &st;
    }
    return nullptr;
  };
  if (o.output == "json") {
    Json j = to_json(*run, stages);
    Json stage_list = Json::array();
    for (const auto& s : stages) {
      Json devices = Json::array();
      for (const auto& d : device_states) {
        if (d.stage == s.name) devices.push_back(device_json(d));
      }
      Json decisions = Json::array();
      for (const auto& ob : observations) {
        if (ob.stage == s.name && ob.verdict != state::Verdict::wait)
          decisions.push_back(observation_json(ob));
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
                            {"gate_decisions", decisions},
                            {"device_states", devices}});
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

  std::cout << fmt::format("\n{:<14} {:<18} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  {}\n",
                           "STAGE", "STATUS", "DEVICES", "PENDING", "UPDATING", "SUCCESS", "FAILED",
                           "LOST", "ABORTED", "MISSING", "TIMELINE");
  for (const auto& s : stages) {
    auto snapshot = store->load_snapshot(run->id, s.name);
    const state::Observation* ob = last.count(s.name) ? last[s.name] : nullptr;
    std::string timeline;
    if (s.started_at) timeline += "started " + local_time(*s.started_at).substr(11);
    if (s.dispatched_at) timeline += ", dispatched +" + span(*s.started_at, *s.dispatched_at);
    if (s.finished_at && s.started_at)
      timeline += ", ended +" + span(*s.started_at, *s.finished_at);
    std::cout << fmt::format(
        "{:<14} {:<18} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  {}\n", s.name,
        view::shown_status(s), snapshot ? std::to_string(snapshot->size()) : "-",
        ob ? std::to_string(ob->pending) : "-", ob ? std::to_string(ob->in_progress) : "-",
        ob ? std::to_string(ob->success) : "-", ob ? std::to_string(ob->failed) : "-",
        ob ? std::to_string(ob->lost) : "-", ob ? std::to_string(ob->aborted) : "-",
        ob ? std::to_string(ob->missing) : "-", timeline);
    if (!s.reason.empty()) std::cout << fmt::format("{:<14} {}\n", "", s.reason);
    if (snapshot) {
      if (const auto* plan_stage = find_stage(s.name))
        std::cout << fmt::format("{:<14} gate: {}\n", "",
                                 engine::describe_thresholds(plan_stage->gate, snapshot->size()));
    }
    if (std::string names = not_succeeded(device_states, s.name); !names.empty())
      std::cout << fmt::format("{:<14} {}\n", "", names);
  }
  std::cout << fmt::format(
      "\n(each device: rollout show {} --devices [--stage S] [--status failed])\n", run->id);

  std::cout << "\ngate decisions:\n";
  bool any = false;
  for (const auto& ob : observations) {
    if (ob.verdict == state::Verdict::wait) continue;
    any = true;
    std::cout << fmt::format("  {}  {:<12} {:<8} {}\n", local_time(ob.at).substr(11), ob.stage,
                             state::name(ob.verdict), ob.reason);
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
                             local_time(c.intent_at).substr(11), c.stage, state::name(c.kind),
                             c.devices, c.outcome ? state::name(*c.outcome) : "NO OUTCOME RECORDED",
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
      "show",
      "Show one run: stages, device counts, gate decisions, approvals, API calls, events; with "
      "--devices, each device.");
  cmd->add_option("run", o->run_id, "Run id, or 'last'")->capture_default_str();
  add_state_option(cmd, o->state.state_path);
  cmd->add_option("--output", o->output, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->add_flag("--devices", o->devices,
                "List each targeted device instead: uuid, name, group, the update id of this run's "
                "update, its update_status as the gate last saw it and since when, and whether it "
                "was online at the gate's decision; where the stage was rolled back, also how far "
                "the rollback's update got on it (ROLLBACK)");
  cmd->add_option("--stage", o->stage, "With --devices: this stage's devices only");
  cmd->add_option("--status", o->statuses,
                  "With --devices: devices in this status only (repeatable): pending, in_progress, "
                  "success, failed, aborted, other, missing (the update is not on it), unlisted "
                  "(it left the stage's groups), unread (no gate read it yet), lost (its update "
                  "under way while it has been offline past the gate's lost_after)")
      ->check(CLI::IsMember(kDeviceStatuses));
  cmd->callback([o, &run] {
    if ((!o->stage.empty() || !o->statuses.empty()) && !o->devices)
      throw CLI::ValidationError("--stage and --status", "they go with --devices");
    run = [o] { return run_show(*o); };
  });
}

}  // namespace rollout::cli
