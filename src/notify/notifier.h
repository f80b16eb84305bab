// Webhooks (`notify:` in a plan): the run's milestones POSTed as they happen, one queue per
// webhook so that each receives them in order, sent asynchronously with retries; a slow or
// dead webhook never holds up or fails the rollout. Every delivery's outcome is recorded in
// the state database as a `notify` event. It sends through an http::Sender and waits on a
// Clock, both given: the CLI gives libcurl and wall time, the tests a fake and a manual clock.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "http/curl_client.h"
#include "plan/model.h"
#include "state/store.h"
#include "util/clock.h"

namespace rollout::notify {

// One milestone, as webhooks receive it.
struct Milestone {
  std::string event;  // one of plan::keys::kNotifyEvents
  std::string run_id;
  std::string plan;
  std::string stage;  // empty for the run's own events
  WallTime at{};
  std::string message;
};

// The body POSTed for `m` in `format`: a JSON object, or Slack's {"text": ...}.
std::string body(const Milestone& m, plan::Webhook::Format format);

// The milestone a stage's new status or the run's end is, if any.
std::optional<std::string> stage_milestone(state::StageStatus status);
std::optional<std::string> run_milestone(state::RunStatus status);

struct Retry {
  int attempts = 5;                            // per delivery
  std::chrono::milliseconds first_wait{1000};  // doubled after each failure
  std::chrono::milliseconds timeout{5000};     // per attempt
};

class Notifier : public engine::Observer {
 public:
  Notifier(http::Sender& sender, Clock& clock, state::StateStore& store, const plan::Plan& plan,
           std::string run_id, Retry retry = {});
  ~Notifier() override;

  void run_started(WallTime at, bool resumed);
  // A device lost mid-update and the run's abort_when met are milestones of their own.
  void on_event(const state::Event& e) override;
  void on_stage(const state::StageRecord& r, WallTime at) override;
  void on_run(state::RunStatus status, const std::string& reason, WallTime at) override;

  bool idle() const;
  // Records the deliveries still waiting as abandoned (called when the run's process ends).
  void abandon_pending();

 private:
  struct Hook;
  void enqueue(const Milestone& m);
  void pump(Hook& hook);
  void attempt(Hook& hook, int number, std::chrono::milliseconds wait);
  void record(const Hook& hook, const Milestone& m, const std::string& outcome);

  http::Sender& sender_;
  Clock& clock_;
  state::StateStore& store_;
  const plan::Plan& plan_;
  std::string run_id_;
  Retry retry_;
  std::vector<std::unique_ptr<Hook>> hooks_;
  std::map<std::string, state::StageStatus> last_status_;  // milestones fire on changes
  std::shared_ptr<bool> alive_;
};

}  // namespace rollout::notify
