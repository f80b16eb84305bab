#include "sim/fleet_file.h"

#include <array>

#include <fmt/format.h>

#include "yaml/reader.h"

namespace rollout::sim {

namespace {

using yaml::Node;
using yaml::Reader;

constexpr std::array<std::string_view, 6> kTopKeys = {"seed",      "flows",    "updates",
                                                      "overrides", "projects", "description"};
constexpr std::array<std::string_view, 6> kUpdateKeys = {
    "start_delay", "duration", "failure_rate", "offline_mid_update", "offline_return", "dark_for"};
constexpr std::array<std::string_view, 7> kOverrideKeys = {
    "group", "tag", "flow", "duration", "failure_rate", "offline_mid_update", "dark_for"};
constexpr std::array<std::string_view, 3> kProjectKeys = {"name", "groups", "devices"};
constexpr std::array<std::string_view, 6> kGroupKeys = {"name",       "devices", "tags",
                                                        "tag_shares", "apps",    "online"};
constexpr std::array<std::string_view, 7> kDeviceKeys = {"uuid", "name",   "group",       "tags",
                                                         "apps", "online", "device_token"};
constexpr std::array<std::string_view, 2> kRangeKeys = {"min", "max"};
constexpr std::array<std::string_view, 2> kAppKeys = {"name", "version"};

std::optional<Range> read_range(Reader& r, const Node& n, std::string_view what) {
  if (!r.map(n, kRangeKeys, what)) return std::nullopt;
  const Node* min = r.required(n, "min", what);
  const Node* max = r.required(n, "max", what);
  if (!min || !max) return std::nullopt;
  auto lo = r.duration(*min, fmt::format("{} min", what));
  auto hi = r.duration(*max, fmt::format("{} max", what));
  if (!lo || !hi) return std::nullopt;
  if (*hi < *lo) {
    r.diagnostics().error(max->mark, fmt::format("{}: max must not be below min", what));
    return std::nullopt;
  }
  return Range{Millis(*lo), Millis(*hi)};
}

std::vector<upswift::AppVersion> read_apps(Reader& r, const Node& n) {
  std::vector<upswift::AppVersion> out;
  if (!n.is_sequence()) {
    r.diagnostics().error(n.mark, "apps must be a list of {name, version}");
    return out;
  }
  for (const Node& a : n.items) {
    if (!r.map(a, kAppKeys, "app")) continue;
    const Node* name = r.required(a, "name", "app");
    const Node* version = r.required(a, "version", "app");
    if (!name || !version) continue;
    auto name_s = r.string(*name, "app name");
    auto version_s = r.string(*version, "app version");
    if (name_s && version_s) out.push_back({*name_s, *version_s});
  }
  return out;
}

void read_updates(Reader& r, const Node& n, Behavior& b) {
  if (!r.map(n, kUpdateKeys, "updates")) return;
  if (const Node* v = n.find("start_delay")) {
    if (auto range = read_range(r, *v, "start_delay")) b.start_delay = *range;
  }
  if (const Node* v = n.find("duration")) {
    if (auto range = read_range(r, *v, "duration")) b.duration = *range;
  }
  if (const Node* v = n.find("failure_rate"))
    b.failure_rate = r.percentage(*v, "failure_rate").value_or(0);
  if (const Node* v = n.find("offline_mid_update")) {
    b.offline_mid_update = r.percentage(*v, "offline_mid_update").value_or(0);
  }
  if (const Node* v = n.find("offline_return"))
    b.offline_return = read_range(r, *v, "offline_return");
  if (const Node* v = n.find("dark_for")) b.dark_for = read_range(r, *v, "dark_for");
}

GroupSpec read_group(Reader& r, const Node& n) {
  GroupSpec g;
  if (!r.map(n, kGroupKeys, "group")) return g;
  if (const Node* name = r.required(n, "name", "group"))
    g.name = r.string(*name, "group name").value_or("");
  if (const Node* count = r.required(n, "devices", "group")) {
    g.devices = static_cast<int>(r.integer(*count, "devices", 0, 1'000'000).value_or(0));
  }
  if (const Node* tags = n.find("tags")) g.tags = r.string_list(*tags, "tags");
  if (const Node* shares = n.find("tag_shares")) {
    if (!shares->is_map()) {
      r.diagnostics().error(shares->mark, "tag_shares must be a map of tag: percentage");
    } else {
      for (const auto& [key, value] : shares->entries) {
        auto tag = r.string(key, "tag name");
        auto share = r.percentage(value, "tag share");
        if (tag && share) g.tag_shares.emplace_back(*tag, *share);
      }
    }
  }
  if (const Node* apps = n.find("apps")) g.apps = read_apps(r, *apps);
  if (const Node* online = n.find("online"))
    g.online = r.percentage(*online, "online").value_or(1.0);
  return g;
}

DeviceSpec read_device(Reader& r, const Node& n) {
  DeviceSpec d;
  if (!r.map(n, kDeviceKeys, "device")) return d;
  d.uuid = r.optional_string(n, "uuid", "device uuid");
  d.name = r.optional_string(n, "name", "device name");
  if (const Node* group = r.required(n, "group", "device"))
    d.group = r.string(*group, "device group").value_or("");
  if (const Node* tags = n.find("tags")) d.tags = r.string_list(*tags, "tags");
  if (const Node* apps = n.find("apps")) d.apps = read_apps(r, *apps);
  if (const Node* online = n.find("online")) d.online = r.boolean(*online, "online").value_or(true);
  d.token = r.optional_string(n, "device_token", "device_token");
  return d;
}

}  // namespace

FleetLoad load_fleet(std::string_view yaml_text) {
  FleetLoad out;
  Diagnostics& d = out.diagnostics;
  auto root = yaml::parse(yaml_text, d);
  if (!root) return out;
  Reader r(d);
  if (!r.map(*root, kTopKeys, "the fleet")) return out;
  FleetSpec spec;
  if (const Node* seed = root->find("seed")) {
    spec.seed = static_cast<std::uint64_t>(r.integer(*seed, "seed", 0, INT64_MAX).value_or(1));
  }
  if (const Node* flows = root->find("flows")) spec.flows = r.string_list(*flows, "flows");
  if (const Node* updates = root->find("updates")) read_updates(r, *updates, spec.behavior);
  if (const Node* overrides = root->find("overrides")) {
    if (!overrides->is_sequence()) {
      d.error(overrides->mark, "overrides must be a list");
    } else {
      for (const Node& o : overrides->items) {
        if (!r.map(o, kOverrideKeys, "override")) continue;
        BehaviorOverride bo;
        bo.group = r.optional_string(o, "group", "override group");
        bo.tag = r.optional_string(o, "tag", "override tag");
        bo.flow = r.optional_string(o, "flow", "override flow");
        if (!bo.group && !bo.tag && !bo.flow)
          d.error(o.mark, "an override needs a group, a tag or a flow (or several)");
        if (const Node* v = o.find("duration")) bo.duration = read_range(r, *v, "duration");
        if (const Node* v = o.find("failure_rate"))
          bo.failure_rate = r.percentage(*v, "failure_rate");
        if (const Node* v = o.find("offline_mid_update")) {
          bo.offline_mid_update = r.percentage(*v, "offline_mid_update");
        }
        if (const Node* v = o.find("dark_for")) bo.dark_for = read_range(r, *v, "dark_for");
        spec.overrides.push_back(bo);
      }
    }
  }
  const Node* projects = r.required(*root, "projects", "the fleet");
  if (projects && !projects->is_sequence()) d.error(projects->mark, "projects must be a list");
  if (projects && projects->is_sequence()) {
    for (const Node& p : projects->items) {
      if (!r.map(p, kProjectKeys, "project")) continue;
      ProjectSpec project;
      if (const Node* name = r.required(p, "name", "project")) {
        project.name = r.string(*name, "project name").value_or("");
      }
      if (const Node* groups = p.find("groups")) {
        if (!groups->is_sequence()) {
          d.error(groups->mark, "groups must be a list");
        } else {
          for (const Node& g : groups->items) project.groups.push_back(read_group(r, g));
        }
      }
      if (const Node* devices = p.find("devices")) {
        if (!devices->is_sequence()) {
          d.error(devices->mark, "devices must be a list");
        } else {
          for (const Node& dev : devices->items) project.devices.push_back(read_device(r, dev));
        }
      }
      spec.projects.push_back(std::move(project));
    }
  }
  if (!d.has_errors()) out.spec = std::move(spec);
  return out;
}

}  // namespace rollout::sim
