// A fleet simulator on a loopback port, served from its own thread, for tests that drive
// the real client (libcurl) against it.
#pragma once

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "sim/fleet.h"
#include "sim/server.h"

namespace rollout::test {

// 3 groups of one project "Demo": A (30 devices, tag "a"), B (25), C (5, offline), and
// the seed page's device d-4ec7-1be9 in TestGroup1. Flows f-1 and rb-1 exist.
inline sim::FleetSpec small_fleet() {
  sim::FleetSpec spec;
  spec.seed = 3;
  spec.flows = {"f-1", "rb-1", "73a7-1ft8"};
  spec.behavior.start_delay = {sim::Millis{1000}, sim::Millis{1000}};
  spec.behavior.duration = {sim::Millis{60000}, sim::Millis{60000}};
  sim::ProjectSpec demo;
  demo.name = "Demo";
  demo.groups.push_back(
      {.name = "A", .devices = 30, .tags = {"a"}, .apps = {{"default_app", "v1"}}});
  demo.groups.push_back({.name = "B", .devices = 25, .apps = {{"default_app", "v1"}}});
  demo.groups.push_back({.name = "C", .devices = 5, .online = 0.0});
  demo.groups.push_back({.name = "TestGroup2", .devices = 1});
  sim::DeviceSpec seed_device;
  seed_device.uuid = "d-4ec7-1be9";
  seed_device.group = "TestGroup1";
  demo.devices.push_back(seed_device);
  spec.projects.push_back(demo);
  return spec;
}

class SimFixture {
 public:
  explicit SimFixture(sim::ServerOptions options = {}, sim::FleetSpec spec = small_fleet(),
                      double time_scale = 1.0)
      : clock_(sim::scaled_clock(time_scale)), fleet_(spec, clock_()) {
    options.on_request = [this](const std::string& endpoint, const std::string& body) {
      std::lock_guard lock(mutex_);
      requests_.push_back({endpoint, body});
    };
    server_ = std::make_unique<sim::Server>(io_, fleet_, options, clock_);
    url_ = server_->base_url();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~SimFixture() { stop(); }

  void stop() {
    if (!thread_.joinable()) return;
    asio::post(io_, [this] {
      server_->stop();
      io_.stop();
    });
    thread_.join();
  }

  const std::string& url() const { return url_; }

  struct Seen {
    std::string endpoint;
    std::string body;
  };
  std::vector<Seen> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::size_t count(const std::string& endpoint) {
    std::size_t n = 0;
    for (const Seen& s : requests()) n += s.endpoint == endpoint;
    return n;
  }
  // Only after stop(): the server thread owns them until then.
  const sim::ServerCounters& counters() const { return server_->counters(); }
  const sim::Fleet& fleet() const { return fleet_; }

 private:
  asio::io_context io_;
  std::function<sim::SimTime()> clock_;
  sim::Fleet fleet_;
  std::unique_ptr<sim::Server> server_;
  std::string url_;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<Seen> requests_;
};

}  // namespace rollout::test
