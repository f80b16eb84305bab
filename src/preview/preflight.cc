#include "preview/preflight.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "util/suggest.h"

namespace rollout::preview {

namespace {

struct Probe {
  std::string project;
  std::optional<std::string> group;  // none: the project itself
  std::vector<std::string> stages;   // that name it, in plan order
};

// What a probe found: devices (nothing to say), none, or a refusal (Upswift's words).
struct Seen {
  std::size_t probe = 0;
  bool refused = false;
  std::string why;
};

// A listing, page by page, of what a finding is checked against: the groups of a project
// ("" lists every project's devices, for their projects).
struct Listing {
  std::set<std::string> names;
  bool ok = true;
  upswift::CallError error;
};

struct Preflight {
  upswift::FleetApi* api = nullptr;
  std::vector<Probe> probes;
  std::size_t next = 0;
  std::vector<Seen> seen;                   // the probes that found no device
  std::map<std::string, Listing> listings;  // by project; "" for the projects
  std::function<void(upswift::Result<std::vector<Finding>>)> done;
};

void finish(const std::shared_ptr<Preflight>& p);

void fail(const std::shared_ptr<Preflight>& p, const upswift::CallError& error) {
  upswift::Result<std::vector<Finding>> failed;
  failed.error = error;
  p->done(std::move(failed));
}

// Lists `it` and the listings after it, all of their pages; then finishes.
void list_from(const std::shared_ptr<Preflight>& p, std::map<std::string, Listing>::iterator it,
               std::optional<std::int64_t> offset = {}) {
  if (it == p->listings.end()) return finish(p);
  upswift::DevicesQuery q;
  q.project_name = it->first;
  q.offset = offset;
  p->api->devices_details(q, [p, it](upswift::Result<upswift::DevicesPage> r) {
    Listing& l = it->second;
    if (!r.ok()) {
      l.ok = false;
      l.error = r.error;
      return list_from(p, std::next(it));
    }
    for (const auto& d : r.value->devices) l.names.insert(it->first.empty() ? d.project : d.group);
    if (r.value->more && !r.value->devices.empty())
      return list_from(p, it, r.value->devices.back().device_id);
    list_from(p, std::next(it));
  });
}

void probe_next(const std::shared_ptr<Preflight>& p) {
  if (p->next == p->probes.size()) {
    // What each finding is checked against, each listed once: a refusal may be a passing
    // fault of the server, and a suggestion needs the names there are.
    for (const Seen& s : p->seen) {
      const Probe& probe = p->probes[s.probe];
      p->listings.try_emplace(probe.group ? probe.project : std::string());
    }
    return list_from(p, p->listings.begin());
  }
  const Probe& probe = p->probes[p->next];
  upswift::DevicesQuery q;
  q.project_name = probe.project;
  q.group_name = probe.group;
  q.limit = 1;
  p->api->devices_details(q, [p](upswift::Result<upswift::DevicesPage> r) {
    const std::size_t at = p->next++;
    if (!r.ok()) {
      if (r.error.status != upswift::CallStatus::refused) return fail(p, r.error);
      p->seen.push_back({at, true, r.error.message});
    } else if (r.value->devices.empty()) {
      p->seen.push_back({at, false, ""});
    }
    probe_next(p);
  });
}

void finish(const std::shared_ptr<Preflight>& p) {
  upswift::Result<std::vector<Finding>> out;
  out.value.emplace();
  for (const Seen& s : p->seen) {
    const Probe& probe = p->probes[s.probe];
    const Listing& l = p->listings[probe.group ? probe.project : std::string()];
    const std::string& name = probe.group ? *probe.group : probe.project;
    if (s.refused) {
      // Refused: a finding only once the listing shows the name is not there.
      if (!l.ok) return fail(p, l.error);
      if (l.names.count(name)) continue;
    }
    std::vector<std::string_view> names(l.names.begin(), l.names.end());
    const std::string suggestion = did_you_mean(name, names);
    std::string message;
    if (!probe.group) {
      message = s.refused ? fmt::format("project {}: {}{}", probe.project, s.why, suggestion)
                          : fmt::format("project {} lists no device (mistyped, or empty){}",
                                        probe.project, suggestion);
    } else {
      message = s.refused ? fmt::format("group {} of project {}: {}{}", name, probe.project, s.why,
                                        suggestion)
                          : fmt::format(
                                "group {} of project {} lists no device (mistyped, or "
                                "empty){}",
                                name, probe.project, suggestion);
    }
    for (const std::string& stage : probe.stages)
      out.value->push_back({stage, probe.group ? "groups" : "project", message});
  }
  p->done(std::move(out));
}

}  // namespace

void preflight(upswift::FleetApi& api, const plan::Plan& plan,
               std::function<void(upswift::Result<std::vector<Finding>>)> done) {
  auto p = std::make_shared<Preflight>();
  p->api = &api;
  p->done = std::move(done);
  const auto add = [&](const std::string& project, std::optional<std::string> group,
                       const std::string& stage) {
    for (Probe& probe : p->probes) {
      if (probe.project == project && probe.group == group) {
        probe.stages.push_back(stage);
        return;
      }
    }
    p->probes.push_back({project, std::move(group), {stage}});
  };
  for (const plan::Stage& stage : plan.stages) {
    const upswift::DeployRequest r = stage.deploy_request();
    if (r.groups.empty()) add(r.project, std::nullopt, stage.name);
    for (const std::string& g : r.groups) add(r.project, g, stage.name);
  }
  probe_next(p);
}

std::string describe(const std::vector<Finding>& findings) {
  std::string out;
  for (const Finding& f : findings)
    out += fmt::format("  stage {}, {}: {}\n", f.stage, f.field, f.message);
  return out;
}

}  // namespace rollout::preview
