#include "runner/runner.h"

#include <signal.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "http/curl_client.h"
#include "notify/notifier.h"
#include "runner/error.h"
#include "runner/lease.h"
#include "util/asio_clock.h"
#include "util/safe_text.h"

namespace rollout::runner {

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
    throw RunError(RunError::Kind::input,
                   fmt::format("ROLLOUT_TEST_CRASH_AT names '{}', which is not a crash point; "
                               "the engine's are: {}",
                               text, fmt::join(engine::kCrashPoints, ", ")));
  }
  auto count = std::make_shared<int>(0);
  return [text, nth, count](std::string_view point) {
    if (point == text && ++*count == nth) ::raise(SIGKILL);
  };
}

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

// A second SIGINT or SIGTERM: the process ends at once, as one stopped by a signal does.
constexpr int kInterruptedExitCode = 130;

}  // namespace

void check_test_hooks() {
  crash_hook_from_env();
}

struct Runner::Impl {
  Impl(state::StateStore& s, const std::string& state, const state::RunRecord& r,
       const plan::Plan& p, const dag::Graph& g, const ApiOptions& given)
      : store(s), run(r), plan(p), graph(g), api(run_api_options(s, state, r, given)) {
    try {
      connection = ApiConnection::open(io, plan, run.api_url, api);
    } catch (const RunError&) {
      // Nothing was sent: the run is left as it was, for the next process at once.
      store.release_lease(run.id, this_process());
      throw;
    }
    clock.emplace(io, api.time_scale, connection->start());
  }

  engine::Outcome drive(engine::Observer& output, bool resumed);

  state::StateStore& store;
  const state::RunRecord run;
  const plan::Plan& plan;
  const dag::Graph& graph;
  const ApiOptions api;
  asio::io_context io;
  std::unique_ptr<ApiConnection> connection;
  std::optional<AsioClock> clock;
};

Runner::Runner(state::StateStore& store, const std::string& state, const state::RunRecord& run,
               const plan::Plan& plan, const dag::Graph& graph, const ApiOptions& api)
    : impl_(std::make_unique<Impl>(store, state, run, plan, graph, api)) {}

Runner::~Runner() = default;

asio::io_context& Runner::io() {
  return impl_->io;
}

const Clock& Runner::clock() const {
  return *impl_->clock;
}

engine::Outcome Runner::run(engine::Observer& output, bool resumed) {
  return impl_->drive(output, resumed);
}

engine::Outcome Runner::Impl::drive(engine::Observer& output, bool resumed) {
  AsioClock& clock = *this->clock;
  // The last word before a deploy_update leaves, after any wait for the rate limit: does
  // this process still hold the run? A process frozen past its lease (SIGSTOP, a laptop
  // lid, a paused VM) whose run was taken over finds out here and sends nothing.
  connection->client().set_send_guard([this] { return store.check_lease(run.id); });
  connection->client().set_retry_notice([&](const client::UpswiftClient::RetryNotice& n) {
    output.on_event({0, run.id, clock.now(), "", state::EventKind::api_retry, describe_retry(n)});
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
  ObserverPair observers(output, notifier ? &*notifier : nullptr);
  engine::Engine engine(io, plan, graph, connection->api(), store, clock, observers, run.id,
                        options);

  NewsWatch news(io, store, run.id, [&engine] { engine.wake(); });

  asio::signal_set signals(io, SIGINT, SIGTERM);
  bool signalled = false;
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        if (engine.finished()) return;
        if (signalled) std::_Exit(kInterruptedExitCode);
        signalled = true;
        engine.interrupt();
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);

  std::optional<engine::Outcome> outcome;
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
    // The caller says it. The run is recorded as failed, resumable, where the store still
    // takes a write (a full disk may have room for one more small one); otherwise its lease
    // goes stale and it shows as interrupted.
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
  if (!outcome) throw std::logic_error("the run's loop stopped before its engine had ended");
  return *outcome;
}

}  // namespace rollout::runner
