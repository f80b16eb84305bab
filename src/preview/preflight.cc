#include "preview/preflight.h"

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "util/suggest.h"

namespace rollout::preview {

namespace {

// A project's groups seen in this many pages of its listing, at most, for a did-you-mean.
constexpr int kGroupPages = 20;

struct Probe {
  std::string project;
  std::optional<std::string> group;  // none: the project itself
  std::vector<std::string> stages;   // that name it, in plan order
};

struct Preflight {
  upswift::FleetApi* api = nullptr;
  std::vector<Probe> probes;
  std::size_t next = 0;
  std::vector<std::pair<std::size_t, std::string>> empty;  // probe, why
  std::map<std::string, std::set<std::string>> groups;     // of projects with an empty group
  std::set<std::string> to_list;                           // ... whose groups are listed
  std::function<void(upswift::Result<std::vector<Finding>>)> done;
};

void finish(const std::shared_ptr<Preflight>& p);
void list_groups(const std::shared_ptr<Preflight>& p, std::set<std::string>::iterator it,
                 std::optional<std::int64_t> offset, int pages);

void probe_next(const std::shared_ptr<Preflight>& p) {
  if (p->next == p->probes.size()) {
    // The projects whose groups a did-you-mean needs, each listed once.
    for (const auto& [at, why] : p->empty) {
      if (p->probes[at].group) p->to_list.insert(p->probes[at].project);
    }
    return list_groups(p, p->to_list.begin(), std::nullopt, 0);
  }
  const Probe& probe = p->probes[p->next];
  upswift::DevicesQuery q;
  q.project_name = probe.project;
  q.group_name = probe.group;
  q.limit = 1;
  p->api->devices_details(q, [p](upswift::Result<upswift::DevicesPage> r) {
    const std::size_t at = p->next++;
    if (!r.ok()) {
      if (r.error.status != upswift::CallStatus::refused) {
        upswift::Result<std::vector<Finding>> failed;
        failed.error = r.error;
        return p->done(std::move(failed));
      }
      // Upswift said what is wrong: a project or group it does not know.
      p->empty.emplace_back(at, r.error.message);
    } else if (r.value->devices.empty()) {
      p->empty.emplace_back(at, "");
    }
    probe_next(p);
  });
}

void list_groups(const std::shared_ptr<Preflight>& p, std::set<std::string>::iterator it,
                 std::optional<std::int64_t> offset, int pages) {
  if (it == p->to_list.end()) return finish(p);
  upswift::DevicesQuery q;
  q.project_name = *it;
  q.offset = offset;
  p->api->devices_details(q, [p, it, pages](upswift::Result<upswift::DevicesPage> r) {
    // The suggestion is a courtesy: a listing that fails leaves it out.
    if (!r.ok()) return list_groups(p, std::next(it), std::nullopt, 0);
    auto& seen = p->groups[*it];
    for (const auto& d : r.value->devices) seen.insert(d.group);
    if (r.value->more && !r.value->devices.empty() && pages + 1 < kGroupPages)
      return list_groups(p, it, r.value->devices.back().device_id, pages + 1);
    list_groups(p, std::next(it), std::nullopt, 0);
  });
}

void finish(const std::shared_ptr<Preflight>& p) {
  upswift::Result<std::vector<Finding>> out;
  out.value.emplace();
  for (const auto& [at, why] : p->empty) {
    const Probe& probe = p->probes[at];
    std::string message;
    if (!probe.group) {
      message = why.empty() ? fmt::format("project {} has no devices (is it spelt as in Upswift?)",
                                          probe.project)
                            : fmt::format("project {}: {}", probe.project, why);
    } else {
      const auto& known = p->groups[probe.project];
      std::vector<std::string_view> names(known.begin(), known.end());
      message = why.empty() ? fmt::format(
                                  "group {} of project {} lists no device (mistyped, or "
                                  "empty){}",
                                  *probe.group, probe.project, did_you_mean(*probe.group, names))
                            : fmt::format("group {} of project {}: {}{}", *probe.group,
                                          probe.project, why, did_you_mean(*probe.group, names));
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
