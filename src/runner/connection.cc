#include "runner/connection.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "runner/error.h"
#include "sim/fleet_file.h"
#include "sim/journal.h"
#include "sim/server.h"
#include "store/sql_store.h"
#include "util/file.h"
#include "util/sha256.h"

namespace rollout::runner {

// The in-process simulator for --simulate: its own thread and io_context. With a journal,
// its fleet is what the journal says it applied (the run's earlier processes), and what it
// applies now is added to it.
class InProcessSim {
 public:
  InProcessSim(const sim::FleetSpec& spec, double scale, sim::SimTime created, sim::SimTime start,
               const std::optional<sim::Journal>& journal, const std::string& journal_path)
      : clock_(sim::scaled_clock(scale, start)),
        fleet_(spec, created),
        server_(io_, fleet_, options(journal_path), clock_) {
    if (journal) sim::replay(fleet_, *journal);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~InProcessSim() {
    asio::post(io_, [this] {
      server_.stop();
      io_.stop();
    });
    thread_.join();
  }
  std::string url() const { return server_.base_url(); }

 private:
  static sim::ServerOptions options(const std::string& journal_path) {
    sim::ServerOptions o;
    o.request_log = journal_path;
    return o;
  }
  asio::io_context io_;
  std::function<sim::SimTime()> clock_;
  sim::Fleet fleet_;
  sim::Server server_;
  std::thread thread_;
};

namespace {

sim::SimTime to_sim(WallTime t) {
  return std::chrono::duration_cast<sim::Millis>(t.time_since_epoch());
}

// The journal of a simulated run, if it has one yet; RunError when it is there but unusable.
std::optional<sim::Journal> load_journal(const std::string& path) {
  if (path.empty() || !std::filesystem::exists(path)) return std::nullopt;
  std::string why;
  auto text = read_file(path, &why);
  std::optional<sim::Journal> journal;
  if (text) journal = sim::read_journal(*text, &why);
  if (!journal) {
    throw RunError(RunError::Kind::input,
                   fmt::format("the simulated fleet's record {} cannot be read: {}", path, why));
  }
  return journal;
}

sim::FleetSpec load_fleet_file(const std::string& path) {
  std::string why;
  auto text = read_file(path, &why);
  if (!text) {
    throw RunError(RunError::Kind::input,
                   fmt::format("{}: error: cannot read the fleet file: {}", path, why), true);
  }
  auto loaded = sim::load_fleet(*text);
  if (!loaded.spec) {
    std::string said = loaded.diagnostics.format(path);
    while (!said.empty() && said.back() == '\n') said.pop_back();
    throw RunError(RunError::Kind::input, said, true);
  }
  return std::move(*loaded.spec);
}

}  // namespace

std::string sim_journal_path(const std::string& where, const std::string& run_id) {
  if (!store::is_postgres_url(where)) return fmt::format("{}.sim/{}.jsonl", where, run_id);
  // A server has no folder beside it: this user's state folder, on this machine.
  std::string base;
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg) {
    base = xdg;
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    base = fmt::format("{}/.local/state", home);
  } else {
    base = ".";
  }
  return fmt::format("{}/rollout/sim/{}.jsonl", base, run_id);
}

std::optional<std::string> api_refusal(const std::string& url, const ApiOptions& api) {
  if (url.rfind(kSimulated, 0) == 0) return std::nullopt;  // an in-process simulator
  // Plain http is only accepted to loopback, so "not https" means a local simulator.
  if (api.time_scale != 1.0 && url.rfind("http://", 0) != 0)
    return "--time-scale is only for simulated fleets (--simulate, or a simulator on loopback)";
  if (auto why = client::check_base_url(url)) return why;
  const char* token = std::getenv("UPSWIFT_USER_TOKEN");
  if (!token || !*token) {
    return "no Upswift user token: set UPSWIFT_USER_TOKEN (it is never read from the command "
           "line)";
  }
  return std::nullopt;
}

std::string run_api_url(const plan::Plan& plan, const ApiOptions& api) {
  if (!api.simulate_fleet.empty()) {
    return std::string(kSimulated) +
           std::filesystem::absolute(api.simulate_fleet).lexically_normal().string();
  }
  if (plan.api.url) return *plan.api.url;
  if (const char* env = std::getenv("UPSWIFT_API_URL"); env && *env) return env;
  return client::kDefaultApiUrl;
}

ApiConnection::~ApiConnection() = default;

std::string describe_retry(const client::UpswiftClient::RetryNotice& n) {
  return fmt::format("API not answering as it should: {}: {}; try {} of {} in {:.1f} s", n.endpoint,
                     n.why, n.next_attempt, n.max_attempts,
                     static_cast<double>(n.delay.count()) / 1000.0);
}

std::unique_ptr<ApiConnection> ApiConnection::open(asio::io_context& io, const plan::Plan& plan,
                                                   const std::string& run_url,
                                                   const ApiOptions& options) {
  std::unique_ptr<ApiConnection> c(new ApiConnection());
  // Options of no run (rollout plan, a saved plan's check) start now.
  c->start_ =
      options.sim_start == WallTime{} ? std::chrono::system_clock::now() : options.sim_start;
  std::string url = run_url;
  std::string token;
  if (const char* env = std::getenv("UPSWIFT_USER_TOKEN")) token = env;
  if (url.rfind(kSimulated, 0) == 0) {
    // The fleet the run started with, unless --simulate names one (which must be it).
    const std::string recorded = url.substr(kSimulated.size());
    std::string fleet_path = options.simulate_fleet.empty() ? recorded : options.simulate_fleet;
    if (!options.simulate_fleet.empty() &&
        std::filesystem::absolute(options.simulate_fleet).lexically_normal() !=
            std::filesystem::path(recorded)) {
      throw RunError(RunError::Kind::input,
                     fmt::format("this run runs against the simulated fleet {}, not {}; leave "
                                 "--simulate out to go on with it",
                                 recorded, options.simulate_fleet));
    }
    const sim::FleetSpec spec = load_fleet_file(fleet_path);
    auto journal = load_journal(options.sim_journal);
    // Rebuilt from its file alone, a fleet the run already updated would take the updates
    // again: refused, as a changed fleet file is.
    if (!journal && options.sim_journal_required) {
      throw RunError(
          RunError::Kind::input,
          fmt::format("the simulated fleet's record {} of this run is missing: its fleet, which "
                      "the run already sent updates to, cannot be rebuilt without it (it would "
                      "take them again). Put the file back (rollout state migrate copies it "
                      "with the run), or start a new run",
                      options.sim_journal));
    }
    std::string why;
    const std::string fleet_hash = sha256_hex(read_file(fleet_path, &why).value_or(""));
    sim::SimTime created = to_sim(c->start_);
    if (journal) {
      if (journal->header.fleet_sha256 != fleet_hash) {
        throw RunError(RunError::Kind::input,
                       fmt::format("{} has changed since this run started against it: its "
                                   "simulated fleet cannot be rebuilt (put the file back as "
                                   "it was, or start a new run)",
                                   fleet_path));
      }
      created = journal->header.created;
      c->start_ = std::max(c->start_, WallTime(journal->last));
    } else if (!options.sim_journal.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(std::filesystem::path(options.sim_journal).parent_path(),
                                          ec);
      if (!write_file(options.sim_journal, sim::journal_header_line({recorded, fleet_hash, created,
                                                                     options.time_scale}))) {
        throw RunError(
            RunError::Kind::input,
            fmt::format("cannot write the simulated fleet's record {}", options.sim_journal));
      }
    }
    try {
      c->sim_ = std::make_unique<InProcessSim>(spec, options.time_scale, created, to_sim(c->start_),
                                               journal, options.sim_journal);
    } catch (const std::exception& e) {
      throw RunError(RunError::Kind::failure,
                     fmt::format("cannot start the simulated fleet: {}", e.what()));
    }
    url = c->sim_->url();
    if (token.empty()) token = "simulated";
  } else if (auto why = api_refusal(url, options)) {
    throw RunError(RunError::Kind::input, *why);
  }
  client::ClientConfig config;
  config.base_url = url;
  config.user_token = token;
  // A time-scaled simulator lives in faster time: so does the rate limit.
  config.rate_calls = static_cast<std::int64_t>(static_cast<double>(plan.api.rate_limit.calls) *
                                                std::max(1.0, options.time_scale));
  config.rate_per = std::chrono::duration_cast<Millis>(plan.api.rate_limit.per);
  try {
    c->client_ = std::make_unique<client::UpswiftClient>(io, config);
  } catch (const std::invalid_argument& e) {
    throw RunError(RunError::Kind::input, e.what());
  }
  return c;
}

ApiOptions run_api_options(state::StateStore& store, const std::string& state,
                           const state::RunRecord& run, const ApiOptions& given) {
  // Simulated time runs faster than the wall clock: a resumed simulated run goes on from
  // where its own time had got to (its records; and what its simulated fleet last did,
  // which ApiConnection::open reads from the fleet's journal), so its timeline stays in order.
  ApiOptions options = given;
  if (run.api_url.rfind(kSimulated, 0) == 0) {
    options.sim_journal = sim_journal_path(state, run.id);
    options.sim_journal_required = !store.load_calls(run.id).empty();
    // The run's own time scale, unless the command line says another: an `abort --rollback`
    // typed without it neither waits an hour of wall time for a 600-times-faster fleet nor
    // records times before the run's.
    // (A record that cannot be read is said when the fleet is opened.)
    std::string why;
    if (!options.time_scale_given) {
      if (const auto text = read_file(options.sim_journal, &why)) {
        if (const auto journal = sim::read_journal(*text, &why))
          options.time_scale = journal->header.time_scale;
      }
    }
  }
  const WallTime wall_now = std::chrono::system_clock::now();
  // Its origin is the latest time the run's records carry: a process killed mid-run left its
  // status's time at its start, hours of simulated time before its last record.
  const WallTime recorded =
      std::max(run.updated_at, store.latest_record(run.id).value_or(run.updated_at));
  options.sim_start = options.time_scale > 1.0 ? std::max(wall_now, recorded) : wall_now;
  return options;
}

}  // namespace rollout::runner
