// FakeFleet: FleetApi straight onto the simulator's fleet model, with no HTTP and no
// threads. Completions are posted to the io_context, so they never run inside the call.
// Its time is the engine's Clock, so a ManualClock drives devices and gates together.
// Tests script outcomes the real API can produce: refusals, failures, unknown outcomes.
#pragma once

#include <deque>

#include "sim/fleet.h"
#include "upswift/fleet_api.h"
#include "util/asio.h"
#include "util/clock.h"

namespace rollout::test {

class FakeFleet : public upswift::FleetApi {
 public:
  enum class Script { normal, refuse, fail, unknown_applied, unknown_not_applied };

  FakeFleet(asio::io_context& io, sim::Fleet& fleet, const Clock& clock)
      : io_(io), fleet_(fleet), clock_(clock) {}

  // Outcomes for the next deploy_update calls, in order; then normal.
  void script(Script s) { scripts_.push_back(s); }
  // Fails every read from now on (or again).
  void fail_reads(bool fail) { fail_reads_ = fail; }

  int deploys_sent = 0;
  int deploys_applied = 0;
  int reads = 0;
  std::vector<upswift::DeployRequest> applied;

  sim::SimTime now() const {
    return std::chrono::duration_cast<sim::Millis>(clock_.now().time_since_epoch());
  }

  void deploy_update(const upswift::DeployRequest& r,
                     std::function<void(upswift::Result<upswift::Accepted>)> done) override {
    ++deploys_sent;
    Script s = Script::normal;
    if (!scripts_.empty()) {
      s = scripts_.front();
      scripts_.pop_front();
    }
    upswift::Result<upswift::Accepted> result;
    if (s == Script::refuse) {
      result.error = {upswift::CallStatus::refused, 400,
                      "Upswift refused deploy_update: \"scripted refusal\"", 1};
    } else if (s == Script::fail) {
      result.error = {upswift::CallStatus::failed, 0,
                      "gave up after 8 attempts: could not reach the API", 8};
    } else if (s == Script::unknown_not_applied) {
      result.error = {upswift::CallStatus::unknown_outcome, 0, "no answer (scripted)", 1};
    } else {
      auto outcome = fleet_.deploy(r, now());
      if (outcome.error) {
        result.error = {upswift::CallStatus::refused, 400,
                        "Upswift refused deploy_update: \"" + *outcome.error + "\"", 1};
      } else {
        ++deploys_applied;
        applied.push_back(r);
        if (s == Script::unknown_applied) {
          result.error = {upswift::CallStatus::unknown_outcome, 0, "no answer (scripted)", 1};
        } else {
          result.value = upswift::Accepted{};
        }
      }
    }
    asio::post(io_, [done = std::move(done), result = std::move(result)] { done(result); });
  }

  void devices_details(const upswift::DevicesQuery& q,
                       std::function<void(upswift::Result<upswift::DevicesPage>)> done) override {
    ++reads;
    upswift::Result<upswift::DevicesPage> result;
    if (fail_reads_) {
      result.error = {upswift::CallStatus::failed, 0, "reads scripted to fail", 1};
    } else {
      auto outcome = fleet_.devices_details(q, now());
      if (outcome.error) {
        result.error = {upswift::CallStatus::refused, 400, *outcome.error, 1};
      } else {
        result.value = std::move(outcome.page);
      }
    }
    asio::post(io_, [done = std::move(done), result = std::move(result)] { done(result); });
  }

  void get_devices_state(const upswift::StatesQuery& q,
                         std::function<void(upswift::Result<upswift::StatesPage>)> done) override {
    ++reads;
    upswift::Result<upswift::StatesPage> result;
    auto outcome = fleet_.devices_state(q, now());
    if (outcome.error) {
      result.error = {upswift::CallStatus::refused, 400, *outcome.error, 1};
    } else {
      result.value = std::move(outcome.page);
    }
    asio::post(io_, [done = std::move(done), result = std::move(result)] { done(result); });
  }

 private:
  asio::io_context& io_;
  sim::Fleet& fleet_;
  const Clock& clock_;
  std::deque<Script> scripts_;
  bool fail_reads_ = false;
};

}  // namespace rollout::test
