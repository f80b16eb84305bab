#include "sim/fleet.h"

#include <algorithm>
#include <array>
#include <limits>
#include <set>

#include <fmt/format.h>

#include "upswift/select.h"

namespace rollout::sim {

namespace {

Millis pick(const Range& r, std::mt19937_64& rng) {
  if (r.max <= r.min) return r.min;
  std::uniform_int_distribution<std::int64_t> d(r.min.count(), r.max.count());
  return Millis(d(rng));
}

bool chance(double p, std::mt19937_64& rng) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng) < p;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string format_sim_time(SimTime t) {
  return upswift::format_utc(t.count() / 1000);
}

std::string_view SimUpdate::status_at(SimTime now) const {
  if (now >= aborted) return "aborted";
  if (now < starts) return "pending";
  if (now < ends) return "in_progress";
  return fails ? "failed" : "success";
}

bool SimDevice::online_at(SimTime now) const {
  if (!online_initially && now < returns_at) return false;
  if (!updates.empty() && now >= updates.back().offline_from && now < updates.back().online_again)
    return false;
  return true;
}

upswift::AppList SimDevice::apps_at(SimTime now) const {
  if (apps_kept_ && apps_kept_->updates == updates.size() && apps_kept_->from <= now &&
      now < apps_kept_->until)
    return apps_kept_->apps;
  // What apps a device has changes only when an update that brings one succeeds (at its end)
  // or is aborted: between two such moments, the list stays as it is.
  SimTime from{std::numeric_limits<SimTime::rep>::min()}, until = kNever;
  std::vector<upswift::AppVersion> apps = initial_apps;
  for (const SimUpdate& u : updates) {
    if (!u.app) continue;
    for (SimTime change : {u.ends, u.aborted}) {
      if (change == kNever) continue;
      if (change <= now) from = std::max(from, change);
      if (change > now) until = std::min(until, change);
    }
    if (u.status_at(now) != "success") continue;
    auto it = std::find_if(apps.begin(), apps.end(),
                           [&](const upswift::AppVersion& a) { return a.name == u.app->name; });
    if (it != apps.end()) {
      it->version = u.app->version;
    } else {
      apps.push_back(*u.app);
    }
  }
  apps_kept_ = AppsKept{upswift::AppList(std::move(apps)), updates.size(), from, until};
  return apps_kept_->apps;
}

bool SimDevice::has_tag(const std::string& tag) const {
  return std::find(tags.begin(), tags.end(), tag) != tags.end();
}

Fleet::Fleet(const FleetSpec& spec, SimTime start) : spec_(spec), rng_(spec.seed) {
  std::int64_t next_id = 1001;
  // Device ids are what specific_device filters name: they must never repeat.
  std::set<std::string> taken;
  for (const ProjectSpec& project : spec.projects) {
    for (const DeviceSpec& d : project.devices) {
      if (d.uuid) taken.insert(*d.uuid);
    }
  }
  auto make_uuid = [&] {
    std::uniform_int_distribution<int> hex(0, 0xffff);
    for (;;) {
      std::string uuid = fmt::format("d-{:04x}-{:04x}", hex(rng_), hex(rng_));
      if (taken.insert(uuid).second) return uuid;
    }
  };
  auto place_offline = [&](SimDevice& d) {
    if (!d.online_initially && spec_.behavior.offline_return) {
      d.returns_at = start + pick(*spec_.behavior.offline_return, rng_);
    }
  };
  for (const ProjectSpec& project : spec.projects) {
    auto& group_names = groups_by_project_[project.name];
    for (const GroupSpec& g : project.groups) {
      group_names.push_back(g.name);
      // Exact shares: the first round(share * n) devices of a shuffled order get the tag or go
      // offline.
      std::vector<int> order(static_cast<std::size_t>(g.devices));
      for (int i = 0; i < g.devices; ++i) order[static_cast<std::size_t>(i)] = i;
      std::vector<std::vector<std::string>> extra_tags(order.size());
      for (const auto& [tag, share] : g.tag_shares) {
        std::shuffle(order.begin(), order.end(), rng_);
        const auto n = static_cast<std::size_t>(std::llround(share * g.devices));
        for (std::size_t i = 0; i < n && i < order.size(); ++i)
          extra_tags[static_cast<std::size_t>(order[i])].push_back(tag);
      }
      std::shuffle(order.begin(), order.end(), rng_);
      const auto online_count = static_cast<std::size_t>(std::llround(g.online * g.devices));
      std::vector<bool> online(order.size(), false);
      for (std::size_t i = 0; i < online_count && i < order.size(); ++i)
        online[static_cast<std::size_t>(order[i])] = true;
      for (int i = 0; i < g.devices; ++i) {
        SimDevice d;
        d.device_id = next_id++;
        d.uuid = make_uuid();
        d.name = fmt::format("{}-{:04}", lower(g.name), i + 1);
        d.project = project.name;
        d.group = g.name;
        std::vector<std::string> tags = g.tags;
        for (const std::string& t : extra_tags[static_cast<std::size_t>(i)]) tags.push_back(t);
        d.tags = std::move(tags);
        d.initial_apps = g.apps;
        d.online_initially = online[static_cast<std::size_t>(i)];
        place_offline(d);
        devices_.push_back(std::move(d));
      }
    }
    int hand_written = 0;
    for (const DeviceSpec& spec_device : project.devices) {
      if (std::find(group_names.begin(), group_names.end(), spec_device.group) ==
          group_names.end()) {
        group_names.push_back(spec_device.group);
      }
      SimDevice d;
      d.device_id = next_id++;
      d.uuid = spec_device.uuid ? *spec_device.uuid : make_uuid();
      d.name = spec_device.name ? *spec_device.name : fmt::format("device-{:04}", ++hand_written);
      d.project = project.name;
      d.group = spec_device.group;
      d.tags = spec_device.tags;
      d.initial_apps = spec_device.apps;
      d.online_initially = spec_device.online;
      if (spec_device.token) d.token = *spec_device.token;
      place_offline(d);
      devices_.push_back(std::move(d));
    }
  }
  for (std::size_t i = 0; i < devices_.size(); ++i) by_uuid_.emplace(devices_[i].uuid, i);
}

Behavior Fleet::behavior_for(const SimDevice& d, const std::string& flow_id) const {
  Behavior b = spec_.behavior;
  for (const BehaviorOverride& o : spec_.overrides) {
    if (o.group && *o.group != d.group) continue;
    if (o.flow && *o.flow != flow_id) continue;
    if (o.tag && !d.has_tag(*o.tag)) continue;
    if (o.duration) b.duration = *o.duration;
    if (o.failure_rate) b.failure_rate = *o.failure_rate;
    if (o.offline_mid_update) b.offline_mid_update = *o.offline_mid_update;
    if (o.dark_for) b.dark_for = *o.dark_for;
  }
  return b;
}

std::optional<std::string> Fleet::check_project_and_groups(
    const std::string& project, const std::vector<std::string>& groups) const {
  auto it = groups_by_project_.find(project);
  if (it == groups_by_project_.end()) return fmt::format("Project '{}' was not found", project);
  for (const std::string& g : groups) {
    if (std::find(it->second.begin(), it->second.end(), g) == it->second.end()) {
      return fmt::format("Group '{}' was not found in project '{}'", g, project);
    }
  }
  return std::nullopt;
}

std::vector<const SimDevice*> Fleet::select(const upswift::DeployRequest& r, SimTime now) const {
  const auto needs = [&](upswift::FilterType type) {
    return std::any_of(r.filters.begin(), r.filters.end(),
                       [type](const upswift::Filter& f) { return f.type == type; });
  };
  const bool apps = needs(upswift::FilterType::app);
  const bool last_status = needs(upswift::FilterType::update_status);
  std::vector<const SimDevice*> out;
  auto consider = [&](const SimDevice& d) {
    upswift::DeviceFacts facts{&d.uuid, &d.project,       &d.group,    &d.tags.items(),
                               {},      d.online_at(now), std::nullopt};
    if (apps) {
      for (const upswift::AppVersion& a : d.apps_at(now)) facts.app_names.push_back(a.name);
    }
    if (last_status && !d.updates.empty())
      facts.last_update_status = std::string(d.updates.back().status_at(now));
    if (upswift::selects(r, facts)) out.push_back(&d);
  };
  // A specific_device filter that must match leaves one device to look at.
  for (const upswift::Filter& f : r.filters) {
    if (f.type != upswift::FilterType::specific_device || f.operand != upswift::Operand::is)
      continue;
    auto it = by_uuid_.find(f.value);
    if (it != by_uuid_.end()) consider(devices_[it->second]);
    return out;
  }
  for (const SimDevice& d : devices_) consider(d);
  return out;
}

Fleet::DeployOutcome Fleet::deploy(const upswift::DeployRequest& r, SimTime now) {
  if (!spec_.flows.empty() &&
      std::find(spec_.flows.begin(), spec_.flows.end(), r.flow_id) == spec_.flows.end()) {
    return {fmt::format("Flow '{}' was not found", r.flow_id), 0};
  }
  if (auto error = check_project_and_groups(r.project, r.groups)) return {error, 0};
  std::vector<const SimDevice*> chosen = select(r, now);
  const upswift::SharedText comment(r.comment.value_or(""));
  for (const SimDevice* target : chosen) {
    SimDevice& d = devices_[static_cast<std::size_t>(target - devices_.data())];
    const Behavior b = behavior_for(d, r.flow_id);
    if (!d.updates.empty()) {
      SimUpdate& previous = d.updates.back();
      const std::string_view st = previous.status_at(now);
      if (st == "pending" || st == "in_progress") previous.aborted = now;
    }
    SimUpdate u;
    u.update_id = ++next_update_id_;
    u.scheduled = now;
    u.version = r.app ? r.app->version : "";
    u.comment = comment;
    u.app = r.app;
    const SimTime online_from = d.online_at(now) ? now : d.returns_at;
    if (online_from != kNever) {
      // Each device's draws depend on the seed, the device and how many updates it has had,
      // not on the order of calls: parallel stages (and a rehearsal of them) draw alike.
      std::seed_seq seq{
          static_cast<std::uint32_t>(spec_.seed), static_cast<std::uint32_t>(spec_.seed >> 32),
          static_cast<std::uint32_t>(d.device_id), static_cast<std::uint32_t>(d.updates.size())};
      std::mt19937_64 draw(seq);
      u.starts = online_from + pick(b.start_delay, draw);
      const Millis duration = pick(b.duration, draw);
      u.fails = chance(b.failure_rate, draw);
      if (chance(b.offline_mid_update, draw)) {
        u.offline_from = u.starts + duration / 2;  // stays in_progress while it is gone
        if (b.dark_for) {  // back after a while, the rest of its update then done
          u.online_again = u.offline_from + pick(*b.dark_for, draw);
          u.ends = u.online_again + (duration - duration / 2);
        }
      } else {
        u.ends = u.starts + duration;
      }
    }
    d.updates.push_back(std::move(u));
  }
  return {std::nullopt, chosen.size()};
}

upswift::Device Fleet::view(const SimDevice& d, SimTime now) const {
  upswift::Device out;
  view_into(d, now, out);
  return out;
}

// In place: a page's fifty devices are made where they stay, nothing moved after.
void Fleet::view_into(const SimDevice& d, SimTime now, upswift::Device& out) const {
  out.device_id = d.device_id;
  out.device_uuid = d.uuid;
  out.device_name = d.name;
  out.project = d.project;
  out.group = d.group;
  out.tags = d.tags;
  out.apps = d.apps_at(now);
  out.last_keepalive.utc_seconds = (d.online_at(now) ? now : SimTime{0}).count() / 1000;
  out.updates.reserve(d.updates.size());
  for (const SimUpdate& u : d.updates) {
    if (u.scheduled > now) continue;
    upswift::UpdateRecord& r = out.updates.emplace_back();
    r.update_id = u.update_id;
    r.update_status = u.status_at(now);
    r.update_version = u.version;
    r.comment = u.comment;
    r.deployment_schedule_time.utc_seconds = u.scheduled.count() / 1000;
  }
  out.is_update_trigger_set =
      !out.updates.empty() && (out.updates.back().update_status == "pending");
}

Fleet::DevicesOutcome Fleet::devices_details(const upswift::DevicesQuery& q, SimTime now) const {
  DevicesOutcome out;
  if (q.device_token) {
    auto it = std::find_if(devices_.begin(), devices_.end(), [&](const SimDevice& d) {
      return !d.token.empty() && d.token == *q.device_token;
    });
    if (it == devices_.end()) {
      out.error = "device_token was not found";
      return out;
    }
    out.page.devices.push_back(view(*it, now));
    return out;
  }
  std::vector<std::string> groups;
  if (q.group_name) groups.push_back(*q.group_name);
  if (!q.project_name.empty()) {
    if (auto error = check_project_and_groups(q.project_name, groups)) {
      out.error = error;
      return out;
    }
  }
  out.page.devices.reserve(static_cast<std::size_t>(std::max(0, q.limit)));
  // devices_ is ordered by device_id: find the first after the offset.
  auto it = devices_.begin();
  if (q.offset) {
    it = std::upper_bound(devices_.begin(), devices_.end(), *q.offset,
                          [](std::int64_t id, const SimDevice& d) { return id < d.device_id; });
  }
  for (; it != devices_.end(); ++it) {
    const SimDevice& d = *it;
    if (!q.project_name.empty() && d.project != q.project_name) continue;
    if (q.group_name && d.group != *q.group_name) continue;
    if (q.device_name && d.name != *q.device_name) continue;
    if (static_cast<int>(out.page.devices.size()) == q.limit) {
      out.page.more = true;
      break;
    }
    view_into(d, now, out.page.devices.emplace_back());
  }
  return out;
}

Fleet::StatesOutcome Fleet::devices_state(const upswift::StatesQuery& q, SimTime now) const {
  StatesOutcome out;
  std::vector<std::string> groups;
  if (q.group_name) groups.push_back(*q.group_name);
  if (!q.project_name.empty()) {
    if (auto error = check_project_and_groups(q.project_name, groups)) {
      out.error = error;
      return out;
    }
  }
  const auto listed = [&](const SimDevice& d) {
    return (q.project_name.empty() || d.project == q.project_name) &&
           (!q.group_name || d.group == *q.group_name);
  };
  // The page starts after its offset, a device of the same listing (none: an empty page).
  std::size_t from = 0;
  if (q.offset) {
    auto it = by_uuid_.find(*q.offset);
    if (it == by_uuid_.end() || !listed(devices_[it->second])) return out;
    from = it->second + 1;
  }
  for (std::size_t i = from; i < devices_.size(); ++i) {
    const SimDevice& d = devices_[i];
    if (!listed(d)) continue;
    if (static_cast<int>(out.page.states.size()) == q.limit) {
      out.page.more = true;
      break;
    }
    out.page.states.push_back({d.uuid, d.name, d.online_at(now) ? "online" : "offline"});
  }
  return out;
}

}  // namespace rollout::sim
