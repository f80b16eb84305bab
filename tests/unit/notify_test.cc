// Webhooks: what a plan may say, what each milestone is, and the bodies receivers get.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "check_plan.h"
#include "fake_sender.h"
#include "notify/notifier.h"
#include "store/sqlite_store.h"
#include "util/asio_clock.h"

using namespace rollout;

TEST_CASE("a plan's notify: urls, events and formats") {
  const auto c = test::check_plan(R"(version: 1
name: p
flow_id: f
project: Demo
notify:
  - {url: "https://hooks.example.com/T000/B000/XXXX"}
  - {url: "http://127.0.0.1:8080/hook", events: [run_failed, stage_failed], format: slack}
stages:
  - {name: a, groups: [A]}
)");
  REQUIRE(c.report == "");
  const auto& n = c.loaded.plan->notify;
  REQUIRE(n.size() == 2);
  CHECK(n[0].events.empty());
  CHECK(n[0].format == plan::Webhook::Format::json);
  CHECK(n[1].events == std::vector<std::string>{"run_failed", "stage_failed"});
  CHECK(n[1].format == plan::Webhook::Format::slack);

  const auto bad = test::check_plan(R"(version: 1
name: p
flow_id: f
project: Demo
notify:
  - {url: "http://hooks.example.com/x", events: [stage_done]}
stages:
  - {name: a, groups: [A]}
)");
  CHECK(bad.report.find("6:11: error: webhook url must be https:// (plain http only to 127.0.0.1 "
                        "or localhost), got 'http://hooks.example.com/x'") != std::string::npos);
  CHECK(bad.report.find("6:50: error: event must be one of") != std::string::npos);
}

TEST_CASE("stage changes and run endings map to the milestones webhooks can ask for") {
  using state::RunStatus;
  using state::StageStatus;
  CHECK(notify::stage_milestone(StageStatus::gating) == "stage_dispatched");
  CHECK(notify::stage_milestone(StageStatus::passed) == "stage_passed");
  CHECK(notify::stage_milestone(StageStatus::failed) == "stage_failed");
  CHECK(notify::stage_milestone(StageStatus::rolling_back) == "stage_failed");
  // A rollback's check concluded: back on every device, or an alarm of its own.
  CHECK(notify::stage_milestone(StageStatus::rolled_back) == "rolled_back");
  CHECK(notify::stage_milestone(StageStatus::rollback_failed) == "rollback_failed");
  CHECK(notify::stage_milestone(StageStatus::awaiting_approval) == "approval_needed");
  CHECK(notify::stage_milestone(StageStatus::paused) == "approval_needed");
  CHECK_FALSE(notify::stage_milestone(StageStatus::dispatching));
  CHECK(notify::run_milestone(RunStatus::completed) == "run_completed");
  CHECK(notify::run_milestone(RunStatus::stopped) == "run_failed");
  CHECK(notify::run_milestone(RunStatus::aborted) == "run_failed");
  CHECK(notify::run_milestone(RunStatus::failed) == "run_failed");
  CHECK(notify::run_milestone(RunStatus::paused) == "run_paused");
  CHECK_FALSE(notify::run_milestone(RunStatus::interrupted));
}

namespace {

// A notifier over a fake receiver, on a manual clock, recording into a store in memory.
struct Hooks {
  explicit Hooks(const std::string& notify_yaml, notify::Retry retry = {})
      : checked(test::check_plan(R"(version: 1
name: fw
flow_id: f
project: Demo
)" + notify_yaml + R"(
stages:
  - {name: eu, groups: [EU]}
)")),
        clock(io, WallTime(std::chrono::hours(24 * 365 * 56))),
        sender(clock),
        notifier(sender, clock, store, *checked.loaded.plan, "r-1", retry) {
    REQUIRE(checked.report == "");
  }
  // The bodies' "event" fields, in the order they were POSTed, and to which URL.
  std::vector<std::string> posted(const std::string& url_part = "") const {
    std::vector<std::string> out;
    for (const auto& s : sender.sent) {
      if (s.request.url.find(url_part) == std::string::npos) continue;
      out.push_back(nlohmann::json::parse(s.request.body)["event"].get<std::string>());
    }
    return out;
  }
  std::vector<std::string> notes() {
    std::vector<std::string> out;
    for (const auto& e : store.load_events("r-1"))
      if (e.kind == state::EventKind::notify) out.push_back(e.message);
    return out;
  }
  // Lets time pass to the next retry and runs what is due.
  void wait() {
    REQUIRE(clock.advance());
    io.restart();
    io.run();
  }
  state::StageRecord stage(state::StageStatus status) const {
    state::StageRecord r;
    r.run_id = "r-1";
    r.name = "eu";
    r.status = status;
    return r;
  }

  test::Checked checked;
  asio::io_context io;
  ManualClock clock;
  test::FakeSender sender;
  store::SqliteStore store{":memory:"};
  notify::Notifier notifier;
};

}  // namespace

TEST_CASE("webhooks get their milestones in order: the next waits until this one is delivered") {
  Hooks h(R"(notify:
  - {url: "https://hooks.example.com/a"})");
  h.notifier.run_started(h.clock.now(), false);
  h.notifier.on_stage(h.stage(state::StageStatus::dispatching), h.clock.now());  // no milestone
  h.notifier.on_stage(h.stage(state::StageStatus::gating), h.clock.now());
  h.notifier.on_stage(h.stage(state::StageStatus::gating), h.clock.now());  // no change: nothing
  h.notifier.on_stage(h.stage(state::StageStatus::passed), h.clock.now());
  h.notifier.on_run(state::RunStatus::completed, "every stage passed", h.clock.now());
  // One at a time: the first is in flight, the rest queue behind it.
  CHECK(h.posted() == std::vector<std::string>{"run_started"});
  h.sender.answer(204);
  h.sender.answer(200);
  h.sender.answer(200);
  CHECK(h.sender.unanswered() == 1);
  h.sender.answer(200);
  CHECK(h.posted() == std::vector<std::string>{"run_started", "stage_dispatched", "stage_passed",
                                               "run_completed"});
  CHECK(h.notifier.idle());
  const auto notes = h.notes();
  REQUIRE(notes.size() == 4);
  CHECK(notes[0] == "webhook 1 (hooks.example.com) run_started: delivered (HTTP 204) on attempt 1");
  CHECK(notes[3] ==
        "webhook 1 (hooks.example.com) run_completed: delivered (HTTP 200) on attempt 1");
}

TEST_CASE("a device lost mid-update and abort_when met are milestones; other events are not") {
  Hooks h(R"(notify:
  - {url: "https://hooks.example.com/all"}
  - {url: "https://hooks.example.com/lost", events: [device_lost]})");
  const WallTime at = h.clock.now();
  h.notifier.on_event({0, "r-1", at, "eu", state::EventKind::device_lost,
                       "d-1 (eu-1): its update in_progress ..."});
  h.notifier.on_event(
      {0, "r-1", at, "eu", state::EventKind::device_back, "d-1 (eu-1): no longer lost"});
  h.notifier.on_event({0, "r-1", at, "eu", state::EventKind::snapshot, "targets 20 device(s)"});
  h.notifier.on_event(
      {0, "r-1", at, "", state::EventKind::abort_criteria, "abort_when failed 3% met ..."});
  for (int i = 0; i < 3; ++i) h.sender.answer(200);
  CHECK(h.posted("/all") == std::vector<std::string>{"device_lost", "abort_criteria"});
  CHECK(h.posted("/lost") == std::vector<std::string>{"device_lost"});
  const auto body = nlohmann::json::parse(h.sender.sent.front().request.body);
  CHECK(body["stage"] == "eu");
  CHECK(body["message"] == "d-1 (eu-1): its update in_progress ...");
}

TEST_CASE("a failing webhook is retried with doubling waits, then given up, and the next goes") {
  Hooks h(R"(notify:
  - {url: "https://hooks.example.com/a"}
  - {url: "https://other.example.com/b", events: [run_failed]})",
          {.attempts = 3, .first_wait = std::chrono::milliseconds(1000)});
  const WallTime start = h.clock.now();
  h.notifier.on_stage(h.stage(state::StageStatus::failed), h.clock.now());
  h.notifier.on_run(state::RunStatus::stopped, "stage eu failed", h.clock.now());
  // The second webhook asked for run_failed only, and gets it at once: queues are per webhook.
  CHECK(h.posted("other.example.com") == std::vector<std::string>{"run_failed"});
  CHECK(h.posted("hooks.example.com") == std::vector<std::string>{"stage_failed"});
  h.sender.answer(500);  // hooks: stage_failed, attempt 1
  h.sender.answer(200);  // other: delivered
  h.wait();              // 1 s later: attempt 2
  h.sender.fail("connection refused");
  h.wait();  // 2 s later: attempt 3, the last
  h.sender.answer(503);
  std::vector<WallTime> tries;
  for (const auto& s : h.sender.sent)
    if (s.request.url.find("hooks.example.com") != std::string::npos) tries.push_back(s.at);
  REQUIRE(tries.size() == 4);  // three of stage_failed, then run_failed
  CHECK(tries[1] - tries[0] == std::chrono::seconds(1));
  CHECK(tries[2] - tries[1] == std::chrono::seconds(2));
  CHECK(tries[0] == start);
  CHECK(h.posted("hooks.example.com") ==
        std::vector<std::string>{"stage_failed", "stage_failed", "stage_failed", "run_failed"});
  h.sender.answer(200);
  const auto notes = h.notes();
  REQUIRE(notes.size() == 3);
  CHECK(notes[0] == "webhook 2 (other.example.com) run_failed: delivered (HTTP 200) on attempt 1");
  CHECK(notes[1] ==
        "webhook 1 (hooks.example.com) stage_failed: not delivered after 3 attempts: HTTP 503");
  CHECK(notes[2] == "webhook 1 (hooks.example.com) run_failed: delivered (HTTP 200) on attempt 1");
}

TEST_CASE("deliveries still waiting when the process ends are recorded as abandoned") {
  Hooks h(R"(notify:
  - {url: "https://hooks.example.com/a"})");
  h.notifier.on_stage(h.stage(state::StageStatus::gating), h.clock.now());
  h.notifier.on_run(state::RunStatus::paused, "waiting for approval", h.clock.now());
  CHECK_FALSE(h.notifier.idle());
  h.notifier.abandon_pending();
  CHECK(h.notifier.idle());
  CHECK(h.notes() ==
        std::vector<std::string>{
            "webhook 1 (hooks.example.com) stage_dispatched: abandoned: the run's process ended "
            "first",
            "webhook 1 (hooks.example.com) run_paused: abandoned: the run's process ended first"});
  h.sender.answer(200);  // the answer that comes after changes nothing
  CHECK(h.notes().size() == 2);
}

TEST_CASE("webhook bodies: one JSON object per milestone, or Slack's text") {
  const notify::Milestone m{
      "stage_passed",      "r-1", "fw-3", "eu", WallTime(std::chrono::seconds(1795600000)),
      "20 of 20 succeeded"};
  const auto j = nlohmann::json::parse(notify::body(m, plan::Webhook::Format::json));
  CHECK(j == nlohmann::json{{"event", "stage_passed"},
                            {"run", "r-1"},
                            {"plan", "fw-3"},
                            {"stage", "eu"},
                            {"time", "2026-11-25T09:46:40Z"},
                            {"message", "20 of 20 succeeded"}});
  const auto slack = nlohmann::json::parse(notify::body(m, plan::Webhook::Format::slack));
  CHECK(slack ==
        nlohmann::json{{"text", "rollout r-1 (fw-3): stage_passed eu: 20 of 20 succeeded"}});
  notify::Milestone run_level = m;
  run_level.stage.clear();
  CHECK(nlohmann::json::parse(notify::body(run_level, plan::Webhook::Format::json))["stage"] ==
        nullptr);
}
