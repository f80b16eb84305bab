#include "cli/saved_plan.h"

#include <nlohmann/json.hpp>

#include "util/duration.h"
#include "util/time_text.h"

namespace rollout::cli {

namespace {

using Json = nlohmann::ordered_json;
constexpr int kFormatVersion = 1;
constexpr const char* kFormat = "rollout saved plan";

Json device_json(const state::SnapshotDevice& d) {
  return Json{{"uuid", d.uuid}, {"device_id", d.device_id}, {"name", d.name}, {"group", d.group}};
}

state::SnapshotDevice device_from(const Json& j) {
  return {j.at("uuid").get<std::string>(), j.at("device_id").get<std::int64_t>(),
          j.at("name").get<std::string>(), j.at("group").get<std::string>()};
}

Json devices_json(const std::vector<state::SnapshotDevice>& devices) {
  Json out = Json::array();
  for (const auto& d : devices) out.push_back(device_json(d));
  return out;
}

std::vector<state::SnapshotDevice> devices_from(const Json& j) {
  std::vector<state::SnapshotDevice> out;
  for (const Json& d : j) out.push_back(device_from(d));
  return out;
}

}  // namespace

std::string saved_plan_json(const SavedPlan& saved) {
  const preview::Preview& p = saved.preview;
  Json stages = Json::array();
  for (const preview::StagePreview& s : p.stages) {
    stages.push_back(Json{
        {"name", s.name},
        {"dynamic", s.dynamic},
        {"targets", s.sample_size ? *s.sample_size : static_cast<std::int64_t>(s.devices.size())},
        {"sample_size", s.sample_size ? Json(*s.sample_size) : Json(nullptr)},
        {"online", s.online},
        {"offline", s.offline},
        {"listing_pages", s.listing_pages},
        {"state_pages", s.state_pages},
        {"min_polls", s.min_polls},
        {"max_polls", s.max_polls},
        {"devices", devices_json(s.devices)}});
  }
  Json overlaps = Json::array();
  for (const preview::Overlap& o : p.overlaps) {
    overlaps.push_back(Json{{"device", device_json(o.device)}, {"stages", o.stages}});
  }
  const preview::CriticalPath& cp = p.critical_path;
  const Json doc{
      {"format", kFormat},
      {"version", kFormatVersion},
      {"plan", {{"name", p.plan_name}, {"file", saved.plan_file}, {"sha256", saved.plan_sha256}}},
      {"api_url", saved.api_url},
      {"resolved_at", iso_time(saved.resolved_at)},
      {"resolved_at_ms",
       std::chrono::duration_cast<Millis>(saved.resolved_at.time_since_epoch()).count()},
      {"projects", p.projects},
      {"project_devices", p.project_devices},
      {"project_online", p.project_online},
      {"stages", stages},
      {"overlaps", overlaps},
      {"unreached", devices_json(p.unreached)},
      {"api_calls",
       {{"deploy_update", p.api.deploy_updates},
        {"min", p.api.min_calls},
        {"max", p.api.max_calls}}},
      {"critical_path",
       {{"stages", cp.stages},
        {"shortest", format_duration(std::chrono::duration_cast<Seconds>(cp.shortest))},
        {"shortest_s", cp.shortest.count() / 1000},
        {"approval", cp.approval}}}};
  return doc.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::optional<SavedPlan> parse_saved_plan(const std::string& text, std::string* why) {
  try {
    const Json j = Json::parse(text);
    if (!j.is_object() || j.value("format", "") != kFormat) {
      if (why) *why = "not a plan saved by `rollout plan --out`";
      return std::nullopt;
    }
    if (j.at("version").get<int>() != kFormatVersion) {
      if (why)
        *why = "saved by another version of rollout (format version " +
               std::to_string(j.at("version").get<int>()) + "); run rollout plan again";
      return std::nullopt;
    }
    SavedPlan saved;
    saved.plan_file = j.at("plan").at("file").get<std::string>();
    saved.plan_sha256 = j.at("plan").at("sha256").get<std::string>();
    saved.api_url = j.at("api_url").get<std::string>();
    saved.resolved_at = WallTime(Millis(j.at("resolved_at_ms").get<std::int64_t>()));
    preview::Preview& p = saved.preview;
    p.plan_name = j.at("plan").at("name").get<std::string>();
    p.projects = j.at("projects").get<std::vector<std::string>>();
    p.project_devices = j.at("project_devices").get<std::int64_t>();
    p.project_online = j.at("project_online").get<std::int64_t>();
    for (const Json& s : j.at("stages")) {
      preview::StagePreview st;
      st.name = s.at("name").get<std::string>();
      st.dynamic = s.at("dynamic").get<bool>();
      if (!s.at("sample_size").is_null()) st.sample_size = s.at("sample_size").get<std::int64_t>();
      st.online = s.at("online").get<std::int64_t>();
      st.offline = s.at("offline").get<std::int64_t>();
      st.listing_pages = s.at("listing_pages").get<std::int64_t>();
      st.state_pages = s.at("state_pages").get<std::int64_t>();
      st.min_polls = s.at("min_polls").get<std::int64_t>();
      st.max_polls = s.at("max_polls").get<std::int64_t>();
      st.devices = devices_from(s.at("devices"));
      p.stages.push_back(std::move(st));
    }
    for (const Json& o : j.at("overlaps")) {
      p.overlaps.push_back(
          {device_from(o.at("device")), o.at("stages").get<std::vector<std::string>>()});
    }
    p.unreached = devices_from(j.at("unreached"));
    p.api.deploy_updates = j.at("api_calls").at("deploy_update").get<std::int64_t>();
    p.api.min_calls = j.at("api_calls").at("min").get<std::int64_t>();
    p.api.max_calls = j.at("api_calls").at("max").get<std::int64_t>();
    p.critical_path.stages = j.at("critical_path").at("stages").get<std::vector<std::string>>();
    p.critical_path.shortest =
        Millis(j.at("critical_path").at("shortest_s").get<std::int64_t>() * 1000);
    p.critical_path.approval = j.at("critical_path").at("approval").get<bool>();
    return saved;
  } catch (const std::exception& e) {
    if (why) *why = std::string("cannot read it: ") + e.what();
    return std::nullopt;
  }
}

}  // namespace rollout::cli
