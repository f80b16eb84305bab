// A simulated Upswift fleet: devices, their groups, tags and apps, and updates that move
// pending -> in_progress -> success/failed over simulated time. Pure: every call takes
// the simulated time `now`; nothing here reads a clock, a socket or a file.
//
// Statuses are computed from each update's schedule at query time, so a fleet of any
// size costs nothing between queries and a time scale is just a faster `now`.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "upswift/api.h"
#include "upswift/deploy.h"

namespace rollout::sim {

using SimTime = std::chrono::milliseconds;  // since the Unix epoch, simulated
using Millis = std::chrono::milliseconds;
inline constexpr SimTime kNever = SimTime::max();

struct Range {
  Millis min{0};
  Millis max{0};
};

// How updates behave; a group or tag may override any field.
struct Behavior {
  Range start_delay{Millis{5000}, Millis{30000}};  // dispatch -> in_progress, when online
  Range duration{Millis{30000}, Millis{300000}};   // in_progress -> success/failed
  double failure_rate = 0.0;                       // 0..1
  double offline_mid_update = 0.0;                 // 0..1: drops offline while in_progress
  std::optional<Range> offline_return;  // offline devices come back after this; never if unset
  // A device that dropped offline mid-update comes back after this and finishes its update;
  // never when unset (a bricked device).
  std::optional<Range> dark_for;
};

// Applies to the updates of devices in `group`, with `tag`, of flow `flow` (all that are set).
struct BehaviorOverride {
  std::optional<std::string> group{};
  std::optional<std::string> tag{};
  std::optional<std::string> flow{};  // a bad build: its updates fail more often
  std::optional<Range> duration{};
  std::optional<double> failure_rate{};
  std::optional<double> offline_mid_update{};
  std::optional<Range> dark_for{};
};

struct DeviceSpec {
  std::optional<std::string> uuid{};  // generated when absent
  std::optional<std::string> name{};
  std::string group{};
  std::vector<std::string> tags{};
  std::vector<upswift::AppVersion> apps{};
  bool online = true;
  std::optional<std::string> token{};  // its device_token, for devices_details; none when absent
};

struct GroupSpec {
  std::string name{};
  int devices = 0;
  std::vector<std::string> tags{};                           // on every device of the group
  std::vector<std::pair<std::string, double>> tag_shares{};  // tag on this share of devices
  std::vector<upswift::AppVersion> apps{};
  double online = 1.0;  // share of devices online
};

struct ProjectSpec {
  std::string name;
  std::vector<GroupSpec> groups;
  std::vector<DeviceSpec> devices;  // hand-written devices, added after the generated ones
};

struct FleetSpec {
  std::uint64_t seed = 1;
  std::vector<std::string> flows;  // known flow_ids; empty: any flow is accepted
  std::vector<ProjectSpec> projects;
  Behavior behavior;
  std::vector<BehaviorOverride> overrides;
};

struct SimUpdate {
  std::int64_t update_id = 0;
  SimTime scheduled{0};
  SimTime starts = kNever;        // in_progress from here
  SimTime ends = kNever;          // success/failed from here
  SimTime aborted = kNever;       // replaced by a newer update before it finished
  SimTime offline_from = kNever;  // the device drops offline mid-update
  SimTime online_again = kNever;  // ... and comes back (then `ends` is set)
  bool fails = false;
  std::string version;
  upswift::SharedText comment;  // one for every device of the call
  std::optional<upswift::AppVersion> app;

  std::string_view status_at(SimTime now) const;  // the contract's word
};

struct SimDevice {
  std::int64_t device_id = 0;
  std::string uuid;
  std::string token;  // empty: none
  std::string name;
  std::string project;
  std::string group;
  upswift::TagList tags;  // shared with every view of the device
  std::vector<upswift::AppVersion> initial_apps;
  bool online_initially = true;
  SimTime returns_at = kNever;  // for devices offline at the start
  std::vector<SimUpdate> updates;

  bool online_at(SimTime now) const;
  // Its apps at `now`: the initial ones, with each app an update brought once it succeeded.
  // Kept between calls while they cannot have changed (one thread uses a fleet at a time).
  upswift::AppList apps_at(SimTime now) const;
  bool has_tag(const std::string& tag) const;

 private:
  struct AppsKept {
    upswift::AppList apps;
    std::size_t updates = 0;    // how many updates it was made from
    SimTime from{0}, until{0};  // valid in [from, until)
  };
  mutable std::optional<AppsKept> apps_kept_;
};

class Fleet {
 public:
  Fleet(const FleetSpec& spec, SimTime start);

  // deploy_update: nullopt and the number of devices it started on, or Upswift's refusal.
  struct DeployOutcome {
    std::optional<std::string> error;
    std::size_t targeted = 0;
  };
  DeployOutcome deploy(const upswift::DeployRequest& request, SimTime now);

  // devices_details / get_devices_state: a page, or the error_message of a 400.
  struct DevicesOutcome {
    std::optional<std::string> error;
    upswift::DevicesPage page;
  };
  DevicesOutcome devices_details(const upswift::DevicesQuery& query, SimTime now) const;
  struct StatesOutcome {
    std::optional<std::string> error;
    upswift::StatesPage page;
  };
  StatesOutcome devices_state(const upswift::StatesQuery& query, SimTime now) const;

  // The devices a request would select now, by the seed's rules.
  std::vector<const SimDevice*> select(const upswift::DeployRequest& request, SimTime now) const;

  upswift::Device view(const SimDevice& device, SimTime now) const;
  void view_into(const SimDevice& device, SimTime now, upswift::Device& out) const;
  const std::vector<SimDevice>& devices() const { return devices_; }
  std::size_t size() const { return devices_.size(); }

 private:
  Behavior behavior_for(const SimDevice& d, const std::string& flow_id) const;
  std::optional<std::string> check_project_and_groups(const std::string& project,
                                                      const std::vector<std::string>& groups) const;

  FleetSpec spec_;
  std::vector<SimDevice> devices_;  // ordered by device_id
  std::unordered_map<std::string, std::size_t> by_uuid_;
  std::map<std::string, std::vector<std::string>> groups_by_project_;
  std::mt19937_64 rng_;
  std::int64_t next_update_id_ = 1000;
};

std::string format_sim_time(SimTime t);  // "2020-02-08 16:12:11", UTC

}  // namespace rollout::sim
