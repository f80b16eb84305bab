#include "engine/selection.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <set>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

#include "upswift/select.h"
#include "util/sha256.h"

namespace rollout::engine {

namespace {

// Each step holds the lister; nothing refers to itself, so an abandoned listing (a crash,
// an interrupt) frees everything.
struct CandidateLister : std::enable_shared_from_this<CandidateLister> {
  upswift::FleetApi* api = nullptr;
  std::string project;
  std::vector<std::string> groups;
  PageFold page;
  ListingDone done;

  void list(std::size_t i) {
    std::optional<std::string> group;
    if (!groups.empty()) group = groups[i];
    upswift::for_each_device_page(
        *api, project, group, page, [self = shared_from_this(), i](const upswift::CallError& e) {
          if (e.status == upswift::CallStatus::ok && i + 1 < self->groups.size()) {
            return self->list(i + 1);
          }
          self->done(e);
        });
  }
};

// get_devices_state of a project's groups one after another (the whole project when none),
// each paged by the last device_uuid.
struct StatesPaging {
  upswift::FleetApi* api = nullptr;
  std::string project;
  std::vector<std::string> groups;
  std::size_t group = 0;

  upswift::StatesQuery query(std::optional<std::string> offset) const {
    upswift::StatesQuery q;
    q.project_name = project;
    if (!groups.empty()) q.group_name = groups[group];
    q.offset = std::move(offset);
    return q;
  }
};

struct StateLister : StatesPaging, std::enable_shared_from_this<StateLister> {
  OnlineStates online;
  std::function<void(upswift::Result<OnlineStates>)> done;
  upswift::PagingGuard<std::string> guard{"get_devices_state"};

  void list(std::optional<std::string> offset) {
    api->get_devices_state(query(std::move(offset)), [self = shared_from_this()](
                                                         upswift::Result<upswift::StatesPage> r) {
      if (!r.ok()) return self->done({std::nullopt, r.error});
      if (auto why = self->guard.check(
              r.value->states, [](const upswift::DeviceState& s) { return s.device_uuid; })) {
        return self->done(
            {std::nullopt, {upswift::CallStatus::failed, 200, *why, r.error.attempts}});
      }
      for (const auto& s : r.value->states) self->online[s.device_uuid] = s.online();
      if (r.value->more && !r.value->states.empty())
        return self->list(r.value->states.back().device_uuid);
      if (++self->group < self->groups.size()) return self->list(std::nullopt);
      self->done({std::move(self->online), {}});
    });
  }
};

// The gate's reading of which devices are online: states matched to the snapshot as pages
// come, a byte per device; a device listed twice is a listing that does not move on.
struct PresenceReader : StatesPaging, std::enable_shared_from_this<PresenceReader> {
  const std::vector<state::SnapshotDevice>* snapshot = nullptr;
  const DeviceIndex* index = nullptr;
  std::size_t next = 0;  // the snapshot position after the last device matched
  Presence presence;
  std::vector<bool> listed;  // of the snapshot's devices, in this listing
  std::optional<std::string> last_offset;
  std::function<void(upswift::Result<Presence>)> done;
  upswift::PagingGuard<std::string> guard{"get_devices_state"};

  void list(std::optional<std::string> offset) {
    api->get_devices_state(query(std::move(offset)), [self = shared_from_this()](
                                                         upswift::Result<upswift::StatesPage> r) {
      if (!r.ok()) return self->done({std::nullopt, r.error});
      const auto& states = r.value->states;
      // A page that ends where the last one did, or a device of the snapshot listed twice, is
      // a listing that does not move on (devices outside the snapshot are not kept).
      if (self->last_offset && !states.empty() && states.back().device_uuid == *self->last_offset) {
        return self->done({std::nullopt,
                           {upswift::CallStatus::failed, 200,
                            fmt::format("get_devices_state: a page ends with the device the one "
                                        "before ended with ({}): the server does not move on from "
                                        "the offset it was given; stopped listing",
                                        *self->last_offset),
                            r.error.attempts}});
      }
      // Each state is matched once: noted, and checked for a repeat, together. A listing in
      // the snapshot's order (a whole group's) matches the device after the last one found
      // without a lookup.
      const auto first_time = [&self](const upswift::DeviceState& state) {
        std::size_t at = self->next;
        if (at >= self->snapshot->size() || (*self->snapshot)[at].uuid != state.device_uuid) {
          const auto found = self->index->find(state.device_uuid);
          if (!found) return true;
          at = *found;
        }
        if (self->listed[at]) return false;
        self->listed[at] = true;
        self->presence[at] = state.online() ? 1 : 0;
        self->next = at + 1;
        return true;
      };
      if (auto why = self->guard.check(
              states, [](const upswift::DeviceState& s) { return s.device_uuid; }, first_time)) {
        return self->done(
            {std::nullopt, {upswift::CallStatus::failed, 200, *why, r.error.attempts}});
      }
      if (r.value->more && !states.empty()) {
        self->last_offset = states.back().device_uuid;
        return self->list(states.back().device_uuid);
      }
      self->last_offset.reset();
      if (++self->group < self->groups.size()) return self->list(std::nullopt);
      self->done({std::move(self->presence), {}});
    });
  }
};

}  // namespace

DeviceIndex::DeviceIndex(const std::vector<state::SnapshotDevice>& snapshot) : marks_(1024, 0) {
  at_.reserve(snapshot.size());
  for (std::size_t i = 0; i < snapshot.size(); ++i) {
    at_.emplace(snapshot[i].uuid, static_cast<std::uint32_t>(i));
    const std::uint32_t m = mark(snapshot[i].uuid);
    marks_[m >> 6] |= std::uint64_t{1} << (m & 63);
  }
}

// 16 bits from a uuid's last eight bytes (where uuids differ most).
std::uint32_t DeviceIndex::mark(std::string_view uuid) {
  std::uint64_t x = uuid.size();
  for (std::size_t i = uuid.size() > 8 ? uuid.size() - 8 : 0; i < uuid.size(); ++i)
    x = x * 131 + static_cast<unsigned char>(uuid[i]);
  x ^= x >> 29;
  x *= 0x9E3779B97F4A7C15ULL;
  return static_cast<std::uint32_t>(x >> 48);
}

std::optional<std::uint32_t> DeviceIndex::find(std::string_view uuid) const {
  const std::uint32_t m = mark(uuid);
  if (!(marks_[m >> 6] >> (m & 63) & 1)) return std::nullopt;
  auto it = at_.find(uuid);
  if (it == at_.end()) return std::nullopt;
  return it->second;
}

void read_online(upswift::FleetApi& api, const std::string& project,
                 const std::vector<std::string>& groups,
                 const std::vector<state::SnapshotDevice>& snapshot, const DeviceIndex& index,
                 std::function<void(upswift::Result<Presence>)> done) {
  auto reader = std::make_shared<PresenceReader>();
  reader->api = &api;
  reader->project = project;
  reader->groups = groups;
  reader->snapshot = &snapshot;
  reader->index = &index;
  reader->presence.assign(snapshot.size(), -1);
  reader->listed.assign(snapshot.size(), false);
  reader->done = std::move(done);
  reader->list(std::nullopt);
}

void for_each_candidate_page(upswift::FleetApi& api, const upswift::DeployRequest& request,
                             PageFold page, ListingDone done) {
  auto lister = std::make_shared<CandidateLister>();
  lister->api = &api;
  lister->project = request.project;
  lister->groups = request.groups;
  lister->page = std::move(page);
  lister->done = std::move(done);
  lister->list(0);
}

void list_online(upswift::FleetApi& api, const std::string& project,
                 std::function<void(upswift::Result<OnlineStates>)> done) {
  list_online(api, project, {}, std::move(done));
}

void list_online(upswift::FleetApi& api, const std::string& project,
                 const std::vector<std::string>& groups,
                 std::function<void(upswift::Result<OnlineStates>)> done) {
  auto lister = std::make_shared<StateLister>();
  lister->api = &api;
  lister->project = project;
  lister->groups = groups;
  lister->done = std::move(done);
  lister->list(std::nullopt);
}

void select_from_page(const upswift::DeployRequest& request,
                      const std::optional<OnlineStates>& online,
                      const std::vector<upswift::Device>& page,
                      std::vector<state::SnapshotDevice>& out) {
  for (const upswift::Device& d : page) {
    upswift::DeviceFacts facts{&d.device_uuid, &d.project,  &d.group, &d.tags.items(), {},
                               true,           std::nullopt};
    for (const auto& a : d.apps) facts.app_names.push_back(a.name);
    if (!d.updates.empty()) facts.last_update_status = d.updates.back().update_status;
    if (online) {
      auto it = online->find(d.device_uuid);
      facts.online = it != online->end() && it->second;
    }
    if (upswift::selects(request, facts))
      out.push_back({d.device_uuid, d.device_id, d.device_name, d.group});
  }
}

void sort_selection(std::vector<state::SnapshotDevice>& devices) {
  std::sort(devices.begin(), devices.end(),
            [](const auto& a, const auto& b) { return a.device_id < b.device_id; });
  std::set<std::string> seen;
  devices.erase(
      std::remove_if(devices.begin(), devices.end(),
                     [&](const state::SnapshotDevice& d) { return !seen.insert(d.uuid).second; }),
      devices.end());
}

std::vector<state::SnapshotDevice> draw_sample(std::vector<state::SnapshotDevice> candidates,
                                               const plan::Sample& sample,
                                               const std::string& seed) {
  const std::size_t n = candidates.size();
  std::size_t k = 0;
  if (sample.kind == plan::Sample::Kind::count) {
    k = std::min<std::size_t>(n, static_cast<std::size_t>(sample.count));
  } else {
    k = std::min<std::size_t>(n, static_cast<std::size_t>(std::ceil(
                                     static_cast<double>(n) * sample.percent / 100.0 - 1e-9)));
  }
  // A stable draw: each device's place is the hash of the seed and its uuid.
  std::vector<std::pair<std::string, std::size_t>> order;
  order.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    order.emplace_back(sha256_hex(seed + "/" + candidates[i].uuid), i);
  std::sort(order.begin(), order.end());
  std::vector<state::SnapshotDevice> drawn;
  drawn.reserve(k);
  for (std::size_t i = 0; i < k; ++i) drawn.push_back(std::move(candidates[order[i].second]));
  sort_selection(drawn);
  return drawn;
}

StageDraw draw_for_stage(std::vector<state::SnapshotDevice> found, const plan::Stage& stage,
                         const std::set<std::string>& taken,
                         const std::set<std::string>& ramp_taken, const std::string& run) {
  StageDraw out;
  const std::size_t n = found.size();
  std::erase_if(found, [&](const state::SnapshotDevice& d) { return taken.count(d.uuid) > 0; });
  out.left_out = n - found.size();
  out.base = found.size();
  std::erase_if(found,
                [&](const state::SnapshotDevice& d) { return ramp_taken.count(d.uuid) > 0; });
  out.candidates = found.size();
  if (stage.ramp) {
    const std::size_t k = ramp_step_size(out.base, ramp_taken.size(), stage.ramp->percent);
    if (k > 0) {
      out.devices = draw_sample(std::move(found),
                                {plan::Sample::Kind::count, 0, static_cast<std::int64_t>(k)},
                                ramp_seed(run, *stage.ramp));
    }
  } else if (stage.sample) {
    out.devices = draw_sample(std::move(found), *stage.sample, run + "/" + stage.name);
  }
  return out;
}

std::size_t ramp_step_size(std::size_t base, std::size_t earlier, double percent) {
  const auto in_all =
      static_cast<std::size_t>(std::ceil(static_cast<double>(base) * percent / 100.0 - 1e-9));
  return std::min(base, in_all) > earlier ? std::min(base, in_all) - earlier : 0;
}

std::string ramp_seed(const std::string& run_id, const plan::RampStep& step) {
  return run_id + "/" + step.stage + "@ramp";
}

Reading reading(const upswift::Device& d, const std::string& marker) {
  for (auto it = d.updates.rbegin(); it != d.updates.rend(); ++it) {
    if (it->comment.str().find(marker) == std::string::npos) continue;
    const std::string& s = it->update_status;
    Reached r = Reached::other;
    if (s == "pending") r = Reached::pending;
    if (s == "in_progress") r = Reached::in_progress;
    if (s == "success") r = Reached::success;
    if (s == "failed") r = Reached::failed;
    if (s == "aborted") r = Reached::aborted;
    return {r, it->update_id};
  }
  return {Reached::missing, 0};
}

Reached reached(const upswift::Device& d, const std::string& marker) {
  return reading(d, marker).reached;
}

void read_readings(upswift::FleetApi& api, const upswift::DeployRequest& request,
                   const std::vector<state::SnapshotDevice>& snapshot, const std::string& marker,
                   std::function<void(upswift::Result<std::vector<Reading>>)> done) {
  // A snapshot is kept in device_id order (sort_selection, and as the store reads it back):
  // each listed device is found by its id, then checked by its uuid. Any other order is
  // looked up through a map.
  struct Readings {
    const std::vector<state::SnapshotDevice>* snapshot = nullptr;
    std::unordered_map<std::string_view, std::size_t> position;  // views into the snapshot
    std::vector<Reading> read;
    std::optional<std::size_t> find(const upswift::Device& d) const {
      if (position.empty()) {
        auto it = std::lower_bound(
            snapshot->begin(), snapshot->end(), d.device_id,
            [](const state::SnapshotDevice& s, std::int64_t id) { return s.device_id < id; });
        if (it == snapshot->end() || it->device_id != d.device_id || it->uuid != d.device_uuid)
          return std::nullopt;
        return static_cast<std::size_t>(it - snapshot->begin());
      }
      auto it = position.find(d.device_uuid);
      if (it == position.end()) return std::nullopt;
      return it->second;
    }
  };
  auto readings = std::make_shared<Readings>();
  readings->snapshot = &snapshot;
  readings->read.assign(snapshot.size(), Reading{});
  const bool by_id =
      std::adjacent_find(snapshot.begin(), snapshot.end(), [](const auto& a, const auto& b) {
        return a.device_id >= b.device_id;
      }) == snapshot.end();
  if (!by_id) {
    readings->position.reserve(snapshot.size());
    for (std::size_t i = 0; i < snapshot.size(); ++i)
      readings->position.emplace(snapshot[i].uuid, i);
  }
  for_each_candidate_page(
      api, request,
      [readings, marker](std::vector<upswift::Device>& page) {
        for (const upswift::Device& d : page) {
          if (auto at = readings->find(d)) readings->read[*at] = reading(d, marker);
        }
      },
      [readings, done](const upswift::CallError& ended) {
        if (ended.status != upswift::CallStatus::ok) return done({std::nullopt, ended});
        done({std::move(readings->read), {}});
      });
}

void read_reached(upswift::FleetApi& api, const upswift::DeployRequest& request,
                  const std::vector<state::SnapshotDevice>& snapshot, const std::string& marker,
                  std::function<void(upswift::Result<std::vector<Reached>>)> done) {
  read_readings(api, request, snapshot, marker, [done](upswift::Result<std::vector<Reading>> r) {
    if (!r.ok()) return done({std::nullopt, r.error});
    std::vector<Reached> reached;
    reached.reserve(r.value->size());
    for (const Reading& one : *r.value) reached.push_back(one.reached);
    done({std::move(reached), {}});
  });
}

bool nothing_left_to_update(const upswift::DeployRequest& request, const plan::Gate& gate,
                            std::int64_t selected, std::int64_t candidates) {
  return selected == 0 && candidates > 0 && candidates >= gate.min_devices &&
         upswift::narrows_by_update(request);
}

CandidateCount::CandidateCount(const upswift::DeployRequest& request)
    : counting_(upswift::narrows_by_update(request)),
      relaxed_(upswift::without_update_filters(request)) {}

void CandidateCount::add(const std::optional<OnlineStates>& online,
                         const std::vector<upswift::Device>& page) {
  if (!counting_) return;
  std::vector<state::SnapshotDevice> selected;
  select_from_page(relaxed_, online, page, selected);
  for (auto& d : selected) seen_.insert(std::move(d.uuid));
}

void resolve_selection(upswift::FleetApi& api, const upswift::DeployRequest& request,
                       std::function<void(upswift::Result<Selection>)> done) {
  auto with_states = [&api, request, done](std::optional<OnlineStates> states) {
    auto online = std::make_shared<const std::optional<OnlineStates>>(std::move(states));
    auto chosen = std::make_shared<std::vector<state::SnapshotDevice>>();
    auto candidates = std::make_shared<CandidateCount>(request);
    for_each_candidate_page(
        api, request,
        [request, online, chosen, candidates](std::vector<upswift::Device>& page) {
          select_from_page(request, *online, page, *chosen);
          candidates->add(*online, page);
        },
        [chosen, candidates, done](const upswift::CallError& ended) {
          if (ended.status != upswift::CallStatus::ok) return done({std::nullopt, ended});
          sort_selection(*chosen);
          const auto selected = static_cast<std::int64_t>(chosen->size());
          done({Selection{std::move(*chosen), candidates->count(selected)}, {}});
        });
  };
  if (!upswift::needs_online_state(request)) return with_states(std::nullopt);
  list_online(api, request.project, [with_states, done](upswift::Result<OnlineStates> r) {
    if (!r.ok()) return done({std::nullopt, r.error});
    with_states(std::move(*r.value));
  });
}

}  // namespace rollout::engine
