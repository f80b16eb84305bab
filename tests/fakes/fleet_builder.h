// Fleets for tests, said in a line each: FleetBuilder(seed).flows({"f"}).group("EU", 20)...
// Groups run app fw v2 unless said otherwise; devices update 10-60 s after dispatch and take
// 2-10 min, unless said otherwise. What a test does not say is the same in every test.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sim/fleet.h"

namespace rollout::test {

class FleetBuilder {
 public:
  explicit FleetBuilder(std::uint64_t seed) {
    using namespace std::chrono_literals;
    spec_.seed = seed;
    spec_.behavior.start_delay = {10s, 60s};
    spec_.behavior.duration = {2min, 10min};
    spec_.projects.push_back({.name = "Demo", .groups = {}, .devices = {}});
  }

  FleetBuilder& flows(std::vector<std::string> ids) {
    spec_.flows = std::move(ids);
    return *this;
  }
  // Later groups and devices go in this project.
  FleetBuilder& project(std::string name) {
    spec_.projects.push_back({.name = std::move(name), .groups = {}, .devices = {}});
    return *this;
  }
  // `devices` devices running fw v2, `tags` on each of them.
  FleetBuilder& group(std::string name, int devices, std::vector<std::string> tags = {}) {
    return group({.name = std::move(name),
                  .devices = devices,
                  .tags = std::move(tags),
                  .apps = {{"fw", "v2"}}});
  }
  FleetBuilder& group(sim::GroupSpec g) {
    spec_.projects.back().groups.push_back(std::move(g));
    return *this;
  }
  FleetBuilder& device(sim::DeviceSpec d) {
    spec_.projects.back().devices.push_back(std::move(d));
    return *this;
  }
  // Every update of the new build (flow f-new, the tests' plans') to `group` fails with this
  // probability; the rollback flow's updates succeed unless a test says otherwise.
  FleetBuilder& failing(std::string group, double rate, std::string flow = "f-new") {
    spec_.overrides.push_back(
        {.group = std::move(group), .flow = std::move(flow), .failure_rate = rate});
    return *this;
  }
  // This share of the updates to `group` go dark mid-update (the device drops offline while
  // in_progress): for good, or back after `dark_for` to finish.
  FleetBuilder& dark(std::string group, double share, std::optional<sim::Range> dark_for = {}) {
    spec_.overrides.push_back(
        {.group = std::move(group), .offline_mid_update = share, .dark_for = dark_for});
    return *this;
  }
  FleetBuilder& behave(sim::BehaviorOverride o) {
    spec_.overrides.push_back(std::move(o));
    return *this;
  }
  FleetBuilder& timing(sim::Range start_delay, sim::Range duration) {
    spec_.behavior.start_delay = start_delay;
    spec_.behavior.duration = duration;
    return *this;
  }
  sim::Behavior& behavior() { return spec_.behavior; }

  sim::FleetSpec build() const { return spec_; }
  operator sim::FleetSpec() const { return spec_; }

 private:
  sim::FleetSpec spec_;
};

}  // namespace rollout::test
