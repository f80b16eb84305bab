// The simulated fleet's rules, on a driven simulated time: no sockets, no sleeps.
#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <set>

#include <fmt/format.h>

#include "fleet_builder.h"
#include "sim/fleet.h"
#include "sim/fleet_file.h"
#include "sim/journal.h"

using namespace rollout;
using namespace std::chrono_literals;
using upswift::FilterType;
using upswift::Operand;

namespace {

const sim::SimTime t0 = sim::SimTime(1'700'000'000'000);

sim::FleetSpec spec() {
  test::FleetBuilder fleet(9);
  fleet.flows({"f"})
      .timing({10s, 10s}, {60s, 60s})
      .group({.name = "A",
              .devices = 10,
              .tags = {"a"},
              .tag_shares = {{"half", 0.5}},
              .apps = {{"app1", "v1"}}})
      .group({.name = "B", .devices = 10, .online = 0.3})
      .device({.uuid = "d-0000-0001", .group = "Lab", .tags = {"lab"}})
      .failing("B", 1.0, "f");
  fleet.behavior().offline_return = sim::Range{30min, 30min};
  return fleet;
}

upswift::DeployRequest request(std::vector<std::string> groups,
                               std::vector<upswift::Filter> filters = {}) {
  upswift::DeployRequest r;
  r.flow_id = "f";
  r.project = "Demo";
  r.groups = std::move(groups);
  r.filters = std::move(filters);
  r.app = upswift::AppVersion{"app1", "v2"};
  return r;
}

}  // namespace

TEST_CASE("groups select ANY, filters narrow with AND") {
  sim::Fleet fleet(spec(), t0);
  CHECK(fleet.size() == 21);
  CHECK(fleet.select(request({"A"}), t0).size() == 10);
  CHECK(fleet.select(request({"A", "B"}), t0).size() == 20);
  CHECK(fleet.select(request({}), t0).size() == 21);
  CHECK(fleet.select(request({"A"}, {{FilterType::tag, Operand::is, "half"}}), t0).size() == 5);
  CHECK(fleet.select(request({"A"}, {{FilterType::tag, Operand::is_not, "half"}}), t0).size() == 5);
  CHECK(fleet
            .select(request({}, {{FilterType::tag, Operand::is, "a"},
                                 {FilterType::tag, Operand::is, "half"}}),
                    t0)
            .size() == 5);
  CHECK(fleet.select(request({}, {{FilterType::specific_device, Operand::is, "d-0000-0001"}}), t0)
            .size() == 1);
  CHECK(
      fleet.select(request({}, {{FilterType::specific_device, Operand::is_not, "d-0000-0001"}}), t0)
          .size() == 20);
  CHECK(fleet.select(request({"B"}, {{FilterType::device_state, Operand::is, "online"}}), t0)
            .size() == 3);
  CHECK(fleet.select(request({}, {{FilterType::app, Operand::is, "app1"}}), t0).size() == 10);
  CHECK(fleet.select(request({}, {{FilterType::app, Operand::is_not, "app1"}}), t0).size() == 11);
}

TEST_CASE("an update moves pending -> in_progress -> success, and sets the app version") {
  sim::Fleet fleet(spec(), t0);
  auto out = fleet.deploy(request({"A"}), t0);
  REQUIRE_FALSE(out.error);
  CHECK(out.targeted == 10);
  const sim::SimDevice& d = fleet.devices().front();
  CHECK(d.updates.back().status_at(t0) == "pending");
  CHECK(d.updates.back().status_at(t0 + 10s) == "in_progress");
  CHECK(d.updates.back().status_at(t0 + 70s) == "success");
  CHECK(d.apps_at(t0 + 69s).items().front().version == "v1");
  CHECK(d.apps_at(t0 + 70s).items().front().version == "v2");
  // Kept between calls only while they cannot have changed: asked again, earlier or later.
  CHECK(d.apps_at(t0 + 69s).items().front().version == "v1");
  CHECK(d.apps_at(t0 + 2h).items().front().version == "v2");
  // update_status is the LAST update's.
  auto succeeded = request({}, {{FilterType::update_status, Operand::is, "success"}});
  CHECK(fleet.select(succeeded, t0 + 70s).size() == 10);
  auto not_succeeded = request({}, {{FilterType::update_status, Operand::is_not, "success"}});
  CHECK(fleet.select(not_succeeded, t0 + 70s).size() == 11);
  CHECK(
      fleet.select(request({}, {{FilterType::update_status, Operand::is, "pending"}}), t0).size() ==
      10);
}

TEST_CASE("failure rates by override, offline devices stay pending until they return") {
  sim::Fleet fleet(spec(), t0);
  REQUIRE_FALSE(fleet.deploy(request({"B"}), t0).error);
  int failed = 0, pending = 0;
  for (const auto& d : fleet.devices()) {
    if (d.group != "B") continue;
    const std::string_view at_5min = d.updates.back().status_at(t0 + 5min);
    if (at_5min == "failed") ++failed;
    if (at_5min == "pending") ++pending;
    CHECK(d.updates.back().status_at(t0 + 40min) == "failed");  // back online at 30m, then 70s
  }
  CHECK(failed == 3);   // the online ones
  CHECK(pending == 7);  // the offline ones
}

TEST_CASE("devices that go dark mid-update: for good, or back after dark_for to finish") {
  test::FleetBuilder builder(9);
  builder.flows({"f"}).timing({10s, 10s}, {60s, 60s}).group("A", 4).group("B", 4);
  builder.dark("A", 1.0);
  builder.dark("B", 1.0, sim::Range{20min, 20min});
  sim::Fleet fleet(builder, t0);
  REQUIRE_FALSE(fleet.deploy(request({"A", "B"}), t0).error);
  for (const auto& d : fleet.devices()) {
    CAPTURE(d.name);
    const auto& u = d.updates.back();
    // In progress from 10 s; dark halfway through its 60 s, its update left in progress.
    CHECK(d.online_at(t0 + 39s));
    CHECK(u.status_at(t0 + 39s) == "in_progress");
    CHECK_FALSE(d.online_at(t0 + 40s));
    CHECK(u.status_at(t0 + 10min) == "in_progress");
    if (d.group == "A") {  // bricked
      CHECK_FALSE(d.online_at(t0 + 100 * 24h));
      CHECK(u.status_at(t0 + 100 * 24h) == "in_progress");
    } else {  // back at 40 s + 20 min, the other 30 s of its update then done
      CHECK_FALSE(d.online_at(t0 + 20min + 39s));
      CHECK(d.online_at(t0 + 20min + 40s));
      CHECK(u.status_at(t0 + 20min + 69s) == "in_progress");
      CHECK(u.status_at(t0 + 20min + 70s) == "success");
    }
  }
  // The fleet file says the same.
  sim::FleetLoad loaded = sim::load_fleet(R"(seed: 1
updates: {offline_mid_update: 10%, dark_for: {min: 5m, max: 10m}}
overrides:
  - {group: A, offline_mid_update: 100%, dark_for: {min: 1h, max: 1h}}
projects:
  - {name: Demo, groups: [{name: A, devices: 1}]}
)");
  REQUIRE_FALSE(loaded.diagnostics.has_errors());
  REQUIRE(loaded.spec->behavior.dark_for);
  CHECK(loaded.spec->behavior.dark_for->max == 10min);
  REQUIRE(loaded.spec->overrides.at(0).dark_for);
  CHECK(loaded.spec->overrides.at(0).dark_for->min == 1h);
}

TEST_CASE("a newer update aborts one still running") {
  sim::Fleet fleet(spec(), t0);
  REQUIRE_FALSE(fleet.deploy(request({"A"}), t0).error);
  REQUIRE_FALSE(fleet.deploy(request({"A"}), t0 + 20s).error);
  const auto& d = fleet.devices().front();
  REQUIRE(d.updates.size() == 2);
  CHECK(d.updates[0].status_at(t0 + 20s) == "aborted");
  CHECK(d.updates[1].status_at(t0 + 20s) == "pending");
}

TEST_CASE("refusals name what is missing") {
  sim::Fleet fleet(spec(), t0);
  auto r = request({"A"});
  r.flow_id = "zz";
  CHECK(fleet.deploy(r, t0).error == "Flow 'zz' was not found");
  r = request({"Q"});
  CHECK(fleet.deploy(r, t0).error == "Group 'Q' was not found in project 'Demo'");
  r.project = "Nope";
  CHECK(fleet.deploy(r, t0).error == "Project 'Nope' was not found");
}

TEST_CASE("devices_details and get_devices_state page by their offsets") {
  sim::Fleet fleet(spec(), t0);
  upswift::DevicesQuery q;
  q.project_name = "Demo";
  q.limit = 8;
  std::vector<std::int64_t> ids;
  for (;;) {
    auto page = fleet.devices_details(q, t0);
    REQUIRE_FALSE(page.error);
    for (const auto& d : page.page.devices) ids.push_back(d.device_id);
    if (!page.page.more) break;
    q.offset = page.page.devices.back().device_id;
  }
  CHECK(ids.size() == 21);
  CHECK(std::adjacent_find(ids.begin(), ids.end(), std::greater_equal<>()) == ids.end());

  upswift::StatesQuery s;
  s.project_name = "Demo";
  s.group_name = "B";
  s.limit = 4;
  int online = 0, total = 0;
  for (;;) {
    auto page = fleet.devices_state(s, t0);
    REQUIRE_FALSE(page.error);
    for (const auto& st : page.page.states) {
      ++total;
      online += st.device_status == "online";
    }
    if (!page.page.more) break;
    s.offset = page.page.states.back().device_uuid;
  }
  CHECK(total == 10);
  CHECK(online == 3);
}

TEST_CASE("the fleet file: every example loads, mistakes are reported with positions") {
  auto ok = sim::load_fleet(
      "seed: 1\nprojects:\n  - name: Demo\n    groups:\n      - {name: A, devices: 3, online: "
      "50%}\n");
  CHECK(ok.diagnostics.format("f.yaml") == "");
  REQUIRE(ok.spec);
  CHECK(ok.spec->projects[0].groups[0].online == doctest::Approx(0.5));
  auto bad = sim::load_fleet(
      "projects:\n  - name: Demo\n    groups:\n      - {name: A, devices: many, onlin: 50%}\n"
      "updates: {failure_rate: 150%, duration: {min: 5m, max: 1m}}\n");
  CHECK(bad.diagnostics.format("f.yaml") ==
        "f.yaml:4:28: error: devices must be a whole number, got a string\n"
        "f.yaml:4:34: error: unknown key 'onlin' in group (did you mean 'online'?)\n"
        "f.yaml:5:25: error: failure_rate must be a percentage from 0% to 100%, got '150%'\n"
        "f.yaml:5:56: error: duration: max must not be below min\n");
  CHECK_FALSE(bad.spec);
}

TEST_CASE("generated device ids never repeat, even across 100,000 devices") {
  sim::FleetSpec s;
  sim::ProjectSpec p;
  p.name = "Big";
  p.groups.push_back({.name = "All", .devices = 100000});
  s.projects.push_back(p);
  sim::Fleet fleet(s, t0);
  std::set<std::string> ids;
  for (const auto& d : fleet.devices()) ids.insert(d.uuid);
  CHECK(ids.size() == 100000);
}

TEST_CASE("devices_details as the contract allows it: no project, a group, a device_token") {
  sim::FleetSpec s = spec();
  sim::ProjectSpec other;
  other.name = "Other";
  sim::DeviceSpec tokened;
  tokened.uuid = "d-0000-0099";
  tokened.group = "G";
  tokened.token = "tok-99";
  other.devices.push_back(tokened);
  s.projects.push_back(other);
  sim::Fleet fleet(s, t0);

  // Only user_token is required: without project_name, every project's devices.
  auto body = upswift::parse_devices_details(R"({"user_token": "t", "limit": 50})");
  REQUIRE(body.query);
  auto all = fleet.devices_details(*body.query, t0);
  REQUIRE_FALSE(all.error);
  CHECK(all.page.devices.size() == 22);
  CHECK(all.page.devices.back().project == "Other");

  body = upswift::parse_devices_details(R"({"user_token": "t", "group_name": "A"})");
  CHECK_FALSE(body.query);
  CHECK(body.error == "group_name is given without project_name");

  // device_token: that device, whatever else the body says.
  body = upswift::parse_devices_details(
      R"({"user_token": "t", "device_token": "tok-99", "project_name": "Demo", "limit": 999})");
  REQUIRE(body.query);
  auto one = fleet.devices_details(*body.query, t0);
  REQUIRE(one.page.devices.size() == 1);
  CHECK(one.page.devices[0].device_uuid == "d-0000-0099");
  body = upswift::parse_devices_details(R"({"user_token": "t", "device_token": ""})");
  REQUIRE(body.query);
  CHECK(fleet.devices_details(*body.query, t0).error == "device_token was not found");

  // get_devices_state alike; a limit over 50 is answered with 50.
  auto states = upswift::parse_get_devices_state(R"({"user_token": "t", "limit": 500})");
  REQUIRE(states.query);
  CHECK(states.query->limit == 50);
  CHECK(fleet.devices_state(*states.query, t0).page.states.size() == 22);
  CHECK(upswift::parse_get_devices_state(R"({"user_token": "t", "group_name": "A"})").error ==
        "group_name is given without project_name");
  CHECK(upswift::parse_devices_details(R"({"user_token": "t", "limit": 0})").error ==
        "limit must be a whole number, at least 1");

  // The client's body names no project when the query has none.
  upswift::DevicesQuery q;
  CHECK(upswift::devices_details_body(q, "t") == R"({"user_token":"t","limit":50})");
}

TEST_CASE("an override by flow: a bad build fails where a good one succeeds") {
  sim::FleetSpec s = spec();
  s.flows.push_back("bad");
  s.overrides.push_back({.flow = "bad", .failure_rate = 1.0});
  sim::Fleet fleet(s, t0);
  auto good = request({"A"});
  auto bad = request({"A"});
  bad.flow_id = "bad";
  REQUIRE_FALSE(fleet.deploy(good, t0).error);
  const auto& first = fleet.devices().front();
  CHECK(first.updates.back().status_at(t0 + 2h) == "success");
  REQUIRE_FALSE(fleet.deploy(bad, t0 + 2h).error);
  CHECK(fleet.devices().front().updates.back().status_at(t0 + 4h) == "failed");
}

TEST_CASE("a journal of what the fleet applied rebuilds the same fleet in another process") {
  sim::Fleet original(spec(), t0);
  auto first = request({"A"});
  first.comment = "one";
  auto second = request({"B"}, {{FilterType::tag, Operand::is_not, "lab"}});
  REQUIRE_FALSE(original.deploy(first, t0 + 1min).error);
  REQUIRE_FALSE(original.deploy(second, t0 + 7min).error);
  auto line = [](const upswift::DeployRequest& r, sim::SimTime at, bool applied) {
    return fmt::format(R"({{"sim_ms":{},"endpoint":"deploy_update","applied":{},"body":{}}})",
                       at.count(), applied ? "true" : "false",
                       upswift::deploy_update_body(r, "<redacted>"));
  };
  const std::string text = sim::journal_header_line({"/f.yaml", "abc", t0}) +
                           line(first, t0 + 1min, true) + "\n" +
                           R"({"sim_ms":1,"endpoint":"devices_details","body":{}})" + "\n" +
                           line(first, t0 + 2min, false) + "\n" + line(second, t0 + 7min, true) +
                           "\n" + line(first, t0 + 9min, true);  // cut short: never answered
  std::string why;
  auto journal = sim::read_journal(text, &why);
  REQUIRE_MESSAGE(journal, why);
  CHECK(journal->header.fleet_path == "/f.yaml");
  CHECK(journal->applied.size() == 2);
  CHECK(journal->last == t0 + 7min);
  sim::Fleet rebuilt(spec(), journal->header.created);
  sim::replay(rebuilt, *journal);
  for (sim::SimTime at : {t0 + 5min, t0 + 1h, t0 + 3h}) {
    for (std::size_t i = 0; i < original.size(); ++i) {
      CHECK(rebuilt.view(rebuilt.devices()[i], at) == original.view(original.devices()[i], at));
    }
  }
  CHECK_FALSE(sim::read_journal("{\"sim_ms\": 1}\n", &why));
  CHECK(why == "its first line does not name a simulated fleet");
  CHECK_FALSE(sim::read_journal("", &why));
}

TEST_CASE("simulated times are formatted right however they alternate (a few are kept)") {
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 12; ++i) {
      const sim::SimTime t = t0 + std::chrono::seconds(i * 61);
      const std::time_t seconds = static_cast<std::time_t>(t.count() / 1000);
      std::tm tm{};
      gmtime_r(&seconds, &tm);
      char expected[32];
      std::strftime(expected, sizeof expected, "%Y-%m-%d %H:%M:%S", &tm);
      CHECK(sim::format_sim_time(t) == expected);
      CHECK(sim::format_sim_time(t0) == "2023-11-14 22:13:20");
    }
  }
}
