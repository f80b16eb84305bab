#include "cli/review.h"

#include <ctime>
#include <iostream>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "plan/loader.h"
#include "util/duration.h"

namespace rollout::cli {

std::string span(WallTime from, WallTime to) {
  return format_duration(std::chrono::duration_cast<Seconds>(to - from));
}

nlohmann::ordered_json optional_time(const std::optional<WallTime>& t) {
  return t ? nlohmann::ordered_json(iso_time(*t)) : nlohmann::ordered_json(nullptr);
}

std::map<std::string, std::int64_t> snapshot_sizes(state::StateStore& store,
                                                   const std::string& run_id,
                                                   const std::vector<state::StageRecord>& stages) {
  std::map<std::string, std::int64_t> devices;
  for (const auto& s : stages) {
    if (auto snapshot = store.load_snapshot(run_id, s.name))
      devices[s.name] = static_cast<std::int64_t>(snapshot->size());
  }
  return devices;
}

state::RunHistory load_history(state::StateStore& store, const std::string& run_id) {
  state::RunHistory h;
  h.stages = store.load_stages(run_id);
  h.devices = snapshot_sizes(store, run_id, h.stages);
  h.observations = store.load_observations(run_id);
  h.calls = store.load_calls(run_id);
  h.approvals = store.load_approvals(run_id);
  h.events = store.load_events(run_id);
  h.device_states = store.load_device_states(run_id);
  h.pause = store.pause_request(run_id);
  return h;
}

view::RunProgress progress_of(const state::RunRecord& run, const state::RunHistory& h) {
  view::RunProgress p =
      view::build_progress(run, h.stages, h.devices, h.observations, h.events, kRecentEventLines);
  p.paused = h.pause.has_value();
  p.approvals = h.approvals;
  return p;
}

view::RunProgress read_progress(state::StateStore& store, const state::RunRecord& run) {
  state::RunHistory h;
  h.stages = store.load_stages(run.id);
  h.devices = snapshot_sizes(store, run.id, h.stages);
  h.observations = store.load_observations(run.id);
  h.events = store.load_events(run.id);
  h.approvals = store.load_approvals(run.id);
  h.pause = store.pause_request(run.id);
  return progress_of(run, h);
}

StageTally tally(const std::vector<state::StageRecord>& stages) {
  StageTally t;
  t.total = static_cast<int>(stages.size());
  for (const auto& s : stages) t.done += s.status == state::StageStatus::passed ? 1 : 0;
  return t;
}

nlohmann::ordered_json to_json(const state::RunRecord& run,
                               const std::vector<state::StageRecord>& stages) {
  const StageTally t = tally(stages);
  const WallTime end = run.finished_at.value_or(run.updated_at);
  return {
      {"id", run.id},
      {"plan", run.plan_name},
      {"plan_path", run.plan_path},
      {"plan_sha256", run.plan_hash},
      {"status", run.status},
      {"reason", run.reason},
      {"created_by", run.created_by},
      {"host", run.host},
      {"api_url", run.api_url},
      {"started", iso_time(run.created_at)},
      // When it ended: for good (finished_at), or, paused, failed or interrupted, when its
      // last process stopped it; null only while it runs.
      {"finished", run.status == state::RunStatus::running ? nlohmann::ordered_json(nullptr)
                                                           : nlohmann::ordered_json(iso_time(end))},
      {"resumable", run.status != state::RunStatus::running && !state::is_final(run.status)},
      {"duration_s",
       std::chrono::duration_cast<std::chrono::seconds>(end - run.created_at).count()},
      {"stages_done", t.done},
      {"stages_total", t.total}};
}

nlohmann::ordered_json observation_json(const state::Observation& o) {
  return {{"time", iso_time(o.at)}, {"stage", o.stage},     {"elapsed_s", o.elapsed_ms / 1000},
          {"targeted", o.targeted}, {"pending", o.pending}, {"in_progress", o.in_progress},
          {"success", o.success},   {"failed", o.failed},   {"aborted", o.aborted},
          {"missing", o.missing},   {"lost", o.lost},       {"verdict", o.verdict},
          {"reason", o.reason}};
}

std::string shown_device_status(const state::DeviceState& d) {
  if (d.lost_at) return "lost";
  return d.status ? std::string(state::name(*d.status)) : "unread";
}

std::string not_succeeded(const std::vector<state::DeviceState>& devices, const std::string& stage,
                          std::size_t shown_per_status) {
  // Worst first: what was lost or failed, then what never got the update, then what is still
  // on its way.
  using state::DeviceStatus;
  static constexpr std::string_view kOrder[] = {"lost",    "failed",   "aborted", "other",
                                                "missing", "unlisted", "pending", "in_progress"};
  std::vector<std::string> parts;
  for (const std::string_view status : kOrder) {
    std::vector<std::string> names;
    std::size_t count = 0;
    for (const auto& d : devices) {
      if (d.stage != stage || !d.status || shown_device_status(d) != status) continue;
      if (++count <= shown_per_status) names.push_back(fmt::format("{} ({})", d.uuid, d.name));
    }
    if (count == 0) continue;
    std::string part = fmt::format("{}: {}", status, fmt::join(names, ", "));
    if (count > shown_per_status) part += fmt::format(" and {} more", count - shown_per_status);
    parts.push_back(std::move(part));
  }
  return fmt::format("{}", fmt::join(parts, "; "));
}

}  // namespace rollout::cli
