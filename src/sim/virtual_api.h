// The Upswift API straight onto a simulated fleet, with no HTTP and no threads: what a
// rehearsal runs against on a virtual clock, and what the engine tests build on.
// Completions are posted to the io_context, so they never run inside the call. Its time
// is the engine's Clock, so a ManualClock drives devices and gates together.
#pragma once

#include "sim/fleet.h"
#include "upswift/fleet_api.h"
#include "util/asio.h"
#include "util/clock.h"

namespace rollout::sim {

class VirtualApi : public upswift::FleetApi {
 public:
  VirtualApi(asio::io_context& io, Fleet& fleet, const Clock& clock)
      : io_(io), fleet_(fleet), clock_(clock) {}

  void deploy_update(const upswift::DeployRequest& r,
                     std::function<void(upswift::Result<upswift::Accepted>)> done) override;
  void devices_details(const upswift::DevicesQuery& q,
                       std::function<void(upswift::Result<upswift::DevicesPage>)> done) override;
  void get_devices_state(const upswift::StatesQuery& q,
                         std::function<void(upswift::Result<upswift::StatesPage>)> done) override;

  SimTime now() const {
    return std::chrono::duration_cast<Millis>(clock_.now().time_since_epoch());
  }

  // Calls answered, by endpoint.
  int deploy_calls = 0;
  int details_calls = 0;
  int state_calls = 0;

 protected:
  // Applies a deploy_update to the fleet: Accepted, or Upswift's 400.
  upswift::Result<upswift::Accepted> apply(const upswift::DeployRequest& r);

  template <typename T>
  void answer(std::function<void(upswift::Result<T>)> done, upswift::Result<T> result) {
    // Moved, not copied: a page of fifty devices is many strings.
    asio::post(io_, [done = std::move(done), result = std::move(result)]() mutable {
      done(std::move(result));
    });
  }

 private:
  asio::io_context& io_;
  Fleet& fleet_;
  const Clock& clock_;
};

}  // namespace rollout::sim
