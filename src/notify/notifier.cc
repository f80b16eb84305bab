#include "notify/notifier.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "util/time_text.h"

namespace rollout::notify {

namespace {

// The host of a webhook's URL, for the records: its path may be a secret (Slack's is).
std::string host_of(const std::string& url) {
  const auto start = url.find("://");
  const std::size_t from = start == std::string::npos ? 0 : start + 3;
  const auto end = url.find('/', from);
  return url.substr(from, end == std::string::npos ? std::string::npos : end - from);
}

}  // namespace

std::string body(const Milestone& m, plan::Webhook::Format format) {
  if (format == plan::Webhook::Format::slack) {
    const std::string what = m.stage.empty() ? m.event : fmt::format("{} {}", m.event, m.stage);
    return nlohmann::ordered_json{
        {"text", fmt::format("rollout {} ({}): {}: {}", m.run_id, m.plan, what, m.message)}}
        .dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  }
  return nlohmann::ordered_json{{"event", m.event},
                                {"run", m.run_id},
                                {"plan", m.plan},
                                {"stage", m.stage.empty() ? nlohmann::ordered_json(nullptr)
                                                          : nlohmann::ordered_json(m.stage)},
                                {"time", iso_time(m.at)},
                                {"message", m.message}}
      .dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::optional<std::string> stage_milestone(state::StageStatus status) {
  using state::StageStatus;
  switch (status) {
    case StageStatus::gating:
      return "stage_dispatched";
    case StageStatus::passed:
      return "stage_passed";
    case StageStatus::failed:
    case StageStatus::rolling_back:
      return "stage_failed";
    case StageStatus::rolled_back:
      return "rolled_back";
    case StageStatus::rollback_failed:
      return "rollback_failed";
    case StageStatus::awaiting_approval:
    case StageStatus::paused:
      return "approval_needed";
    default:
      return std::nullopt;
  }
}

std::optional<std::string> run_milestone(state::RunStatus status) {
  using state::RunStatus;
  switch (status) {
    case RunStatus::completed:
      return "run_completed";
    case RunStatus::paused:
      return "run_paused";
    case RunStatus::stopped:
    case RunStatus::failed:
    case RunStatus::aborted:
      return "run_failed";
    default:
      return std::nullopt;
  }
}

struct Notifier::Hook {
  int index = 0;
  plan::Webhook spec;
  std::deque<Milestone> queue;
  bool sending = false;
};

Notifier::Notifier(http::Sender& sender, Clock& clock, state::StateStore& store,
                   const plan::Plan& plan, std::string run_id, Retry retry)
    : sender_(sender),
      clock_(clock),
      store_(store),
      plan_(plan),
      run_id_(std::move(run_id)),
      retry_(retry),
      alive_(std::make_shared<bool>(true)) {
  for (std::size_t i = 0; i < plan.notify.size(); ++i) {
    auto hook = std::make_unique<Hook>();
    hook->index = static_cast<int>(i) + 1;
    hook->spec = plan.notify[i];
    hooks_.push_back(std::move(hook));
  }
}

Notifier::~Notifier() {
  *alive_ = false;
}

void Notifier::run_started(WallTime at, bool resumed) {
  enqueue(
      {"run_started", run_id_, plan_.name, "", at, resumed ? "the run resumes" : "the run starts"});
}

void Notifier::on_run(state::RunStatus status, const std::string& reason, WallTime at) {
  if (auto m = run_milestone(status)) enqueue({*m, run_id_, plan_.name, "", at, reason});
}

void Notifier::on_event(const state::Event& e) {
  if (e.kind == state::EventKind::device_lost || e.kind == state::EventKind::abort_criteria)
    enqueue({std::string(state::name(e.kind)), run_id_, plan_.name, e.stage, e.at, e.message});
}

void Notifier::on_stage(const state::StageRecord& r, WallTime changed_at) {
  auto [last, first] = last_status_.try_emplace(r.name, r.status);
  if (!first && last->second == r.status) return;
  last->second = r.status;
  if (auto m = stage_milestone(r.status)) {
    const WallTime at =
        r.finished_at.value_or(r.dispatched_at.value_or(r.started_at.value_or(changed_at)));
    enqueue({*m, run_id_, plan_.name, r.name, at, r.reason});
  }
}

bool Notifier::idle() const {
  return std::all_of(hooks_.begin(), hooks_.end(),
                     [](const auto& h) { return !h->sending && h->queue.empty(); });
}

void Notifier::enqueue(const Milestone& m) {
  for (auto& hook : hooks_) {
    const auto& wanted = hook->spec.events;
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), m.event) == wanted.end())
      continue;
    hook->queue.push_back(m);
    if (!hook->sending) pump(*hook);
  }
}

// Sends the hook's oldest milestone, retrying with a doubling wait; the next one goes
// only when this one is delivered or given up, so that the receiver sees them in order.
void Notifier::pump(Hook& hook) {
  if (hook.queue.empty()) {
    hook.sending = false;
    return;
  }
  hook.sending = true;
  attempt(hook, 1, retry_.first_wait);
}

void Notifier::attempt(Hook& hook, int number, std::chrono::milliseconds wait) {
  http::Request request;
  request.method = "POST";
  request.url = hook.spec.url;
  request.body = body(hook.queue.front(), hook.spec.format);
  request.timeout = retry_.timeout;
  request.connect_timeout = std::min(retry_.timeout, std::chrono::milliseconds(3000));
  sender_.send(request, [this, &hook, number, wait,
                         alive = std::weak_ptr<bool>(alive_)](http::Response r) {
    if (alive.expired() || !hook.sending) return;  // abandoned meanwhile
    const bool delivered = r.transport == http::Transport::ok && r.status >= 200 && r.status < 300;
    const std::string why =
        r.transport == http::Transport::ok ? fmt::format("HTTP {}", r.status) : r.error;
    if (delivered || number >= retry_.attempts) {
      record(hook, hook.queue.front(),
             delivered ? fmt::format("delivered ({}) on attempt {}", why, number)
                       : fmt::format("not delivered after {} attempts: {}", number, why));
      hook.queue.pop_front();
      pump(hook);
      return;
    }
    clock_.schedule(wait, [this, &hook, number, wait, alive] {
      if (alive.expired() || !hook.sending) return;
      attempt(hook, number + 1, wait * 2);
    });
  });
}

void Notifier::record(const Hook& hook, const Milestone& m, const std::string& outcome) {
  store_.add_event({0, run_id_, std::max(m.at, clock_.now()), m.stage, state::EventKind::notify,
                    fmt::format("webhook {} ({}) {}: {}", hook.index, host_of(hook.spec.url),
                                m.event, outcome)});
}

void Notifier::abandon_pending() {
  for (auto& hook : hooks_) {
    for (const Milestone& m : hook->queue)
      record(*hook, m, "abandoned: the run's process ended first");
    hook->queue.clear();
    hook->sending = false;
  }
}

}  // namespace rollout::notify
