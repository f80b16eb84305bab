// Which devices a deploy_update reaches: the listings and the filter rules that the engine
// uses for a stage's snapshot and that `rollout plan` uses for its preview, so that the two
// agree. Asynchronous over FleetApi; a listing keeps one page in memory at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/gate.h"
#include "plan/model.h"
#include "state/records.h"
#include "upswift/deploy.h"
#include "upswift/fleet_api.h"

namespace rollout::engine {

using PageFold = std::function<void(std::vector<upswift::Device>&)>;
using ListingDone = std::function<void(const upswift::CallError&)>;
using OnlineStates = std::unordered_map<std::string, bool>;  // device_uuid -> online

// Every device the request's selection could cover, a page at a time: its groups one after
// another, or the whole project when it names no group.
void for_each_candidate_page(upswift::FleetApi& api, const upswift::DeployRequest& request,
                             PageFold page, ListingDone done);

// Online or offline, for every device of the project, or of `groups` when there are any.
void list_online(upswift::FleetApi& api, const std::string& project,
                 std::function<void(upswift::Result<OnlineStates>)> done);
void list_online(upswift::FleetApi& api, const std::string& project,
                 const std::vector<std::string>& groups,
                 std::function<void(upswift::Result<OnlineStates>)> done);

// Which of `snapshot`'s devices are online, as get_devices_state lists `groups` (or the whole
// project): one byte per device in snapshot order, -1 not listed, 0 offline, 1 online. The
// listing's states are matched through `index` (a DeviceIndex of the same snapshot); both
// must outlive it. No map of the groups' devices is built: a gate reads this at every poll.
class DeviceIndex {
 public:
  explicit DeviceIndex(const std::vector<state::SnapshotDevice>& snapshot);
  // The device's position in the snapshot; most devices that are not in it are told apart
  // by a bit of a 64 Ki-bit filter, without hashing or comparing their uuid.
  std::optional<std::uint32_t> find(std::string_view uuid) const;

 private:
  static std::uint32_t mark(std::string_view uuid);
  std::vector<std::uint64_t> marks_;
  std::unordered_map<std::string_view, std::uint32_t> at_;
};
using Presence = std::vector<std::int8_t>;
void read_online(upswift::FleetApi& api, const std::string& project,
                 const std::vector<std::string>& groups,
                 const std::vector<state::SnapshotDevice>& snapshot, const DeviceIndex& index,
                 std::function<void(upswift::Result<Presence>)> done);

// The devices of `page` that the request selects, appended to `out`. `online` is needed
// only when the filters look at device_state (upswift::needs_online_state).
void select_from_page(const upswift::DeployRequest& request,
                      const std::optional<OnlineStates>& online,
                      const std::vector<upswift::Device>& page,
                      std::vector<state::SnapshotDevice>& out);

// By device_id, each device once (a listing whose pages shifted may show one twice).
void sort_selection(std::vector<state::SnapshotDevice>& devices);

// A sampled wave's devices: `sample` of `candidates`, drawn in an order fixed by `seed`
// (the run id and the stage), so that the same run draws the same devices; by device_id.
std::vector<state::SnapshotDevice> draw_sample(std::vector<state::SnapshotDevice> candidates,
                                               const plan::Sample& sample, const std::string& seed);

// A sampled stage's draw (a sample or a ramp's step) from what its selection `found`: the
// devices other stages of the run targeted (`taken`) are left out, so are those of the
// ramp's earlier steps (`ramp_taken`), which count towards its share. `run` seeds the draw:
// the run id (or anything fixed, for a preview).
struct StageDraw {
  std::vector<state::SnapshotDevice> devices;
  std::size_t left_out = 0;    // found, but targeted by other stages
  std::size_t base = 0;        // found, less those: what a ramp's share is of
  std::size_t candidates = 0;  // base, less the ramp's earlier steps: what is drawn from
};
StageDraw draw_for_stage(std::vector<state::SnapshotDevice> found, const plan::Stage& stage,
                         const std::set<std::string>& taken,
                         const std::set<std::string>& ramp_taken, const std::string& run);

// A step of a ramp: how many devices it draws when the ramp's selection (less what stages
// outside the ramp targeted) has `base` devices and its earlier steps took `earlier`: its
// share of `base` in all, rounded up, less those.
std::size_t ramp_step_size(std::size_t base, std::size_t earlier, double percent);

// The seed a ramp's steps draw with: one order for all of them, so that each step takes the
// next devices of it.
std::string ramp_seed(const std::string& run_id, const plan::RampStep& step);

// How far the update that carries `marker` has got on a device (its latest such update).
using Reached = state::DeviceStatus;
Reached reached(const upswift::Device& d, const std::string& marker);

Reading reading(const upswift::Device& d, const std::string& marker);

// How far the update carrying `marker` has got on each of `snapshot`'s devices (which
// must outlive the listing), in snapshot order: one byte per device, whatever the fleet's
// size. A device listed twice (pages that shifted while being read) counts once.
void read_reached(upswift::FleetApi& api, const upswift::DeployRequest& request,
                  const std::vector<state::SnapshotDevice>& snapshot, const std::string& marker,
                  std::function<void(upswift::Result<std::vector<Reached>>)> done);
// The same with each device's update_id, for the gate's per-device record.
void read_readings(upswift::FleetApi& api, const upswift::DeployRequest& request,
                   const std::vector<state::SnapshotDevice>& snapshot, const std::string& marker,
                   std::function<void(upswift::Result<std::vector<Reading>>)> done);

// The devices a deploy_update with `request` would reach now, and how many its candidates
// are: what it selects without its update_status and app filters (for a stage that only
// updates what is left, the difference is what already has the update).
struct Selection {
  std::vector<state::SnapshotDevice> devices;
  std::int64_t candidates = 0;
};
void resolve_selection(upswift::FleetApi& api, const upswift::DeployRequest& request,
                       std::function<void(upswift::Result<Selection>)> done);

// A stage with nothing left to do: it narrows by update_status or app, selects no device,
// and has candidates enough for min_devices (all of which already have the update). It
// passes as skipped. A selection that matches no device at all is not this.
bool nothing_left_to_update(const upswift::DeployRequest& request, const plan::Gate& gate,
                            std::int64_t selected, std::int64_t candidates);

// Counts the candidates of `request`, page by page, once each. A request without
// update_status or app filters has its selection for candidates: nothing is kept then.
class CandidateCount {
 public:
  explicit CandidateCount(const upswift::DeployRequest& request);
  void add(const std::optional<OnlineStates>& online, const std::vector<upswift::Device>& page);
  // `selected`: how many the request itself selected.
  std::int64_t count(std::int64_t selected) const {
    return counting_ ? static_cast<std::int64_t>(seen_.size()) : selected;
  }

 private:
  bool counting_;
  upswift::DeployRequest relaxed_;
  std::set<std::string> seen_;
};

}  // namespace rollout::engine
