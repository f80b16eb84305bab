#include "cli/session.h"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>
#include <algorithm>

#include <csignal>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/console.h"
#include "cli/exit_codes.h"
#include "cli/review.h"
#include "client/upswift_client.h"
#include "notify/notifier.h"
#include "plan/loader.h"
#include "sim/fleet_file.h"
#include "sim/journal.h"
#include "sim/server.h"
#include "store/postgres_store.h"
#include "util/asio_clock.h"
#include "util/safe_text.h"
#include "util/sha256.h"
#include "util/suggest.h"

namespace rollout::cli {

std::string resolve_state_path(const StateOptions& o) {
  if (!o.state_path.empty()) return o.state_path;
  if (const char* env = std::getenv("ROLLOUT_STATE"); env && *env) return env;
  return "rollout.db";
}

void add_state_option(CLI::App* cmd, std::string& state_path) {
  cmd->add_option("--state", state_path,
                  "Where the runs are kept: a SQLite file, or a PostgreSQL database shared by a "
                  "team, postgresql://USER@HOST:PORT/DB?sslmode=... (its password from "
                  "PGPASSWORD, ~/.pgpass or a service file). Default: $ROLLOUT_STATE, else "
                  "rollout.db");
}

void add_state_retry_option(CLI::App* cmd, StateOptions& state) {
  cmd->add_option_function<std::string>(
         "--state-retry",
         [&state](const std::string& text) {
           std::string why;
           auto d = parse_duration(text, &why);
           if (!d) throw CLI::ValidationError("--state-retry", why);
           state.state_retry = *d;
         },
         "On a PostgreSQL state: for how long a lost connection (a server restart, a network "
         "blip) is made again, with backoff, before the run stops resumable; 0s: not at all "
         "(default 60s)")
      ->type_name("DURATION");
}

WallTime record_time(state::StateStore& store, const state::RunRecord& run) {
  return std::max({std::chrono::system_clock::now(), run.updated_at,
                   store.latest_record(run.id).value_or(run.updated_at)});
}

void check_state_url(const StateOptions& o) {
  const std::string path = resolve_state_path(o);
  // A password in the URL is bad input (exit 2), not a state that failed.
  if (store::is_postgres_url(path)) {
    if (auto why = store::postgres_url_refusal(path)) throw CommandError(kExitInvalidInput, *why);
  }
}

std::unique_ptr<store::SqlStore> open_store(const StateOptions& o, bool create) {
  check_state_url(o);
  const std::string path = resolve_state_path(o);
  try {
    return store::open_state(path, create, std::chrono::duration_cast<Millis>(o.state_retry));
  } catch (const store::StoreError& e) {
    throw CommandError(kExitError, e.what());
  }
}

std::string current_user() {
  if (const passwd* pw = getpwuid(geteuid()); pw && pw->pw_name) return pw->pw_name;
  if (const char* user = std::getenv("USER")) return user;
  return fmt::format("uid {}", geteuid());
}

state::LeaseOwner this_process() {
  // $HOSTNAME where it is exported (containers set it to their name), else the machine's.
  if (const char* named = std::getenv("HOSTNAME"); named && *named)
    return {named, static_cast<std::int64_t>(getpid()), current_user()};
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return {host, static_cast<std::int64_t>(getpid()), current_user()};
}

state::RunRecord find_run(state::StateStore& store, const std::string& id) {
  if (id == "last") {
    auto runs = store.list_runs();
    if (runs.empty()) throw CommandError(kExitInvalidInput, "the state database holds no runs yet");
    show_if_gone(store, runs.back());
    return runs.back();
  }
  auto run = store.load_run(id);
  if (!run) {
    throw CommandError(
        kExitInvalidInput,
        fmt::format("no run '{}' in the state database (rollout runs lists them)", id));
  }
  show_if_gone(store, *run);
  return *run;
}

bool process_is_gone(const state::LeaseOwner& owner) {
  return owner.host == this_process().host && ::kill(static_cast<pid_t>(owner.pid), 0) != 0 &&
         errno == ESRCH;
}

std::string no_such_stage(const std::string& run_id, const std::string& stage,
                          const std::vector<std::string>& names) {
  const std::vector<std::string_view> candidates(names.begin(), names.end());
  return fmt::format("run {} has no stage '{}'{}; its stages: {}", run_id, stage,
                     did_you_mean(stage, candidates), fmt::join(names, ", "));
}

std::size_t unsettled_calls(state::StateStore& store, const std::string& run_id) {
  const auto calls = store.load_calls(run_id);
  return static_cast<std::size_t>(
      std::count_if(calls.begin(), calls.end(), [](const auto& c) { return state::unsettled(c); }));
}

OpenedRun open_run(const StateOptions& state, const std::string& run_id) {
  auto store = open_store(state);
  auto run = find_run(*store, run_id);
  auto plan = check_stored_plan(run.id, run.plan_path, run.plan_text);
  return OpenedRun{std::move(store), std::move(run), std::move(plan)};
}

void show_if_gone(state::StateStore& store, state::RunRecord& run) {
  if (run.status != state::RunStatus::running) return;
  const auto lease = store.lease(run.id);
  const WallTime now = std::chrono::system_clock::now();
  std::string why;
  if (!lease) {
    why = "no process holds its lease";
  } else if (now - lease->heartbeat_at > lease_stale_after()) {
    why = fmt::format(
        "its process ({}@{}, pid {}) was last heard from {}s ago", lease->owner.user,
        lease->owner.host, lease->owner.pid,
        std::chrono::duration_cast<std::chrono::seconds>(now - lease->heartbeat_at).count());
  } else if (process_is_gone(lease->owner)) {
    why = fmt::format("its process (pid {}) is gone", lease->owner.pid);
  } else {
    return;
  }
  run.status = state::RunStatus::interrupted;
  run.reason =
      fmt::format("{} (crashed or killed); continue with `rollout resume {}`", why, run.id);
}

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

// The journal of a simulated run, if it has one yet; prints why not and sets `failed` when
// it is there but unusable.
std::optional<sim::Journal> load_journal(const std::string& path, bool& failed) {
  failed = false;
  if (path.empty() || !std::filesystem::exists(path)) return std::nullopt;
  std::string why;
  auto text = read_file(path, &why);
  std::optional<sim::Journal> journal;
  if (text) journal = sim::read_journal(*text, &why);
  if (!journal) {
    std::cerr << fmt::format("rollout: the simulated fleet's record {} cannot be read: {}\n", path,
                             why);
    failed = true;
  }
  return journal;
}

}  // namespace

std::string sim_journal_path(const StateOptions& state, const std::string& run_id) {
  const std::string where = resolve_state_path(state);
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

namespace {

constexpr std::chrono::seconds kWebhookGrace{5};

// The console, and the webhooks when the plan has any.
class ObserverPair : public engine::Observer {
 public:
  ObserverPair(engine::Observer& first, engine::Observer* second)
      : first_(first), second_(second) {}
  void on_event(const state::Event& e) override {
    first_.on_event(e);
    if (second_) second_->on_event(e);
  }
  void on_observation(const state::Observation& o) override {
    first_.on_observation(o);
    if (second_) second_->on_observation(o);
  }
  void on_stage(const state::StageRecord& r, WallTime at) override {
    first_.on_stage(r, at);
    if (second_) second_->on_stage(r, at);
  }
  void on_snapshot(const std::string& stage, std::size_t devices) override {
    first_.on_snapshot(stage, devices);
    if (second_) second_->on_snapshot(stage, devices);
  }
  void on_run(state::RunStatus status, const std::string& reason, WallTime at) override {
    first_.on_run(status, reason, at);
    if (second_) second_->on_run(status, reason, at);
  }

 private:
  engine::Observer& first_;
  engine::Observer* second_;
};

// ROLLOUT_TEST_CRASH_AT=point[:n]: SIGKILL at the n-th time the engine reaches `point`.
// For the kill-and-resume tests only.
std::function<void(std::string_view)> crash_hook_from_env() {
  const char* spec = std::getenv("ROLLOUT_TEST_CRASH_AT");
  if (!spec || !*spec) return {};
  std::string text(spec);
  int nth = 1;
  if (auto colon = text.find(':'); colon != std::string::npos) {
    nth = std::atoi(text.c_str() + colon + 1);
    text.resize(colon);
  }
  if (!engine::is_crash_point(text)) {
    throw CommandError(kExitInvalidInput,
                       fmt::format("ROLLOUT_TEST_CRASH_AT names '{}', which is not a crash point; "
                                   "the engine's are: {}",
                                   text, fmt::join(engine::kCrashPoints, ", ")));
  }
  auto count = std::make_shared<int>(0);
  return [text, nth, count](std::string_view point) {
    if (point == text && ++*count == nth) ::raise(SIGKILL);
  };
}

}  // namespace

void check_test_hooks() {
  crash_hook_from_env();
}

int exit_code(engine::Ending ending) {
  switch (ending) {
    case engine::Ending::completed:
      return kExitOk;
    case engine::Ending::stopped:
      return kExitStopped;
    case engine::Ending::paused:
      return kExitPaused;
    case engine::Ending::interrupted:
      return kExitInterrupted;
    case engine::Ending::failed:
      return kExitError;
  }
  return kExitError;
}

Millis lease_stale_after() {
  if (const char* test = std::getenv("ROLLOUT_TEST_LEASE_MS"); test && std::atoi(test) > 0)
    return Millis{std::atoi(test)};
  return Millis{30000};
}

std::optional<state::Lease> try_lease(state::StateStore& store, const std::string& run_id) {
  const state::LeaseOwner me = this_process();
  const WallTime now = std::chrono::system_clock::now();
  auto held = store.acquire_lease(run_id, me, now, lease_stale_after());
  if (held && process_is_gone(held->owner)) {
    // Its owner on this machine is gone: the lease is stale whatever its heartbeat says.
    held = store.acquire_lease(run_id, me, now, lease_stale_after(), /*take_over=*/true);
  }
  return held;
}

bool take_lease(state::StateStore& store, const std::string& run_id) {
  const WallTime now = std::chrono::system_clock::now();
  if (auto held = try_lease(store, run_id)) {
    const auto age =
        std::chrono::duration_cast<std::chrono::seconds>(now - held->heartbeat_at).count();
    std::cerr << fmt::format(
        "rollout: run {} is being run by {}@{} (pid {}), last heard from {}s ago; "
        "refusing to run it twice. If that process is gone, its lease goes stale "
        "{}s after its last heartbeat.\n",
        run_id, held->owner.user, held->owner.host, held->owner.pid, age,
        lease_stale_after().count() / 1000);
    return false;
  }
  return true;
}

state::RunClaim run_claim(bool allow_concurrent) {
  state::RunClaim claim{
      this_process(), std::chrono::system_clock::now(), lease_stale_after(), allow_concurrent, {}};
  claim.owner_gone = [](const state::LeaseOwner& owner) { return process_is_gone(owner); };
  return claim;
}

void refuse_beside(const state::RunConflict& conflict) {
  const auto age = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::system_clock::now() - conflict.lease.heartbeat_at);
  std::cerr << fmt::format(
      "rollout: refusing to start: run {} (plan '{}') is live in this state database, run by "
      "{}@{} (pid {}), last heard from {}s ago, and {}.\nNothing was sent or written. Watch it "
      "with `rollout status {}`; if its process is gone, its lease goes stale {}s after its "
      "last heartbeat; to run both at once anyway, add --allow-concurrent.\n",
      conflict.run.id, conflict.run.plan_name, conflict.lease.owner.user, conflict.lease.owner.host,
      conflict.lease.owner.pid, std::max<long long>(age.count(), 0), conflict.why, conflict.run.id,
      lease_stale_after().count() / 1000);
}

bool alone_or_allowed(state::StateStore& store, const state::RunRecord& run,
                      bool allow_concurrent) {
  auto conflict = store.live_conflict(run, run_claim(allow_concurrent));
  if (!conflict) return true;
  store.release_lease(run.id, this_process());
  refuse_beside(*conflict);
  return false;
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
      throw CommandError(kExitInvalidInput,
                         fmt::format("this run runs against the simulated fleet {}, not {}; leave "
                                     "--simulate out to go on with it",
                                     recorded, options.simulate_fleet));
    }
    auto spec = load_fleet_file(fleet_path);
    if (!spec) throw CommandError(kExitInvalidInput, "");  // its diagnostics were printed
    bool failed = false;
    auto journal = load_journal(options.sim_journal, failed);
    if (failed) throw CommandError(kExitInvalidInput, "");  // said why
    // Rebuilt from its file alone, a fleet the run already updated would take the updates
    // again: refused, as a changed fleet file is.
    if (!journal && options.sim_journal_required) {
      throw CommandError(
          kExitInvalidInput,
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
        throw CommandError(kExitInvalidInput,
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
        throw CommandError(
            kExitInvalidInput,
            fmt::format("cannot write the simulated fleet's record {}", options.sim_journal));
      }
    }
    try {
      c->sim_ = std::make_unique<InProcessSim>(*spec, options.time_scale, created,
                                               to_sim(c->start_), journal, options.sim_journal);
    } catch (const std::exception& e) {
      throw CommandError(kExitError, fmt::format("cannot start the simulated fleet: {}", e.what()));
    }
    url = c->sim_->url();
    if (token.empty()) token = "simulated";
  } else if (auto why = api_refusal(url, options)) {
    throw CommandError(kExitInvalidInput, *why);
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
    throw CommandError(kExitInvalidInput, e.what());
  }
  return c;
}

ApiOptions run_api_options(state::StateStore& store, const StateOptions& state,
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

namespace {

// Wakes the engine when the store says another process approved or asked to abort this
// run (PostgreSQL's NOTIFY); SQLite has no such news, and the engine's own checks find it.
class NewsWatch {
 public:
  NewsWatch(asio::io_context& io, state::StateStore& store, std::string run_id,
            std::function<void()> wake)
      : store_(store), run_id_(std::move(run_id)), wake_(std::move(wake)), socket_(io) {
    const int fd = store_.news_fd();
    if (fd < 0) return;
    socket_.assign(fd);
    wait();
  }
  ~NewsWatch() { stop(); }
  void stop() {
    if (!socket_.is_open()) return;
    boost::system::error_code ignored;
    socket_.cancel(ignored);
    socket_.release();  // the store's connection: it closes it
  }

 private:
  void wait() {
    socket_.async_wait(asio::posix::stream_descriptor::wait_read,
                       [this](const boost::system::error_code& ec) {
                         if (ec || !socket_.is_open()) return;
                         if (store_.news_for(run_id_)) wake_();
                         // A lost connection reads as readable for ever: stop listening (the
                         // next write says what happened; the engine's own checks go on).
                         if (store_.news_fd() < 0) return stop();
                         wait();
                       });
  }
  state::StateStore& store_;
  std::string run_id_;
  std::function<void()> wake_;
  asio::posix::stream_descriptor socket_;
};

}  // namespace

int drive_run(state::StateStore& store, const StateOptions& state, const state::RunRecord& run,
              const CheckedPlan& checked, const ApiOptions& given_api_options) {
  const plan::Plan& plan = checked.plan;

  const ApiOptions api_options = run_api_options(store, state, run, given_api_options);

  asio::io_context io;
  std::unique_ptr<ApiConnection> connection;
  try {
    connection = ApiConnection::open(io, plan, run.api_url, api_options);
  } catch (const CommandError&) {
    // Nothing was sent: the run is left as it was, for the next process at once.
    store.release_lease(run.id, this_process());
    throw;
  }
  AsioClock clock(io, api_options.time_scale, connection->start());
  // The last word before a deploy_update leaves, after any wait for the rate limit: does
  // this process still hold the run? A process frozen past its lease (SIGSTOP, a laptop
  // lid, a paused VM) whose run was taken over finds out here and sends nothing.
  connection->client().set_send_guard([&store, id = run.id] { return store.check_lease(id); });
  view::RunProgress progress = read_progress(store, run);
  const bool resumed = !progress.recent.empty();  // a new run has no events yet
  Console console(io, clock, plan, std::move(progress),
                  console_mode(api_options.json, api_options.quiet, api_options.no_progress));
  // Said on the terminal (not recorded: a storm of 429s would fill the state with them).
  connection->client().set_retry_notice([&](const client::UpswiftClient::RetryNotice& n) {
    console.on_event({0, run.id, clock.now(), "", state::EventKind::api_retry, describe_retry(n)});
  });
  engine::EngineOptions options;
  options.owner = this_process();
  // Several heartbeats within a lease, whatever the clock's scale (a faster clock only beats
  // more often in wall time).
  options.heartbeat = std::min(options.heartbeat, lease_stale_after() / 6);
  options.crash_point = crash_hook_from_env();
  // Webhooks wait and stamp their records in wall time, whatever the run's clock.
  AsioClock wall_clock(io);
  std::optional<http::CurlClient> webhook_http;
  std::optional<notify::Notifier> notifier;
  if (!plan.notify.empty()) {
    webhook_http.emplace(io);
    notifier.emplace(*webhook_http, wall_clock, store, plan, run.id);
  }
  ObserverPair observers(console, notifier ? &*notifier : nullptr);
  engine::Engine engine(io, plan, checked.graph, connection->api(), store, clock, observers, run.id,
                        options);

  NewsWatch news(io, store, run.id, [&engine] { engine.wake(); });

  asio::signal_set signals(io, SIGINT, SIGTERM);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        if (engine.finished()) return;
        static bool second = false;
        if (second) std::_Exit(kExitInterrupted);  // every write so far is a committed transaction
        second = true;
        engine.interrupt();
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);

  std::optional<engine::Outcome> outcome;
  console.begin(resumed);
  if (notifier) notifier->run_started(clock.now(), resumed);
  engine.start([&](engine::Outcome o) {
    outcome = o;
    signals.cancel();
    news.stop();
    io.stop();
  });
  try {
    io.run();
  } catch (const state::LeaseLost&) {
    throw;  // another process runs it now: not one more write
  } catch (const std::exception& e) {
    // The one error path (main) prints it. The run is recorded as failed, resumable, where
    // the store still takes a write (a full disk may have room for one more small one);
    // otherwise its lease goes stale and it shows as interrupted.
    try {
      const std::string reason = fmt::format(
          "stopped by an error: {}; continue with rollout resume {}", printable(e.what()), run.id);
      store.add_event({0, run.id, clock.now(), "", state::EventKind::error, reason});
      store.set_run_status(run.id, state::RunStatus::failed, reason, clock.now(), false);
      store.release_lease(run.id, options.owner);
    } catch (const std::exception&) {
    }
    throw;
  }
  if (notifier) {
    // Webhook deliveries still under way get a few seconds, then are recorded as abandoned:
    // a dead webhook delays the process's exit by that much at most, never the rollout.
    const auto deadline = std::chrono::steady_clock::now() + kWebhookGrace;
    io.restart();
    while (!notifier->idle() && std::chrono::steady_clock::now() < deadline)
      io.run_one_for(deadline - std::chrono::steady_clock::now());
    notifier->abandon_pending();
  }
  if (!outcome) return kExitError;
  console.end(outcome->ending, outcome->reason, exit_code(outcome->ending));
  if (!api_options.json) {
    std::cout << fmt::format("\nrun {} {}: {}\n", run.id, engine::name(outcome->ending),
                             outcome->reason);
    if (!outcome->next.empty()) {
      std::cout << fmt::format("see `rollout show {}`; then `{}`\n", run.id, outcome->next);
    } else if (outcome->ending == engine::Ending::paused ||
               outcome->ending == engine::Ending::interrupted ||
               outcome->ending == engine::Ending::failed) {
      std::cout << fmt::format("see `rollout show {}`; continue with `rollout resume {}`\n", run.id,
                               run.id);
    }
  }
  return exit_code(outcome->ending);
}

}  // namespace rollout::cli
