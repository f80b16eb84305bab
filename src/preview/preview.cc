#include "preview/preview.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "engine/selection.h"
#include "upswift/select.h"

namespace rollout::preview {

namespace {

std::int64_t polls_within(Millis span, Millis poll) {
  if (span <= Millis{0}) return 1;
  return (span.count() + poll.count() - 1) / poll.count() + 1;  // at 0, then every poll
}

bool dynamic_filters(const upswift::DeployRequest& r) {
  return std::any_of(r.filters.begin(), r.filters.end(), [](const upswift::Filter& f) {
    return f.type == upswift::FilterType::update_status ||
           f.type == upswift::FilterType::device_state;
  });
}

std::string devices_text(const std::vector<const state::SnapshotDevice*>& devices) {
  std::string out;
  const std::size_t shown = std::min<std::size_t>(devices.size(), 5);
  for (std::size_t i = 0; i < shown; ++i) {
    out += fmt::format("{}{} ({}, {})", i ? ", " : "", devices[i]->uuid, devices[i]->name,
                       devices[i]->group);
  }
  if (devices.size() > shown) out += fmt::format(" and {} more", devices.size() - shown);
  return out;
}

// Counts the calls made through it, by endpoint.
class CountingApi : public upswift::FleetApi {
 public:
  explicit CountingApi(upswift::FleetApi& inner) : inner_(inner) {}
  std::int64_t devices_pages = 0;
  std::int64_t state_pages = 0;

  void deploy_update(const upswift::DeployRequest&,
                     std::function<void(upswift::Result<upswift::Accepted>)> done) override {
    // A preview never sends an update.
    upswift::CallError e{upswift::CallStatus::failed, 0, "a preview sends no deploy_update", 0};
    done({std::nullopt, e});
  }
  void devices_details(const upswift::DevicesQuery& q,
                       std::function<void(upswift::Result<upswift::DevicesPage>)> done) override {
    ++devices_pages;
    inner_.devices_details(q, std::move(done));
  }
  void get_devices_state(const upswift::StatesQuery& q,
                         std::function<void(upswift::Result<upswift::StatesPage>)> done) override {
    ++state_pages;
    inner_.get_devices_state(q, std::move(done));
  }

 private:
  upswift::FleetApi& inner_;
};

struct Builder : std::enable_shared_from_this<Builder> {
  Builder(upswift::FleetApi& api, const plan::Plan& p, const dag::Graph& g,
          std::function<void(upswift::Result<Preview>)> d)
      : counting(api), plan(p), graph(g), done(std::move(d)) {}

  CountingApi counting;
  const plan::Plan& plan;
  const dag::Graph& graph;
  std::function<void(upswift::Result<Preview>)> done;
  Preview preview;
  engine::OnlineStates online;
  std::map<std::string, std::int64_t> state_pages;  // per project
  std::vector<state::SnapshotDevice> all;

  void fail(const upswift::CallError& e) { done({std::nullopt, e}); }

  void start() {
    preview.plan_name = plan.name;
    for (const plan::Stage& stage : plan.stages) {
      if (std::find(preview.projects.begin(), preview.projects.end(), stage.project) ==
          preview.projects.end())
        preview.projects.push_back(stage.project);
    }
    list_project(0);
  }

  // Each project the stages name: its devices' states, then its devices.
  void list_project(std::size_t p) {
    if (p == preview.projects.size()) {
      engine::sort_selection(all);
      preview.project_devices = static_cast<std::int64_t>(all.size());
      for (const auto& d : all) {
        auto it = online.find(d.uuid);
        preview.project_online += it != online.end() && it->second ? 1 : 0;
      }
      return resolve(0);
    }
    const std::string& project = preview.projects[p];
    const std::int64_t pages_before = counting.state_pages;
    engine::list_online(
        counting, project,
        [self = shared_from_this(), p, project,
         pages_before](upswift::Result<engine::OnlineStates> r) {
          if (!r.ok()) return self->fail(r.error);
          self->online.merge(*r.value);
          self->state_pages[project] = self->counting.state_pages - pages_before;
          upswift::for_each_device_page(
              self->counting, project, std::nullopt,
              [self](std::vector<upswift::Device>& page) {
                for (const upswift::Device& d : page)
                  self->all.push_back({d.device_uuid, d.device_id, d.device_name, d.group});
              },
              [self, p](const upswift::CallError& e) {
                if (e.status != upswift::CallStatus::ok) return self->fail(e);
                self->list_project(p + 1);
              });
        });
  }

  void resolve(std::size_t i) {
    if (i == plan.stages.size()) return finish();
    const plan::Stage& stage = plan.stages[i];
    const upswift::DeployRequest request = stage.deploy_request();
    auto chosen = std::make_shared<std::vector<state::SnapshotDevice>>();
    auto candidates = std::make_shared<engine::CandidateCount>(request);
    const std::int64_t pages_before = counting.devices_pages;
    engine::for_each_candidate_page(
        counting, request,
        [self = shared_from_this(), request, chosen,
         candidates](std::vector<upswift::Device>& page) {
          engine::select_from_page(request, self->online, page, *chosen);
          candidates->add(self->online, page);
        },
        [self = shared_from_this(), i, request, chosen, candidates,
         pages_before](const upswift::CallError& e) {
          if (e.status != upswift::CallStatus::ok) return self->fail(e);
          engine::sort_selection(*chosen);
          StagePreview s;
          s.name = self->plan.stages[i].name;
          s.candidates = candidates->count(static_cast<std::int64_t>(chosen->size()));
          s.dynamic = dynamic_filters(request);
          s.listing_pages = self->counting.devices_pages - pages_before;
          s.state_pages =
              upswift::needs_online_state(request) ? self->state_pages[request.project] : 0;
          for (const auto& d : *chosen) {
            auto it = self->online.find(d.uuid);
            (it != self->online.end() && it->second ? s.online : s.offline) += 1;
          }
          const plan::Gate& gate = self->plan.stages[i].gate;
          s.min_polls = chosen->empty() ? 0 : min_polls(gate);
          s.max_polls = chosen->empty() ? 0 : max_polls(gate);
          s.devices = std::move(*chosen);
          self->preview.stages.push_back(std::move(s));
          self->resolve(i + 1);
        });
  }

  void finish() {
    // A sample is drawn from what the stages before it leave; a ramp's step takes its share
    // of the ramp's selection in all, less what its earlier steps took.
    std::set<std::string> taken;
    std::map<std::string, std::set<std::string>> by_ramp;
    for (dag::StageId id : graph.order) {
      StagePreview& s = preview.stages[id];
      const plan::Stage& stage = plan.stages[id];
      if (!stage.sample) {
        for (const auto& d : s.devices) taken.insert(d.uuid);
        continue;
      }
      std::set<std::string>* ramp = stage.ramp ? &by_ramp[stage.ramp->stage] : nullptr;
      const std::vector<state::SnapshotDevice> drawn =
          engine::draw_for_stage(s.devices, stage, taken, ramp ? *ramp : std::set<std::string>{},
                                 "preview")
              .devices;
      s.sample_size = static_cast<std::int64_t>(drawn.size());
      if (drawn.empty()) s.min_polls = s.max_polls = 0;
      for (const auto& d : drawn) (ramp ? *ramp : taken).insert(d.uuid);
    }
    for (const auto& [name, devices] : by_ramp) taken.insert(devices.begin(), devices.end());
    preview.overlaps = find_overlaps(preview.stages);
    preview.unreached = find_unreached(preview.stages, all);
    preview.api = estimate_calls(preview.stages);
    preview.critical_path = critical_path(plan, graph);
    done({std::move(preview), {}});
  }
};

}  // namespace

std::int64_t min_polls(const plan::Gate& gate) {
  return polls_within(std::chrono::duration_cast<Millis>(gate.bake),
                      std::chrono::duration_cast<Millis>(gate.poll));
}

std::int64_t max_polls(const plan::Gate& gate) {
  return polls_within(std::chrono::duration_cast<Millis>(gate.timeout),
                      std::chrono::duration_cast<Millis>(gate.poll));
}

std::vector<Overlap> find_overlaps(const std::vector<StagePreview>& stages) {
  std::map<std::string, Overlap> by_uuid;
  for (const StagePreview& s : stages) {
    // A dynamic stage's selection is read again at its dispatch, typically to leave out
    // what earlier stages updated: what it selects now is no overlap.
    if (s.dynamic || s.sample_size) continue;
    for (const state::SnapshotDevice& d : s.devices) {
      Overlap& o = by_uuid[d.uuid];
      o.device = d;
      o.stages.push_back(s.name);
    }
  }
  std::vector<Overlap> out;
  for (auto& [uuid, o] : by_uuid) {
    if (o.stages.size() > 1) out.push_back(std::move(o));
  }
  std::sort(out.begin(), out.end(), [](const Overlap& a, const Overlap& b) {
    return a.device.device_id < b.device.device_id;
  });
  return out;
}

std::vector<state::SnapshotDevice> find_unreached(const std::vector<StagePreview>& stages,
                                                  const std::vector<state::SnapshotDevice>& all) {
  std::set<std::string> reached;
  for (const StagePreview& s : stages) {
    for (const auto& d : s.devices) reached.insert(d.uuid);
  }
  std::vector<state::SnapshotDevice> out;
  for (const auto& d : all) {
    if (!reached.count(d.uuid)) out.push_back(d);
  }
  return out;
}

ApiEstimate estimate_calls(const std::vector<StagePreview>& stages) {
  ApiEstimate e;
  for (const StagePreview& s : stages) {
    // The snapshot's listing (and states), then, when it targets anyone, one deploy_update
    // and one listing per gate poll. At most, every poll finds updates under way and also
    // lists the online states of the stage's groups (to find lost devices), and so does a
    // decision with devices that did not succeed (as many pages, 50 a page).
    const std::int64_t snapshot = s.listing_pages + s.state_pages;
    const std::int64_t dispatch = s.sample_size ? *s.sample_size : s.devices.empty() ? 0 : 1;
    const std::int64_t states = dispatch > 0 ? (s.max_polls + 1) * s.listing_pages : 0;
    e.deploy_updates += dispatch;
    e.min_calls += snapshot + dispatch + s.min_polls * s.listing_pages;
    e.max_calls += snapshot + dispatch + s.max_polls * s.listing_pages + states;
  }
  return e;
}

CriticalPath critical_path(const plan::Plan& plan, const dag::Graph& graph) {
  const std::size_t n = graph.size();
  std::vector<Millis> finish(n, Millis{0});
  std::vector<std::optional<dag::StageId>> before(n);
  for (dag::StageId id : graph.order) {
    Millis start{0};
    for (dag::StageId need : graph.needs[id]) {
      if (!before[id] || finish[need] > start) {
        start = finish[need];
        before[id] = need;
      }
    }
    finish[id] = start + std::chrono::duration_cast<Millis>(plan.stages[id].gate.bake);
  }
  CriticalPath path;
  if (n == 0) return path;
  dag::StageId last = graph.order.front();
  for (dag::StageId id : graph.order) {
    if (finish[id] > finish[last]) last = id;
  }
  path.shortest = finish[last];
  for (std::optional<dag::StageId> at = last; at; at = before[*at]) {
    path.stages.insert(path.stages.begin(), plan.stages[*at].name);
    path.approval = path.approval || plan.stages[*at].approval_required;
  }
  return path;
}

std::vector<std::string> stale_stages(const Preview& saved, const Preview& now) {
  std::vector<std::string> out;
  std::map<std::string, const StagePreview*> current;
  for (const StagePreview& s : now.stages) current[s.name] = &s;
  for (const StagePreview& was : saved.stages) {
    auto it = current.find(was.name);
    if (it == current.end()) {
      out.push_back(fmt::format("stage {} is no longer in the plan", was.name));
      continue;
    }
    const StagePreview& is = *it->second;
    if (was.dynamic || is.dynamic) continue;
    std::set<std::string> before, after;
    for (const auto& d : was.devices) before.insert(d.uuid);
    for (const auto& d : is.devices) after.insert(d.uuid);
    if (before == after) continue;
    std::vector<const state::SnapshotDevice*> gone, added;
    for (const auto& d : was.devices) {
      if (!after.count(d.uuid)) gone.push_back(&d);
    }
    for (const auto& d : is.devices) {
      if (!before.count(d.uuid)) added.push_back(&d);
    }
    std::string line = fmt::format("stage {} would now target {} device(s), the saved plan {}",
                                   was.name, is.devices.size(), was.devices.size());
    if (!gone.empty()) line += "; no longer: " + devices_text(gone);
    if (!added.empty()) line += "; now also: " + devices_text(added);
    out.push_back(std::move(line));
  }
  return out;
}

void build_preview(upswift::FleetApi& api, const plan::Plan& plan, const dag::Graph& graph,
                   std::function<void(upswift::Result<Preview>)> done) {
  std::make_shared<Builder>(api, plan, graph, std::move(done))->start();
}

}  // namespace rollout::preview
