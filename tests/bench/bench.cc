// Benchmarks of rollout's own costs, each printed as one JSON line. tests/bench/run.sh runs
// them side by side with their baselines (yaml-cpp alone, wrk, curl, Python) and writes
// RESULTS.md. Not a test: timings on shared machines vary.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>
#include <sstream>

#include "client/upswift_client.h"
#include "dag/graph.h"
#include "engine/engine.h"
#include "engine/run.h"
#include "fake_fleet.h"
#include "plan/loader.h"
#include "rehearsal/rehearsal.h"
#include "sim/fleet_file.h"
#include "store/sql_store.h"
#include "store/sqlite_store.h"
#include "util/asio_clock.h"
#include "yaml/document.h"

using namespace rollout;
using Steady = std::chrono::steady_clock;

namespace {

double ms_since(Steady::time_point t) {
  return std::chrono::duration<double, std::milli>(Steady::now() - t).count();
}

// The minimum and the median of several measurements: on a shared machine the minimum is
// the cost itself, the median what a user sees.
struct Spread {
  double min = 0, median = 0;
};
Spread spread(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v.front(), v[v.size() / 2]};
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

template <typename F>
double median_ms(int runs, F f) {
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    const auto t = Steady::now();
    f();
    times.push_back(ms_since(t));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

long peak_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

// N stages: a canary, then waves of 100 stages each needing the whole previous wave's first stage.
std::string big_plan(int stages, const std::string& bake) {
  std::string text = fmt::format(
      "version: 1\nname: big\nflow_id: f\nproject: Demo\napp: {{name: fw, version: v2}}\n"
      "defaults:\n  gate: {{bake: {}, timeout: 1h, poll: 1m, min_success: 100%}}\nstages:\n",
      bake);
  for (int i = 0; i < stages; ++i) {
    text += fmt::format("  - name: s{}\n    groups: [G{}]\n", i, i);
    if (i > 0) text += fmt::format("    needs: [s{}]\n", i < 100 ? 0 : (i / 100 - 1) * 100);
  }
  return text;
}

// yaml-cpp's scanner and parser with nothing built: the floor under any loader on top of it.
class IgnoreEvents : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

int plan_load(int stages, int rounds) {
  const std::string text = big_plan(stages, "0s");
  // The three sides one after the other in each round, so a noisy neighbour weighs on all.
  std::vector<double> yaml_ms, events_ms, ours_ms;
  std::size_t order = 0;
  for (int round = 0; round < rounds; ++round) {
    auto t = Steady::now();
    (void)YAML::Load(text);
    yaml_ms.push_back(ms_since(t));
    t = Steady::now();
    {
      std::istringstream in(text);
      YAML::Parser parser(in);
      IgnoreEvents ignore;
      parser.HandleNextDocument(ignore);
    }
    events_ms.push_back(ms_since(t));
    t = Steady::now();
    auto loaded = plan::load_plan(text);
    auto graph = dag::build(*loaded.plan, loaded.diagnostics);
    if (!graph || loaded.diagnostics.has_errors()) std::abort();
    order = graph->order.size();
    ours_ms.push_back(ms_since(t));
  }
  const Spread yaml = spread(yaml_ms), events = spread(events_ms), ours = spread(ours_ms);
  std::cout << fmt::format(R"({{"bench":"plan_load","stages":{},"bytes":{},"rounds":{},)"
                           R"("yaml_cpp_load_ms":{:.1f},"yaml_cpp_load_median_ms":{:.1f},)"
                           R"("yaml_cpp_events_ms":{:.1f},"yaml_cpp_events_median_ms":{:.1f},)"
                           R"("rollout_load_validate_dag_ms":{:.1f},"rollout_median_ms":{:.1f},)"
                           R"("ratio":{:.2f},"beyond_yaml_cpp_events_ms":{:.1f},"ordered":{}}})",
                           stages, text.size(), rounds, yaml.min, yaml.median, events.min,
                           events.median, ours.min, ours.median, ours.min / yaml.min,
                           ours.min - events.min, order)
            << "\n";
  return 0;
}

// The client against the simulator with the rate limit lifted.
client::ClientConfig unlimited(const std::string& url) {
  client::ClientConfig config;
  config.base_url = url;
  config.user_token = "bench";
  config.rate_calls = 10'000'000;
  config.rate_per = std::chrono::milliseconds(1000);
  return config;
}

int client_throughput(const std::string& url, int concurrency, int total) {
  asio::io_context io;
  client::UpswiftClient api(io, unlimited(url));
  int started = 0, finished = 0, failed = 0;
  std::function<void()> launch = [&] {
    if (started >= total) return;
    ++started;
    upswift::DevicesQuery q;
    q.project_name = "Demo";
    q.group_name = "Canary";
    q.limit = 50;
    api.devices_details(q, [&](upswift::Result<upswift::DevicesPage> r) {
      ++finished;
      if (!r.ok()) ++failed;
      launch();
    });
  };
  const auto t = Steady::now();
  const double cpu = cpu_seconds();
  for (int i = 0; i < concurrency; ++i) launch();
  io.run();
  const double s = ms_since(t) / 1000.0;
  const double cpu_us = (cpu_seconds() - cpu) * 1e6 / std::max(finished, 1);
  std::cout << fmt::format(
                   R"({{"bench":"client_throughput","concurrency":{},"requests":{},"failed":{},)"
                   R"("seconds":{:.3f},"requests_per_second":{:.0f},"cpu_us_per_request":{:.1f}}})",
                   concurrency, finished, failed, s, finished / s, cpu_us)
            << "\n";
  return failed == 0 ? 0 : 1;
}

// Reading one 50-device page of the large fleet (the simulator's own JSON) into devices, as
// the client does, beside nlohmann::json building its tree of the same text and nothing
// more (what the client read pages with before), interleaved in rounds of 2,000 reads.
int page_read(const std::string& fleet_path, int rounds) {
  std::ifstream in(fleet_path);
  std::stringstream text;
  text << in.rdbuf();
  auto loaded = sim::load_fleet(text.str());
  if (!loaded.spec) std::abort();
  const sim::SimTime now{1'700'000'000'000};
  sim::Fleet fleet(*loaded.spec, now);
  upswift::DeployRequest everyone;
  everyone.flow_id = loaded.spec->flows.empty() ? "f" : loaded.spec->flows.front();
  everyone.project = "Demo";
  everyone.comment = "firmware 2.4 [rollout r-20261127-050000-abcd/everyone]";
  everyone.app = upswift::AppVersion{"default_app", "v2.4"};
  if (fleet.deploy(everyone, now).error) std::abort();
  upswift::DevicesQuery q;
  q.project_name = "Demo";
  const std::string body = upswift::devices_page_json(fleet.devices_details(q, now).page);
  constexpr int kReads = 2000;
  std::vector<double> ours_us, tree_us;
  std::size_t devices = 0;
  for (int round = 0; round < rounds; ++round) {
    auto t = Steady::now();
    for (int i = 0; i < kReads; ++i)
      devices += upswift::parse_devices_page(body, nullptr)->devices.size();
    ours_us.push_back(ms_since(t) * 1000 / kReads);
    t = Steady::now();
    for (int i = 0; i < kReads; ++i) devices += nlohmann::json::parse(body).at("message").size();
    tree_us.push_back(ms_since(t) * 1000 / kReads);
  }
  const Spread ours = spread(ours_us), tree = spread(tree_us);
  std::cout << fmt::format(R"({{"bench":"page_read","bytes":{},"devices":{},"rounds":{},)"
                           R"("ours_us":{:.1f},"nlohmann_tree_us":{:.1f},"ratio":{:.2f}}})",
                           body.size(), devices / (2 * kReads * rounds), rounds, ours.min, tree.min,
                           ours.min / tree.min)
            << "\n";
  return 0;
}

// Times the state store's work, so that the engine's own logic can be told from the
// durable writes it makes (each one a transaction).
class TimedStore : public state::StateStore {
 public:
  explicit TimedStore(state::StateStore& inner) : inner_(inner) {}
  double store_ms = 0;
  int calls = 0;
  int writes = 0;  // transactions that write

  template <typename F>
  auto timed(F f) {
    struct Stop {
      TimedStore& self;
      Steady::time_point t = Steady::now();
      ~Stop() {
        self.store_ms += ms_since(t);
        ++self.calls;
      }
    } stop{*this};
    return f();
  }
  template <typename F>
  auto written(F f) {
    ++writes;
    return timed(f);
  }

  std::vector<std::int64_t> write(const state::WriteBatch& b) override {
    return written([&] { return inner_.write(b); });
  }

  std::optional<state::RunConflict> create_run(const state::RunRecord& r,
                                               const std::vector<state::StageRecord>& s,
                                               const state::RunClaim* claim = nullptr) override {
    return written([&] { return inner_.create_run(r, s, claim); });
  }
  std::optional<state::RunConflict> live_conflict(const state::RunRecord& run,
                                                  const state::RunClaim& claim) override {
    return timed([&] { return inner_.live_conflict(run, claim); });
  }
  std::optional<state::RunRecord> load_run(const std::string& id) override {
    return timed([&] { return inner_.load_run(id); });
  }
  std::vector<state::RunRecord> list_runs() override {
    return timed([&] { return inner_.list_runs(); });
  }
  void set_run_status(const std::string& id, state::RunStatus status, const std::string& reason,
                      WallTime at, bool finished) override {
    written([&] { inner_.set_run_status(id, status, reason, at, finished); });
  }
  std::vector<state::StageRecord> load_stages(const std::string& run) override {
    return timed([&] { return inner_.load_stages(run); });
  }
  void update_stage(const state::StageRecord& s) override {
    written([&] { inner_.update_stage(s); });
  }
  void save_snapshot(const std::string& run, const std::string& stage,
                     const std::vector<state::SnapshotDevice>& d) override {
    written([&] { inner_.save_snapshot(run, stage, d); });
  }
  std::optional<std::vector<state::SnapshotDevice>> load_snapshot(
      const std::string& run, const std::string& stage) override {
    return timed([&] { return inner_.load_snapshot(run, stage); });
  }
  std::int64_t record_intent(const state::ApiCall& c) override {
    return written([&] { return inner_.record_intent(c); });
  }
  void record_outcome(std::int64_t id, state::CallOutcome outcome, int http,
                      const std::string& message, WallTime at) override {
    written([&] { inner_.record_outcome(id, outcome, http, message, at); });
  }
  std::vector<state::ApiCall> load_calls(const std::string& run) override {
    return timed([&] { return inner_.load_calls(run); });
  }
  std::vector<state::ApiCall> load_stage_calls(const std::string& run, const std::string& stage,
                                               state::CallKind kind) override {
    return timed([&] { return inner_.load_stage_calls(run, stage, kind); });
  }
  void add_observation(const state::Observation& o, const state::DeviceChanges& changed) override {
    written([&] { inner_.add_observation(o, changed); });
  }
  std::vector<state::Observation> load_observations(const std::string& run) override {
    return timed([&] { return inner_.load_observations(run); });
  }
  std::vector<state::DeviceState> load_device_states(const std::string& run) override {
    return timed([&] { return inner_.load_device_states(run); });
  }
  std::vector<state::DeviceState> load_stage_device_states(const std::string& run,
                                                           const std::string& stage) override {
    return timed([&] { return inner_.load_stage_device_states(run, stage); });
  }
  void add_approval(const state::Approval& a) override {
    written([&] { inner_.add_approval(a); });
  }
  std::vector<state::Approval> load_approvals(const std::string& run) override {
    return timed([&] { return inner_.load_approvals(run); });
  }
  void add_event(const state::Event& e) override {
    written([&] { inner_.add_event(e); });
  }
  std::vector<state::Event> load_events(const std::string& run) override {
    return timed([&] { return inner_.load_events(run); });
  }
  std::optional<WallTime> latest_record(const std::string& run) override {
    return timed([&] { return inner_.latest_record(run); });
  }
  void request_pause(const std::string& run, const state::PauseRequest& r) override {
    written([&] { inner_.request_pause(run, r); });
  }
  void lift_pause(const std::string& run, const std::string& by, WallTime at) override {
    written([&] { inner_.lift_pause(run, by, at); });
  }
  std::optional<state::PauseRequest> pause_request(const std::string& run) override {
    return timed([&] { return inner_.pause_request(run); });
  }
  void request_abort(const std::string& run, const state::AbortRequest& r) override {
    written([&] { inner_.request_abort(run, r); });
  }
  std::optional<state::AbortRequest> abort_request(const std::string& run) override {
    return timed([&] { return inner_.abort_request(run); });
  }
  std::optional<state::Lease> acquire_lease(const std::string& run, const state::LeaseOwner& owner,
                                            WallTime now, Millis stale_after,
                                            bool take_over) override {
    return written([&] { return inner_.acquire_lease(run, owner, now, stale_after, take_over); });
  }
  void heartbeat(const std::string& run, const state::LeaseOwner& owner, WallTime now) override {
    written([&] { inner_.heartbeat(run, owner, now); });
  }
  void release_lease(const std::string& run, const state::LeaseOwner& owner) override {
    written([&] { inner_.release_lease(run, owner); });
  }
  std::optional<std::string> check_lease(const std::string& run) override {
    return timed([&] { return inner_.check_lease(run); });
  }
  std::optional<state::Lease> lease(const std::string& run) override {
    return timed([&] { return inner_.lease(run); });
  }

 private:
  state::StateStore& inner_;
};

class Quiet : public engine::Observer {
 public:
  void on_event(const state::Event&) override {}
};

// Times the fake API's own work so that it can be taken out of the engine's.
class TimedFleet : public upswift::FleetApi {
 public:
  explicit TimedFleet(test::FakeFleet& inner) : inner_(inner) {}
  double api_ms = 0;
  int calls = 0;
  void deploy_update(const upswift::DeployRequest& r,
                     std::function<void(upswift::Result<upswift::Accepted>)> d) override {
    const auto t = Steady::now();
    inner_.deploy_update(r, std::move(d));
    api_ms += ms_since(t);
    ++calls;
  }
  void devices_details(const upswift::DevicesQuery& q,
                       std::function<void(upswift::Result<upswift::DevicesPage>)> d) override {
    const auto t = Steady::now();
    inner_.devices_details(q, std::move(d));
    api_ms += ms_since(t);
    ++calls;
  }
  void get_devices_state(const upswift::StatesQuery& q,
                         std::function<void(upswift::Result<upswift::StatesPage>)> d) override {
    const auto t = Steady::now();
    inner_.get_devices_state(q, std::move(d));
    api_ms += ms_since(t);
    ++calls;
  }

 private:
  test::FakeFleet& inner_;
};

sim::FleetSpec one_device_per_group(int groups, int devices_each = 1) {
  sim::FleetSpec spec;
  spec.behavior.start_delay = {sim::Millis{0}, sim::Millis{0}};
  spec.behavior.duration = {sim::Millis{1000}, sim::Millis{1000}};
  sim::ProjectSpec p;
  p.name = "Demo";
  for (int i = 0; i < groups; ++i)
    p.groups.push_back({.name = fmt::format("G{}", i), .devices = devices_each});
  spec.projects.push_back(p);
  return spec;
}

struct EngineRun {
  double total_ms = 0, api_ms = 0, store_ms = 0;
  int calls = 0, polls = 0, pages = 0, store_calls = 0, store_writes = 0;
};

EngineRun run_engine(const std::string& text, const sim::FleetSpec& spec, state::StateStore& store,
                     const std::string& run_id) {
  auto loaded = plan::load_plan(text);
  auto graph = dag::build(*loaded.plan, loaded.diagnostics);
  const WallTime start = WallTime(std::chrono::hours(24 * 365 * 50));
  sim::Fleet fleet(spec, std::chrono::duration_cast<sim::Millis>(start.time_since_epoch()));
  engine::create_run(store, *loaded.plan, {"big.yaml", text, "bench", "bench", "fake"}, run_id,
                     start);
  asio::io_context io;
  ManualClock clock(io, start);
  test::FakeFleet fake(io, fleet, clock);
  TimedFleet timed(fake);
  Quiet quiet;
  engine::EngineOptions options;
  options.owner = {"bench", 1, "bench"};
  TimedStore timed_store(store);
  engine::Engine e(io, *loaded.plan, *graph, timed, timed_store, clock, quiet, run_id, options);
  std::optional<engine::Outcome> outcome;
  const auto t = Steady::now();
  e.start([&](engine::Outcome o) { outcome = o; });
  run_on_manual_clock(io, clock, [&] { return outcome.has_value(); });
  EngineRun r;
  r.total_ms = ms_since(t);
  r.api_ms = timed.api_ms;
  r.calls = timed.calls;
  r.store_ms = timed_store.store_ms;
  r.store_calls = timed_store.calls;
  r.store_writes = timed_store.writes;
  r.polls = static_cast<int>(store.load_observations(run_id).size());
  if (!outcome || outcome->ending != engine::Ending::completed) std::abort();
  return r;
}

// A state to start from: ":memory:", a SQLite file (removed first), or a PostgreSQL
// database (run.sh makes each one new).
std::unique_ptr<store::SqlStore> fresh_state(const std::string& where) {
  if (where != ":memory:" && !store::is_postgres_url(where)) {
    std::filesystem::remove(where);
    std::filesystem::remove(where + "-wal");
  }
  return store::open_state(where, true);
}

const char* backend_of(const std::string& where) {
  return where == ":memory:" ? "memory" : store::is_postgres_url(where) ? "postgresql" : "file";
}

int engine_overhead(int stages, const std::string& db_path, int rounds) {
  const std::string text = big_plan(stages, "0s");
  std::vector<double> per_stage_us, logic_us;
  EngineRun r;
  for (int round = 0; round < rounds; ++round) {
    auto store = fresh_state(db_path);  // a PostgreSQL database keeps earlier rounds' runs
    r = run_engine(text, one_device_per_group(stages), *store, fmt::format("r-bench-{}", round));
    per_stage_us.push_back((r.total_ms - r.api_ms) * 1000.0 / stages);
    logic_us.push_back((r.total_ms - r.api_ms - r.store_ms) * 1000.0 / stages);
  }
  const Spread engine = spread(per_stage_us), logic = spread(logic_us);
  std::cout << fmt::format(R"({{"bench":"engine_overhead","stages":{},"store":"{}","rounds":{},)"
                           R"("total_ms":{:.1f},"fake_api_ms":{:.1f},"api_calls":{},)"
                           R"("engine_us_per_stage":{:.1f},"engine_median_us_per_stage":{:.1f},)"
                           R"("store_ms":{:.1f},"store_calls":{},"store_writes":{},)"
                           R"("writes_per_stage":{:.1f},"logic_us_per_stage":{:.1f}}})",
                           stages, backend_of(db_path), rounds, r.total_ms, r.api_ms, r.calls,
                           engine.min, engine.median, r.store_ms, r.store_calls, r.store_writes,
                           static_cast<double>(r.store_writes) / stages, logic.min)
            << "\n";
  return 0;
}

// Per-device dispatch: a sample of `devices` over the simulator's fleet (a loopback HTTP
// server), through the real client with the rate limit lifted, the state at `db_path`:
// deploy_update calls per second from the snapshot to the gate.
int dispatch(const std::string& url, int devices, const std::string& db_path) {
  const std::string text = fmt::format(
      "version: 1\nname: dispatch\nflow_id: 73a7-1ft8\nproject: Demo\n"
      "app: {{name: default_app, version: v2.4}}\n"
      "defaults:\n  gate: {{bake: 0s, timeout: 1h, poll: 1m, min_success: 0%, max_failed: "
      "100%}}\nstages:\n  - {{name: wave, groups: [EU-North, EU-South, US], sample: {{count: "
      "{}}}}}\n",
      devices);
  auto loaded = plan::load_plan(text);
  auto graph = dag::build(*loaded.plan, loaded.diagnostics);
  if (!graph || loaded.diagnostics.has_errors()) std::abort();
  auto owned = fresh_state(db_path);
  store::SqlStore& store = *owned;
  const std::string run_id = "r-dispatch";
  engine::create_run(store, *loaded.plan, {"dispatch.yaml", text, "bench", "bench", url}, run_id,
                     std::chrono::system_clock::now());
  engine::EngineOptions options;
  options.owner = {"bench", 1, "bench"};
  if (store.acquire_lease(run_id, options.owner, std::chrono::system_clock::now(), Millis{30000}))
    std::abort();
  asio::io_context io;
  client::UpswiftClient api(io, unlimited(url));
  api.set_send_guard([&] { return store.check_lease(run_id); });  // as `rollout apply` does
  AsioClock clock(io, 1);
  struct Watch : engine::Observer {
    std::optional<Steady::time_point> listed, gating;
    void on_event(const state::Event&) override {}
    void on_snapshot(const std::string&, std::size_t) override { listed = Steady::now(); }
    void on_stage(const state::StageRecord& r, WallTime) override {
      if (r.status == state::StageStatus::gating && !gating) gating = Steady::now();
    }
  } watch;
  engine::Engine e(io, *loaded.plan, *graph, api, store, clock, watch, run_id, options);
  std::optional<engine::Outcome> outcome;
  e.start([&](engine::Outcome o) {
    outcome = o;
    io.stop();
  });
  io.run();
  const auto calls = store.load_calls(run_id);
  long accepted = 0;
  for (const auto& c : calls) accepted += c.outcome == state::CallOutcome::accepted ? 1 : 0;
  if (!outcome || !watch.listed || !watch.gating || accepted != devices) {
    std::cerr << fmt::format("dispatch: {} of {} accepted, {}\n", accepted, devices,
                             outcome ? outcome->reason : "no outcome");
    return 1;
  }
  const double seconds = std::chrono::duration<double>(*watch.gating - *watch.listed).count();
  std::cout << fmt::format(R"({{"bench":"dispatch","devices":{},"store":"{}","seconds":{:.3f},)"
                           R"("dispatches_per_second":{:.0f}}})",
                           devices, backend_of(db_path), seconds, devices / seconds)
            << "\n";
  return 0;
}

// One rehearsal at a time with the fleet file's seed (as `rollout rehearse` runs it), `rounds`
// times: the cost of one.
int rehearse(const std::string& plan_path, const std::string& fleet_path, int rounds) {
  const auto read = [](const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  };
  auto loaded = plan::load_plan(read(plan_path));
  auto graph = dag::build(*loaded.plan, loaded.diagnostics);
  auto fleet = sim::load_fleet(read(fleet_path));
  if (!graph || loaded.diagnostics.has_errors() || !fleet.spec) std::abort();
  rehearsal::Options options;
  options.start = std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now());
  std::vector<double> ms;
  for (int i = 0; i < rounds; ++i) {
    const auto t = Steady::now();
    const auto r =
        rehearsal::rehearse(*loaded.plan, *graph, *fleet.spec, fleet.spec->seed, options);
    ms.push_back(ms_since(t));
    if (r.details_calls == 0) std::abort();
  }
  const Spread one = spread(ms);
  std::cout << fmt::format(R"({{"bench":"rehearse","rounds":{},"ms":{:.0f},"median_ms":{:.0f}}})",
                           rounds, one.min, one.median)
            << "\n";
  return 0;
}

int api_economy(int devices) {
  const std::string text =
      "version: 1\nname: eco\nflow_id: f\nproject: Demo\ndefaults:\n  gate: {bake: 10m, timeout: "
      "1h, poll: 1m}\n"
      "stages:\n  - {name: a, groups: [G0]}\n";
  store::SqliteStore store(":memory:");
  const EngineRun r = run_engine(text, one_device_per_group(1, devices), store, "r-eco");
  const int pages = (devices + 49) / 50;
  // Polls that found updates under way also read the devices' online states (lost devices).
  int under_way = 0;
  for (const auto& o : store.load_observations("r-eco")) under_way += o.in_progress > 0;
  // The minimum: one listing for the snapshot, one deploy_update, one listing per poll, and
  // one listing of online states per poll with updates under way.
  const int minimum = pages + 1 + r.polls * pages + under_way * pages;
  std::cout << fmt::format(
                   R"({{"bench":"api_economy","devices":{},"pages_per_listing":{},"polls":{},)"
                   R"("polls_under_way":{},"api_calls":{},"minimum":{},"ratio":{:.2f}}})",
                   devices, pages, r.polls, under_way, r.calls, minimum,
                   static_cast<double>(r.calls) / minimum)
            << "\n";
  return r.calls == minimum ? 0 : 1;
}

int resume(int events, const std::string& db_path) {
  const std::string text = big_plan(10, "0s");
  auto loaded = plan::load_plan(text);
  {
    auto owned = fresh_state(db_path);
    store::SqlStore& store = *owned;
    const WallTime t0 = WallTime(std::chrono::hours(24 * 365 * 50));
    engine::create_run(store, *loaded.plan, {"big.yaml", text, "bench", "bench", "fake"},
                       "r-resume", t0);
    store.set_run_status("r-resume", state::RunStatus::interrupted, "bench", t0, false);
    for (int i = 0; i < events; ++i)
      store.add_event(
          {0, "r-resume", t0, "s0", state::EventKind::snapshot, "an event of the past"});
  }
  // Time from opening the database to the engine's first API call of the resumed run.
  const auto t = Steady::now();
  auto owned = store::open_state(db_path, false);
  store::SqlStore& store = *owned;
  auto run = store.load_run("r-resume");
  auto reloaded = plan::load_plan(run->plan_text);
  auto graph = dag::build(*reloaded.plan, reloaded.diagnostics);
  asio::io_context io;
  ManualClock clock(io, WallTime(std::chrono::hours(24 * 365 * 50)));
  sim::Fleet fleet(one_device_per_group(10),
                   std::chrono::duration_cast<sim::Millis>(clock.now().time_since_epoch()));
  test::FakeFleet fake(io, fleet, clock);
  Quiet quiet;
  engine::EngineOptions options;
  options.owner = {"bench", 1, "bench"};
  engine::Engine e(io, *reloaded.plan, *graph, fake, store, clock, quiet, "r-resume", options);
  e.start([](engine::Outcome) {});
  while (fake.reads == 0 && io.run_one() > 0) {
  }
  const double resume_ms = ms_since(t);
  // The baseline: opening the same database and counting its events.
  const double count_ms = median_ms(3, [&] {
    auto s = store::open_state(db_path, false);
    (void)s->load_run("r-resume");
  });
  std::cout
      << fmt::format(
             R"({{"bench":"resume","events":{},"store":"{}","resume_to_first_call_ms":{:.1f},"open_and_read_run_ms":{:.1f}}})",
             events, backend_of(db_path), resume_ms, count_ms)
      << "\n";
  return 0;
}

int memory(const std::string& url, int devices) {
  const long before = peak_rss_kib();
  const std::string text =
      "version: 1\nname: mem\nflow_id: f\nproject: Mem\ndefaults:\n  gate: {bake: 0s, timeout: 1h, "
      "poll: 1m, min_success: 0%, max_failed: 100%}\n"
      "stages:\n  - {name: all, groups: [All]}\n";
  auto loaded = plan::load_plan(text);
  auto graph = dag::build(*loaded.plan, loaded.diagnostics);
  store::SqliteStore store(":memory:");
  engine::create_run(store, *loaded.plan, {"mem.yaml", text, "bench", "bench", url}, "r-mem",
                     std::chrono::system_clock::now());
  asio::io_context io;
  client::UpswiftClient api(io, unlimited(url));
  AsioClock clock(io, 600);
  Quiet quiet;
  engine::EngineOptions options;
  options.owner = {"bench", 1, "bench"};
  engine::Engine e(io, *loaded.plan, *graph, api, store, clock, quiet, "r-mem", options);
  std::optional<engine::Outcome> outcome;
  const auto t = Steady::now();
  e.start([&](engine::Outcome o) {
    outcome = o;
    io.stop();
  });
  io.run();
  const long peak = peak_rss_kib();  // before reading the snapshot back to count it
  const auto snapshot = store.load_snapshot("r-mem", "all");
  std::cout
      << fmt::format(
             R"({{"bench":"memory","devices":{},"tracked":{},"outcome":"{}","seconds":{:.1f},)"
             R"("peak_rss_mib":{:.1f},"rss_before_mib":{:.1f}}})",
             devices, snapshot ? snapshot->size() : 0,
             outcome ? engine::name(outcome->ending) : "none", ms_since(t) / 1000, peak / 1024.0,
             before / 1024.0)
      << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 3 && a[0] == "plan-load") return plan_load(std::stoi(a[1]), std::stoi(a[2]));
  if (a.size() == 4 && a[0] == "client")
    return client_throughput(a[1], std::stoi(a[2]), std::stoi(a[3]));
  if (a.size() == 4 && a[0] == "engine")
    return engine_overhead(std::stoi(a[1]), a[2], std::stoi(a[3]));
  if (a.size() == 4 && a[0] == "dispatch") return dispatch(a[1], std::stoi(a[2]), a[3]);
  if (a.size() == 4 && a[0] == "rehearse") return rehearse(a[1], a[2], std::stoi(a[3]));
  if (a.size() == 2 && a[0] == "economy") return api_economy(std::stoi(a[1]));
  if (a.size() == 3 && a[0] == "page-read") return page_read(a[1], std::stoi(a[2]));
  if (a.size() == 3 && a[0] == "resume") return resume(std::stoi(a[1]), a[2]);
  if (a.size() == 3 && a[0] == "memory") return memory(a[1], std::stoi(a[2]));
  std::cerr << "usage: rollout_bench plan-load N ROUNDS | client URL CONCURRENCY TOTAL |\n"
               "       engine STAGES DB|:memory: ROUNDS | dispatch URL DEVICES DB |\n"
               "       rehearse PLAN FLEET ROUNDS | economy DEVICES | resume EVENTS DB |\n"
               "       memory URL DEVICES | page-read FLEET ROUNDS\n"
               "DB: a SQLite path, :memory: or postgresql://USER@HOST:PORT/DB\n";
  return 2;
}
