// FakeFleet: the simulator's VirtualApi (no HTTP, no threads, the engine's clock), plus
// scripted outcomes.
// Tests script outcomes the real API can produce: refusals, failures, unknown outcomes.
#pragma once

#include <algorithm>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sim/fleet.h"
#include "sim/virtual_api.h"
#include "upswift/fleet_api.h"
#include "util/asio.h"
#include "util/clock.h"

namespace rollout::test {

class FakeFleet : public sim::VirtualApi {
 public:
  enum class Script { normal, refuse, fail, unknown_applied, unknown_not_applied };

  FakeFleet(asio::io_context& io, sim::Fleet& fleet, const Clock& clock)
      : VirtualApi(io, fleet, clock) {}

  // Outcomes for the next deploy_update calls, in order; then normal.
  void script(Script s) { scripts_.push_back(s); }
  // The outcome of the first deploy_update whose comment contains `part` (a stage's marker,
  // say); the calls of other stages go on as scripted above.
  void script_for(std::string part, Script s) { scripts_for_.emplace_back(std::move(part), s); }
  // Decides each deploy_update's outcome, before the scripts above (nullopt: theirs).
  std::function<std::optional<Script>(const upswift::DeployRequest&)> decide;
  // Fails every read from now on (or again).
  void fail_reads(bool fail) { fail_reads_ = fail; }

  int deploys_sent = 0;
  int deploys_applied = 0;
  int reads = 0;
  std::vector<upswift::StatesQuery> states_asked;  // get_devices_state, in order
  std::vector<upswift::DeployRequest> applied;

  void deploy_update(const upswift::DeployRequest& r,
                     std::function<void(upswift::Result<upswift::Accepted>)> done) override {
    ++deploys_sent;
    Script s = Script::normal;
    const auto matching = std::find_if(scripts_for_.begin(), scripts_for_.end(), [&](auto& p) {
      return r.comment && r.comment->find(p.first) != std::string::npos;
    });
    if (auto decided = decide ? decide(r) : std::nullopt) {
      s = *decided;
    } else if (matching != scripts_for_.end()) {
      s = matching->second;
      scripts_for_.erase(matching);
    } else if (!scripts_.empty()) {
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
      result = apply(r);
      if (result.ok()) {
        ++deploys_applied;
        applied.push_back(r);
        if (s == Script::unknown_applied) {
          result.value.reset();
          result.error = {upswift::CallStatus::unknown_outcome, 0, "no answer (scripted)", 1};
        }
      }
    }
    answer(std::move(done), std::move(result));
  }

  void devices_details(const upswift::DevicesQuery& q,
                       std::function<void(upswift::Result<upswift::DevicesPage>)> done) override {
    ++reads;
    if (fail_reads_) {
      upswift::Result<upswift::DevicesPage> result;
      result.error = {upswift::CallStatus::failed, 0, "reads scripted to fail", 1};
      answer(std::move(done), std::move(result));
      return;
    }
    VirtualApi::devices_details(q, std::move(done));
  }

  void get_devices_state(const upswift::StatesQuery& q,
                         std::function<void(upswift::Result<upswift::StatesPage>)> done) override {
    ++reads;
    states_asked.push_back(q);
    VirtualApi::get_devices_state(q, std::move(done));
  }

 private:
  std::deque<Script> scripts_;
  std::vector<std::pair<std::string, Script>> scripts_for_;
  bool fail_reads_ = false;
};

}  // namespace rollout::test
