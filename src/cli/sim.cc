// rollout sim --fleet FLEET.yaml --listen 127.0.0.1:PORT: an Upswift-compatible server
// over a simulated fleet, until SIGINT or SIGTERM.
#include <csignal>
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/exit_codes.h"
#include "sim/fleet_file.h"
#include "sim/server.h"
#include "util/asio.h"

namespace rollout::cli {

namespace {

struct SimOptions {
  std::string fleet;
  std::string listen = "127.0.0.1:0";
  double time_scale = 1.0;
  std::string request_log;
  std::uint64_t seed = 1;
  sim::Faults faults;
  int slow_ms = 2000;
};

int run_sim(const SimOptions& o) {
  auto fleet_spec = load_fleet_file(o.fleet);
  if (!fleet_spec) return kExitInvalidInput;
  const auto colon = o.listen.rfind(':');
  sim::ServerOptions server_options;
  server_options.address = o.listen.substr(0, colon);
  if (server_options.address.size() > 2 && server_options.address.front() == '[') {
    server_options.address = server_options.address.substr(1, server_options.address.size() - 2);
  }
  try {
    server_options.port = static_cast<unsigned short>(std::stoul(o.listen.substr(colon + 1)));
  } catch (const std::exception&) {
    std::cerr << fmt::format("rollout sim: --listen '{}' must be ADDRESS:PORT, e.g. 127.0.0.1:0\n",
                             o.listen);
    return kExitInvalidInput;
  }
  server_options.faults = o.faults;
  server_options.faults.slow = std::chrono::milliseconds(o.slow_ms);
  server_options.request_log = o.request_log;
  server_options.seed = o.seed;

  asio::io_context io;
  auto clock = sim::scaled_clock(o.time_scale);
  sim::Fleet fleet(*fleet_spec, clock());
  std::unique_ptr<sim::Server> server;
  try {
    server = std::make_unique<sim::Server>(io, fleet, server_options, clock);
  } catch (const std::exception& e) {
    std::cerr << "rollout sim: " << e.what() << "\n";
    return kExitError;
  }
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    server->stop();
    io.stop();
  });
  std::cout << fmt::format("rollout sim: listening on {} ({} devices, time x{})\n",
                           server->base_url(), fleet.size(), o.time_scale)
            << std::flush;
  io.run();
  std::cout << fmt::format("rollout sim: stopped after {} requests, {} deploy_update applied\n",
                           server->counters().requests, server->counters().deploys_applied);
  return kExitOk;
}

}  // namespace

void add_sim_command(CLI::App& app, Run& run) {
  auto o = std::make_shared<SimOptions>();
  CLI::App* cmd =
      app.add_subcommand("sim", "Run the Upswift-compatible fleet simulator (loopback HTTP).");
  cmd->add_option("--fleet", o->fleet, "Fleet file (YAML), e.g. examples/fleets/small.yaml")
      ->required();
  cmd->add_option("--listen", o->listen, "ADDRESS:PORT on loopback; port 0 picks a free one")
      ->capture_default_str();
  cmd->add_option("--time-scale", o->time_scale,
                  "Simulated seconds per real second (60: a minute a second)")
      ->check(CLI::Range(0.001, 1e7))
      ->capture_default_str();
  cmd->add_option("--request-log", o->request_log,
                  "Append every request as a JSON line (token redacted)");
  cmd->add_option("--seed", o->seed, "Seed for fault injection")->capture_default_str();
  cmd->add_option("--fail-429", o->faults.rate_429, "Share of requests answered 429 (0..1)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--fail-5xx", o->faults.rate_5xx, "Share answered 500 without acting (0..1)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--slow", o->faults.rate_slow, "Share answered late (0..1)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--slow-ms", o->slow_ms, "How late a slow answer is")->capture_default_str();
  cmd->add_option("--drop", o->faults.rate_drop,
                  "Share of connections dropped before acting (0..1)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--drop-after-apply", o->faults.rate_drop_after_apply,
                  "Share of deploy_update calls applied, then dropped unanswered (0..1)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--foreign-200", o->faults.rate_foreign_200,
                  "Share of deploy_update calls applied, then answered 200 with a body that is "
                  "not Upswift's (HTML, empty, another shape), as a proxy would (0..1)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->footer(
      "Endpoints: POST /v1/deploy_update, GET /v1/devices_details, GET /v1/get_devices_state.\n"
      "Point rollout at it with UPSWIFT_API_URL=http://127.0.0.1:PORT/v1/ (any non-empty token "
      "works).\n"
      "Devices that go dark mid-update (for lost-device gates): offline_mid_update: 30% in the "
      "fleet\n"
      "file's updates, or in an override for a group or tag; with dark_for: {min: 20m, max: 40m}\n"
      "they come back after that long, else never (examples/fleets/dark-devices.yaml has both).");
  cmd->callback([o, &run] { run = [o] { return run_sim(*o); }; });
}

std::optional<sim::FleetSpec> load_fleet_file(const std::string& path) {
  std::string why;
  auto text = read_file(path, &why);
  if (!text) {
    std::cerr << fmt::format("{}: error: cannot read the fleet file: {}\n", path, why);
    return std::nullopt;
  }
  auto loaded = sim::load_fleet(*text);
  std::cerr << loaded.diagnostics.format(path);
  return std::move(loaded.spec);
}

}  // namespace rollout::cli
