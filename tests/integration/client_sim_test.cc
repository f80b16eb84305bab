// The real client (libcurl on Asio) against the simulator over loopback HTTP.
#include <doctest/doctest.h>

#include "client/upswift_client.h"
#include "sim_fixture.h"

using namespace rollout;
using upswift::CallStatus;

namespace {

client::ClientConfig config_for(const std::string& url) {
  client::ClientConfig c;
  c.base_url = url;
  c.user_token = "tok-123";
  c.rate_calls = 100000;
  c.rate_per = std::chrono::milliseconds(1000);
  c.retry.base_delay = std::chrono::milliseconds(5);
  c.retry.max_delay = std::chrono::milliseconds(50);
  c.retry.max_attempts = 12;
  c.jitter_seed = 7;
  c.timeout = std::chrono::milliseconds(3000);
  return c;
}

upswift::DeployRequest seed_request() {
  upswift::DeployRequest r;
  r.flow_id = "73a7-1ft8";
  r.project = "Demo";
  r.groups = {"TestGroup1", "TestGroup2"};
  r.filters = {{upswift::FilterType::specific_device, upswift::Operand::is, "d-4ec7-1be9"}};
  r.comment = "test webhook 1";
  r.app = upswift::AppVersion{"default_app", "v1.1"};
  return r;
}

// Runs one asynchronous call to completion on a fresh io_context.
template <typename Start>
auto run_call(const client::ClientConfig& config, Start start) {
  asio::io_context io;
  client::UpswiftClient api(io, config);
  using ResultType = typename decltype(start(api, nullptr))::type;
  std::optional<ResultType> result;
  start(api, [&](ResultType r) { result = std::move(r); });
  io.run();
  REQUIRE(result);
  return std::make_pair(std::move(*result), api.stats());
}

template <typename T>
struct Tag {
  using type = T;
};

auto deploy(const upswift::DeployRequest& request) {
  return [request](client::UpswiftClient& api, auto done) {
    if constexpr (!std::is_same_v<decltype(done), std::nullptr_t>) api.deploy_update(request, done);
    return Tag<upswift::Result<upswift::Accepted>>{};
  };
}

auto list_group(std::optional<std::string> group) {
  return [group](client::UpswiftClient& api, auto done) {
    if constexpr (!std::is_same_v<decltype(done), std::nullptr_t>) {
      upswift::list_all_devices(api, "Demo", group, done);
    }
    return Tag<upswift::Result<std::vector<upswift::Device>>>{};
  };
}

}  // namespace

TEST_CASE("deploy_update sends the seed page's body to the byte and is accepted once") {
  test::SimFixture sim;
  auto [result, stats] = run_call(config_for(sim.url()), deploy(seed_request()));
  CHECK(result.ok());
  CHECK(stats.requests == 1);
  auto seen = sim.requests();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].endpoint == "deploy_update");
  CHECK(
      seen[0].body ==
      R"({"user_token":"tok-123","flow_id":"73a7-1ft8","devices_filter":{"project":{"name":"Demo"},)"
      R"("groups":[{"name":"TestGroup1"},{"name":"TestGroup2"}],"filters":[{"type":"specific_device",)"
      R"("operand":"is","value":"d-4ec7-1be9"}]},"metadata":{"comment":"test webhook 1","app":)"
      R"({"name":"default_app","version":"v1.1"}}})");
  sim.stop();
  CHECK(sim.counters().deploys_applied == 1);
}

TEST_CASE("devices are listed 50 a page, each page starting after the last device_id") {
  test::SimFixture sim;
  auto [result, stats] = run_call(config_for(sim.url()), list_group(std::nullopt));
  REQUIRE(result.ok());
  CHECK(result.value->size() == 62);
  auto seen = sim.requests();
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].body == R"({"user_token":"tok-123","project_name":"Demo","limit":50})");
  const auto last_of_first_page = (*result.value)[49].device_id;
  CHECK(seen[1].body == R"({"user_token":"tok-123","project_name":"Demo","limit":50,"offset":)" +
                            std::to_string(last_of_first_page) + "}");
  // Every device exactly once, in device_id order.
  for (std::size_t i = 1; i < result.value->size(); ++i) {
    CHECK((*result.value)[i - 1].device_id < (*result.value)[i].device_id);
  }
}

TEST_CASE("a group's devices come with their updates after a deploy") {
  test::SimFixture sim;
  upswift::DeployRequest r;
  r.flow_id = "f-1";
  r.project = "Demo";
  r.groups = {"B"};
  r.comment = "wave b";
  r.app = upswift::AppVersion{"default_app", "v2"};
  auto [deployed, s1] = run_call(config_for(sim.url()), deploy(r));
  REQUIRE(deployed.ok());
  auto [listed, s2] = run_call(config_for(sim.url()), list_group(std::string("B")));
  REQUIRE(listed.ok());
  REQUIRE(listed.value->size() == 25);
  for (const auto& d : *listed.value) {
    CHECK(d.group == "B");
    REQUIRE(d.updates.size() == 1);
    CHECK(d.updates[0].update_status == "pending");
    CHECK(d.updates[0].update_version == "v2");
    CHECK(d.updates[0].comment == "wave b");
  }
}

TEST_CASE("a 400 is surfaced with Upswift's error_message quoted, and not retried") {
  test::SimFixture sim;
  auto request = seed_request();
  request.flow_id = "no-such-flow";
  auto [result, stats] = run_call(config_for(sim.url()), deploy(request));
  CHECK_FALSE(result.ok());
  CHECK(result.error.status == CallStatus::refused);
  CHECK(result.error.http_status == 400);
  CHECK(result.error.message ==
        "Upswift refused deploy_update: \"Flow 'no-such-flow' was not found\"");
  CHECK(stats.requests == 1);
  request.flow_id = "f-1";
  request.groups = {"Nope"};
  auto [bad_group, s2] = run_call(config_for(sim.url()), deploy(request));
  CHECK(bad_group.error.message ==
        "Upswift refused deploy_update: \"Group 'Nope' was not found in project 'Demo'\"");
}

TEST_CASE("429s are retried with backoff until the call goes through, exactly once") {
  sim::ServerOptions options;
  options.faults.rate_429 = 0.6;
  options.seed = 11;
  test::SimFixture sim(options);
  auto config = config_for(sim.url());
  config.retry.max_attempts = 30;
  auto [result, stats] = run_call(config, deploy(seed_request()));
  CHECK(result.ok());
  CHECK(stats.throttled > 0);
  CHECK(stats.requests == stats.throttled + 1);
  auto [listed, s2] = run_call(config, list_group(std::nullopt));
  CHECK(listed.ok());
  CHECK(listed.value->size() == 62);
  sim.stop();
  CHECK(sim.counters().deploys_applied == 1);
}

TEST_CASE("the rate limiter slows down when 429s come") {
  sim::ServerOptions options;
  options.faults.rate_429 = 0.5;
  options.seed = 5;
  test::SimFixture sim(options);
  asio::io_context io;
  auto config = config_for(sim.url());
  config.rate_calls = 1000;
  config.retry.max_attempts = 30;
  client::UpswiftClient api(io, config);
  std::optional<upswift::Result<std::vector<upswift::Device>>> result;
  upswift::list_all_devices(api, "Demo", std::nullopt, [&](auto r) { result = std::move(r); });
  io.run();
  REQUIRE(result);
  CHECK(result->ok());
  CHECK(api.stats().throttled > 0);
  CHECK(api.current_rate_per_second() < 1000.0);
}

TEST_CASE("a deploy_update applied but never answered is an unknown outcome, never re-sent") {
  sim::ServerOptions options;
  options.faults.rate_drop_after_apply = 1.0;
  test::SimFixture sim(options);
  auto [result, stats] = run_call(config_for(sim.url()), deploy(seed_request()));
  CHECK_FALSE(result.ok());
  CHECK(result.error.status == CallStatus::unknown_outcome);
  CHECK(result.error.message.find("Upswift may or may not have started the update") !=
        std::string::npos);
  CHECK(stats.requests == 1);
  sim.stop();
  CHECK(sim.counters().deploys_applied == 1);
}

TEST_CASE("a deploy_update whose answer is too slow is an unknown outcome") {
  sim::ServerOptions options;
  options.faults.rate_slow = 1.0;
  options.faults.slow = std::chrono::milliseconds(1500);
  test::SimFixture sim(options);
  auto config = config_for(sim.url());
  config.timeout = std::chrono::milliseconds(300);
  auto [result, stats] = run_call(config, deploy(seed_request()));
  CHECK(result.error.status == CallStatus::unknown_outcome);
  CHECK(stats.requests == 1);
}

TEST_CASE("reads survive dropped connections and 5xx answers") {
  sim::ServerOptions options;
  options.faults.rate_drop = 0.3;
  options.faults.rate_5xx = 0.3;
  options.seed = 21;
  test::SimFixture sim(options);
  auto config = config_for(sim.url());
  config.retry.max_attempts = 40;
  auto [listed, stats] = run_call(config, list_group(std::nullopt));
  REQUIRE(listed.ok());
  CHECK(listed.value->size() == 62);
  CHECK(stats.retries > 0);
}

TEST_CASE("a 5xx on deploy_update is an unknown outcome: the server may have acted") {
  sim::ServerOptions options;
  options.faults.rate_5xx = 1.0;
  test::SimFixture sim(options);
  auto [result, stats] = run_call(config_for(sim.url()), deploy(seed_request()));
  CHECK(result.error.status == CallStatus::unknown_outcome);
  CHECK(result.error.http_status == 500);
  CHECK(stats.requests == 1);
}

TEST_CASE("a deploy_update that never reached the server is retried, then fails for certain") {
  // Nothing listens on this port once the fixture has gone.
  std::string url;
  {
    test::SimFixture gone;
    url = gone.url();
  }
  auto config = config_for(url);
  config.retry.max_attempts = 3;
  auto [result, stats] = run_call(config, deploy(seed_request()));
  CHECK(result.error.status == CallStatus::failed);
  CHECK(result.error.attempts == 3);
  CHECK(result.error.message.rfind("gave up after 3 attempts: could not reach", 0) == 0);
  CHECK(result.error.message.find("tok-123") == std::string::npos);
}

TEST_CASE("many calls in flight at once on one thread") {
  test::SimFixture sim;
  asio::io_context io;
  client::UpswiftClient api(io, config_for(sim.url()));
  int done = 0;
  for (int i = 0; i < 64; ++i) {
    upswift::DevicesQuery q;
    q.project_name = "Demo";
    q.group_name = "A";
    api.devices_details(q, [&](upswift::Result<upswift::DevicesPage> r) {
      CHECK(r.ok());
      CHECK(r.value->devices.size() == 30);
      ++done;
    });
  }
  io.run();
  CHECK(done == 64);
}

// libcurl re-sends a request on its own when a reused keep-alive connection closes before
// any answer ("Connection died, retrying a fresh connect"). Reads first, so that a pooled
// connection is there to be reused, then deploy_updates whose every answer is dropped after
// the server applied them: each applied exactly once, each an unknown outcome.
TEST_CASE("a deploy_update after reads, its answer dropped after applying, is applied once") {
  sim::ServerOptions options;
  options.faults.rate_drop_after_apply = 1.0;
  test::SimFixture sim(options);
  asio::io_context io;
  client::UpswiftClient api(io, config_for(sim.url()));
  int unknown = 0;
  std::function<void(int)> next = [&](int left) {
    if (left == 0) return;
    upswift::DevicesQuery q;
    q.project_name = "Demo";
    q.group_name = "A";
    api.devices_details(q, [&, left](upswift::Result<upswift::DevicesPage> page) {
      CHECK(page.ok());
      api.deploy_update(seed_request(), [&, left](upswift::Result<upswift::Accepted> r) {
        CHECK(r.error.status == CallStatus::unknown_outcome);
        unknown += r.error.status == CallStatus::unknown_outcome ? 1 : 0;
        next(left - 1);
      });
    });
  };
  next(5);
  io.run();
  CHECK(unknown == 5);
  CHECK(api.stats().requests == 10);
  sim.stop();
  CHECK(sim.counters().deploys_applied == 5);
  int deploys_seen = 0;
  for (const auto& r : sim.requests()) deploys_seen += r.endpoint == "deploy_update" ? 1 : 0;
  CHECK(deploys_seen == 5);
}

TEST_CASE("a 200 that is not Upswift's answer (HTML, empty, another shape) is an unknown outcome") {
  sim::ServerOptions options;
  options.faults.rate_foreign_200 = 1.0;
  test::SimFixture sim(options);
  for (int i = 0; i < 3; ++i) {
    auto [result, stats] = run_call(config_for(sim.url()), deploy(seed_request()));
    CHECK_FALSE(result.ok());
    CHECK(result.error.status == CallStatus::unknown_outcome);
    CHECK(result.error.message.find("instead of Upswift's answer") != std::string::npos);
    CHECK(stats.requests == 1);
  }
  sim.stop();
  CHECK(sim.counters().deploys_applied == 3);
}

TEST_CASE("a deploy_update the send guard refuses is not sent, and fails for certain") {
  test::SimFixture sim;
  asio::io_context io;
  client::UpswiftClient api(io, config_for(sim.url()));
  int asked = 0;
  api.set_send_guard([&]() -> std::optional<std::string> {
    ++asked;
    return "the run's lease was taken over";
  });
  std::optional<upswift::Result<upswift::Accepted>> result;
  api.deploy_update(seed_request(), [&](upswift::Result<upswift::Accepted> r) { result = r; });
  // Reads are not guarded: they have no effect to fence.
  std::optional<bool> listed;
  upswift::DevicesQuery q;
  q.project_name = "Demo";
  api.devices_details(q, [&](upswift::Result<upswift::DevicesPage> r) { listed = r.ok(); });
  io.run();
  REQUIRE(result);
  CHECK(result->error.status == CallStatus::failed);
  CHECK(result->error.message == "deploy_update not sent: the run's lease was taken over");
  CHECK(asked == 1);
  CHECK(listed == true);
  sim.stop();
  CHECK(sim.counters().deploys_applied == 0);
}
