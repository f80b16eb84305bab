// rollout status RUN [--watch]: where a run is now, read from the state database, so it
// works from another terminal (or machine sharing the file) while the run goes on.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/console.h"
#include "cli/exit_codes.h"
#include "cli/review.h"
#include "cli/session.h"
#include "util/duration.h"
#include "view/text.h"

namespace rollout::cli {

namespace {

struct StatusOptions {
  std::string run_id = "last";
  StateOptions state;
  bool watch = false;
  std::string interval = "2s";
  std::string output = "text";
};

using Json = nlohmann::ordered_json;

// The exit code `apply` gives for a run that ended this way.
int exit_code_for(state::RunStatus status) {
  using state::RunStatus;
  switch (status) {
    case RunStatus::completed:
    case RunStatus::running:
      return kExitOk;
    case RunStatus::stopped:
    case RunStatus::aborted:
      return kExitStopped;
    case RunStatus::paused:
      return kExitPaused;
    case RunStatus::interrupted:
      return kExitInterrupted;
    case RunStatus::failed:
      return kExitError;
  }
  return kExitError;
}

// The latest moment the database knows of: a time-scaled simulated run lives ahead of
// the wall clock, and its elapsed times must not go backwards.
WallTime view_now(const view::RunProgress& p, const state::RunRecord& run) {
  WallTime now = std::max(std::chrono::system_clock::now(), run.updated_at);
  for (const auto& e : p.recent) now = std::max(now, e.at);
  for (const auto& s : p.stages) {
    if (s.last) now = std::max(now, s.last->at);
  }
  return now;
}

// A run still shown as running has a live owner (show_if_gone turned the others into
// `interrupted`, with how to continue in their reason).
std::string lease_line(state::StateStore& store, const state::RunRecord& run) {
  if (run.status != state::RunStatus::running) return {};
  auto lease = store.lease(run.id);
  if (!lease) return {};
  const auto age =
      std::chrono::duration_cast<Seconds>(std::chrono::system_clock::now() - lease->heartbeat_at);
  return fmt::format("run by {}@{} (pid {}), last heartbeat {} ago", lease->owner.user,
                     lease->owner.host, lease->owner.pid,
                     format_duration(std::max(age, Seconds{0})));
}

Json progress_json(const view::RunProgress& p, const plan::Plan& plan, WallTime now,
                   const std::vector<state::DeviceState>& devices) {
  Json stages = Json::array();
  const auto waiting = view::waiting_for(plan, p, now);
  for (std::size_t i = 0; i < p.stages.size(); ++i) {
    const view::StageProgress& s = p.stages[i];
    Json not_succeeded = Json::array();
    for (const auto& d : devices) {
      if (d.stage == s.record.name && d.status &&
          (*d.status != state::DeviceStatus::success || d.lost_at))
        not_succeeded.push_back(
            {{"uuid", d.uuid}, {"name", d.name}, {"status", shown_device_status(d)}});
    }
    Json j{{"stage", s.record.name},
           {"status", s.record.status},
           {"reason", s.record.reason},
           {"devices", s.devices ? Json(*s.devices) : Json(nullptr)},
           {"started", optional_time(s.record.started_at)},
           {"dispatched", optional_time(s.record.dispatched_at)},
           {"finished", optional_time(s.record.finished_at)},
           {"waiting_for", waiting[i]},
           {"not_succeeded", not_succeeded}};
    if (s.last) {
      j["counts"] = {{"pending", s.last->pending}, {"in_progress", s.last->in_progress},
                     {"success", s.last->success}, {"failed", s.last->failed},
                     {"aborted", s.last->aborted}, {"missing", s.last->missing},
                     {"lost", s.last->lost}};
      j["gate"] = {{"verdict", s.last->verdict}, {"reason", s.last->reason}};
    }
    stages.push_back(j);
  }
  return {{"type", "status"},   {"time", iso_time(now)}, {"run", p.run_id},
          {"status", p.status}, {"reason", p.reason},    {"stages", stages}};
}

// What changed since the last look, for --watch off a terminal: not the clocks.
std::string change_key(const view::RunProgress& p) {
  std::string key(state::name(p.status));
  for (const auto& s : p.stages) {
    key += fmt::format("|{}", state::name(s.record.status));
    if (s.last)
      key += fmt::format(":{}/{}/{}/{}/{}", s.last->success, s.last->failed, s.last->in_progress,
                         s.last->pending, state::name(s.last->verdict));
  }
  return key;
}

int run_status(const StatusOptions& o) {
  std::string why;
  auto interval = parse_duration(o.interval, &why);
  if (!interval || interval->count() < 1) {
    std::cerr << fmt::format("rollout: --interval '{}': {}\n", o.interval,
                             interval ? "must be at least 1s" : why);
    return kExitInvalidInput;
  }
  auto opened = open_run(o.state, o.run_id);
  if (!opened.plan) return kExitError;
  auto& store = opened.store;
  auto run = std::optional<state::RunRecord>(opened.run);
  const plan::Plan* plan = &opened.plan->plan;
  const bool tty = isatty(STDOUT_FILENO) != 0;
  const char* no_color = std::getenv("NO_COLOR");
  const bool color = tty && !(no_color && *no_color);
  const bool redraw = o.watch && color;  // in place, on a terminal
  int drawn = 0;
  std::string last_key;
  for (;;) {
    const state::RunHistory history = load_history(*store, run->id);
    view::RunProgress p = progress_of(*run, history);
    const WallTime now = view_now(p, *run);
    const auto& devices = history.device_states;
    if (o.output == "json") {
      if (!o.watch || change_key(p) != last_key)
        std::cout << progress_json(p, *plan, now, devices)
                         .dump(-1, ' ', false, Json::error_handler_t::replace)
                  << "\n"
                  << std::flush;
    } else if (!o.watch || redraw || change_key(p) != last_key) {
      view::Style style;
      style.width = terminal_width();
      style.color = color;
      style.all_stages = true;
      std::vector<std::string> lines = view::render(*plan, p, now, style);
      if (!p.reason.empty()) lines.push_back(view::fit("  " + p.reason, style.width));
      // Which devices hold a stage back, or made it fail: the first few of each kind.
      for (const auto& s : p.stages) {
        if (s.record.status == state::StageStatus::waiting) continue;
        if (std::string names = not_succeeded(devices, s.record.name); !names.empty())
          lines.push_back(view::fit(fmt::format("  {}: {}", s.record.name, names), style.width));
      }
      if (std::string lease = lease_line(*store, *run); !lease.empty())
        lines.push_back(view::fit("  " + lease, style.width));
      lines.push_back("recent events:");
      for (const auto& e : p.recent) {
        lines.push_back(view::fit(fmt::format("  {}  {:<12} {}: {}", local_time(e.at).substr(11),
                                              e.stage.empty() ? "run" : e.stage, e.kind, e.message),
                                  style.width));
      }
      if (redraw) std::cout << view::erase_lines_above(drawn);
      if (o.watch && !redraw) std::cout << "--- " << local_time(now) << "\n";
      for (const auto& line : lines) std::cout << line << "\n";
      std::cout << std::flush;
      drawn = static_cast<int>(lines.size());
    }
    last_key = change_key(p);
    if (!o.watch || p.status != state::RunStatus::running)
      return o.watch ? exit_code_for(p.status) : kExitOk;
    std::this_thread::sleep_for(*interval);
    run = store->load_run(run->id);
    if (!run) return kExitError;
    show_if_gone(*store, *run);
  }
}

}  // namespace

void add_status_command(CLI::App& app, Run& run) {
  auto o = std::make_shared<StatusOptions>();
  CLI::App* cmd = app.add_subcommand(
      "status",
      "Where a run is now: each stage's status, device counts and what it waits for. Reads the "
      "state database, so it works from another terminal while the run goes on.");
  cmd->add_option("run", o->run_id, "Run id, or 'last'")->capture_default_str();
  add_state_option(cmd, o->state.state_path);
  cmd->add_flag("--watch,-w", o->watch,
                "Keep watching until the run stops running; then exit with the code `apply` "
                "would have given (0 completed, 3 stopped, 4 paused, 130 interrupted)");
  cmd->add_option("--interval", o->interval, "How often --watch reads the database")
      ->capture_default_str();
  cmd->add_option("--output", o->output,
                  "text, or json: one JSON object (with --watch, one per change)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->callback([o, &run] { run = [o] { return run_status(*o); }; });
}

}  // namespace rollout::cli
