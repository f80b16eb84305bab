// Webhooks: what a plan may say, what each milestone is, and the bodies receivers get.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "check_plan.h"
#include "notify/notifier.h"

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
  CHECK(notify::stage_milestone("gating") == "stage_dispatched");
  CHECK(notify::stage_milestone("passed") == "stage_passed");
  CHECK(notify::stage_milestone("failed") == "stage_failed");
  CHECK(notify::stage_milestone("rolling_back") == "stage_failed");
  CHECK(notify::stage_milestone("awaiting_approval") == "approval_needed");
  CHECK(notify::stage_milestone("paused") == "approval_needed");
  CHECK_FALSE(notify::stage_milestone("dispatching"));
  CHECK(notify::run_milestone("run_completed") == "run_completed");
  CHECK(notify::run_milestone("run_stopped") == "run_failed");
  CHECK(notify::run_milestone("run_aborted") == "run_failed");
  CHECK(notify::run_milestone("run_paused") == "run_paused");
  CHECK_FALSE(notify::run_milestone("run_interrupted"));
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
