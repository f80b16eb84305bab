#include "view/progress.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "engine/gate.h"
#include "engine/start_planner.h"
#include "plan/calendar.h"
#include "view/text.h"

namespace rollout::view {

namespace {

using state::RunStatus;
using state::StageStatus;

bool terminal(StageStatus status) {
  return state::is_terminal(status);
}

// Shown by the live progress: under way, or waiting for a person or a rollback.
bool active(StageStatus status) {
  return !terminal(status) && status != StageStatus::waiting;
}

const plan::Stage* find_stage(const plan::Plan& plan, const std::string& name) {
  for (const auto& s : plan.stages) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

StageProgress* find(RunProgress& p, const std::string& name) {
  for (auto& s : p.stages) {
    if (s.record.name == name) return &s;
  }
  return nullptr;
}

constexpr const char* kGreen = "\x1b[32m";
constexpr const char* kRed = "\x1b[31m";
constexpr const char* kYellow = "\x1b[33m";
constexpr const char* kDim = "\x1b[2m";
constexpr const char* kBold = "\x1b[1m";
constexpr const char* kReset = "\x1b[0m";

std::string paint(const std::string& text, const char* code, bool color) {
  return color ? std::string(code) + text + kReset : text;
}

const char* status_color(StageStatus status) {
  switch (status) {
    case StageStatus::passed:
      return kGreen;
    case StageStatus::failed:
    case StageStatus::rolled_back:
    case StageStatus::rolling_back:
    case StageStatus::rollback_failed:
      return kRed;
    case StageStatus::waiting:
    case StageStatus::stopped:
      return kDim;
    default:
      return kYellow;
  }
}

const char* status_color(RunStatus status) {
  switch (status) {
    case RunStatus::completed:
      return kGreen;
    case RunStatus::stopped:
    case RunStatus::aborted:
    case RunStatus::failed:
      return kRed;
    default:
      return kYellow;
  }
}

}  // namespace

bool skipped(const state::StageRecord& stage) {
  return stage.status == StageStatus::passed && stage.reason.starts_with(state::kSkippedReason);
}

std::string shown_status(const state::StageRecord& stage) {
  if (skipped(stage)) return "skipped";
  return std::string(state::name(stage.status));
}

RunProgress build_progress(const state::RunRecord& run,
                           const std::vector<state::StageRecord>& stages,
                           const std::map<std::string, std::int64_t>& devices,
                           const std::vector<state::Observation>& observations,
                           const std::vector<state::Event>& events, std::size_t recent_events) {
  RunProgress p;
  p.run_id = run.id;
  p.status = run.status;
  p.reason = run.reason;
  p.started = run.created_at;
  p.finished = run.finished_at;
  for (const auto& r : stages) {
    StageProgress s;
    s.record = r;
    if (auto it = devices.find(r.name); it != devices.end()) s.devices = it->second;
    p.stages.push_back(std::move(s));
  }
  for (const auto& o : observations) apply(p, o);
  const std::size_t from = events.size() > recent_events ? events.size() - recent_events : 0;
  p.recent.assign(events.begin() + static_cast<std::ptrdiff_t>(from), events.end());
  return p;
}

void apply(RunProgress& p, const state::StageRecord& stage) {
  if (StageProgress* s = find(p, stage.name)) s->record = stage;
}

void apply(RunProgress& p, const state::Observation& o) {
  if (StageProgress* s = find(p, o.stage)) {
    s->last = o;
    s->devices = o.targeted;
  }
}

void apply(RunProgress& p, const state::Event& e, std::size_t recent_events) {
  if (e.kind == state::EventKind::pause) p.paused = true;
  if (e.kind == state::EventKind::pause_lifted) p.paused = false;
  p.recent.push_back(e);
  if (p.recent.size() > recent_events) p.recent.erase(p.recent.begin());
}

void apply(RunProgress& p, state::RunStatus status, const std::string& reason) {
  p.status = status;
  p.reason = reason;
}

void apply_snapshot(RunProgress& p, const std::string& stage, std::int64_t devices) {
  if (StageProgress* s = find(p, stage)) s->devices = devices;
}

std::string gate_condition(const plan::Gate& gate, std::optional<std::int64_t> targeted) {
  std::string text = engine::describe_thresholds(gate, targeted, /*with_lost=*/false);
  if (gate.bake.count() > 0) text += ", bake " + format_duration(gate.bake);
  return text;
}

namespace {

std::vector<std::string> open_needs(const plan::Stage& spec, const RunProgress& run) {
  std::vector<std::string> open;
  for (const auto& need : spec.needs) {
    for (const auto& other : run.stages) {
      if (other.record.name == need.name && other.record.status != StageStatus::passed)
        open.push_back(need.name);
    }
  }
  return open;
}

// What the start planner says of each stage (run.stages order; nullptr where it says
// nothing), asked as the engine asks it, from what the records say.
std::vector<std::optional<engine::StartDecision>> start_decisions(const plan::Plan& plan,
                                                                  const RunProgress& run,
                                                                  WallTime now) {
  engine::StartInput in;
  in.now = now;
  in.max_parallel = plan.max_parallel.value_or(static_cast<int>(plan.stages.size()));
  in.run_paused = run.paused;
  in.approvals = run.approvals;
  std::vector<std::size_t> position;  // in.in_play[k] is run.stages[position[k]]
  for (std::size_t i = 0; i < run.stages.size(); ++i) {
    const StageProgress& s = run.stages[i];
    const plan::Stage* spec = find_stage(plan, s.record.name);
    if (!spec || s.record.status == StageStatus::passed) continue;
    in.in_play.push_back({i, spec, &s.record, open_needs(*spec, run).empty(), false});
    position.push_back(i);
  }
  std::vector<std::optional<engine::StartDecision>> out(run.stages.size());
  const engine::StartPlan starts = engine::plan_starts(in);
  for (std::size_t k = 0; k < starts.decisions.size(); ++k) out[position[k]] = starts.decisions[k];
  return out;
}

std::string waiting_for(const plan::Plan& plan, const RunProgress& run, const StageProgress& s,
                        const std::optional<engine::StartDecision>& d, WallTime now) {
  const StageStatus status = s.record.status;
  const plan::Stage* spec = find_stage(plan, s.record.name);
  if (!spec || terminal(status)) return {};
  if (status == StageStatus::rolling_back) return "rollback deploy_update";
  if (status == StageStatus::dispatching) return s.devices ? "deploy_update answer" : "device list";
  if (status == StageStatus::gating) {
    if (!s.record.dispatched_at) return "gate";
    const auto elapsed = now - *s.record.dispatched_at;
    if (elapsed < spec->gate.bake) {
      return fmt::format(
          "bake, {} left",
          format_duration(std::chrono::duration_cast<Seconds>(spec->gate.bake - elapsed)));
    }
    std::string text = "gate";
    if (s.last) {
      const std::int64_t needed = engine::required_successes(spec->gate, s.last->targeted);
      if (s.last->success < needed)
        text += fmt::format(": {} more success", needed - s.last->success);
    }
    const auto left = spec->gate.timeout - elapsed;
    if (left > Seconds{0})
      text += fmt::format(", times out in {}",
                          format_duration(std::chrono::duration_cast<Seconds>(left)));
    return text;
  }
  if (!d) return {};
  // A stage that waits to start, in a run that is not running, waits for its resume: said
  // in the run's reason; unless a person's pause holds, which is what it waits for then.
  // People are waited for whatever the run's status.
  if (status == StageStatus::waiting && run.status != RunStatus::running && !run.paused) return {};
  if (d->hold == engine::Hold::needs) {
    // Asked for approval, then a need rolled back: it waits for both.
    const std::string needs = "needs " + join(open_needs(*spec, run), ", ");
    if (status != StageStatus::awaiting_approval) return needs;
    return fmt::format("approval: rollout approve {} {}; {}", run.run_id, s.record.name, needs);
  }
  if (d->hold == engine::Hold::none)
    return d->step == engine::StartStep::start ? "its start, at the run's next turn" : "";
  return engine::describe_hold(
      *d, *spec, run.run_id, plan.max_parallel.value_or(static_cast<int>(plan.stages.size())), now);
}

}  // namespace

std::vector<std::string> waiting_for(const plan::Plan& plan, const RunProgress& run, WallTime now) {
  const auto decisions = start_decisions(plan, run, now);
  std::vector<std::string> out;
  out.reserve(run.stages.size());
  for (std::size_t i = 0; i < run.stages.size(); ++i)
    out.push_back(waiting_for(plan, run, run.stages[i], decisions[i], now));
  return out;
}

std::string status_bar(const state::Observation& o, int width, bool color) {
  // Success, failed (aborted and lost with it), updating, the rest (pending, missing): each
  // its share of the cells, rounded down, and the cells left over to the largest remainders,
  // so that a part with no device gets no cell and the bar adds up to its width.
  const std::int64_t failed_like = o.failed + o.aborted + o.lost;
  const std::int64_t done = o.success + failed_like + o.in_progress;
  const std::array<std::int64_t, 4> counts = {o.success, failed_like, o.in_progress,
                                              std::max<std::int64_t>(o.targeted - done, 0)};
  std::int64_t total = 0;
  for (const std::int64_t n : counts) total += n;
  std::array<int, 4> cells{};
  if (total == 0) {
    cells[3] = width;
  } else {
    int given = 0;
    for (std::size_t k = 0; k < counts.size(); ++k) {
      cells[k] = static_cast<int>(counts[k] * width / total);
      given += cells[k];
    }
    for (; given < width; ++given) {
      std::size_t best = 0;
      std::int64_t best_left = -1;
      for (std::size_t k = 0; k < counts.size(); ++k) {
        const std::int64_t left = counts[k] * width - cells[k] * total;
        if (counts[k] > 0 && left > best_left) {
          best = k;
          best_left = left;
        }
      }
      ++cells[best];
    }
    // A single failure (or lost device) always shows, taking a cell from the largest part.
    if (failed_like > 0 && cells[1] == 0) {
      ++cells[1];
      --*std::max_element(cells.begin(), cells.end());
    }
  }
  const int success = cells[0], failed = cells[1], updating = cells[2], rest = cells[3];
  if (!color) {
    return std::string(static_cast<std::size_t>(success), '=') +
           std::string(static_cast<std::size_t>(failed), 'x') +
           std::string(static_cast<std::size_t>(updating), '>') +
           std::string(static_cast<std::size_t>(rest), '.');
  }
  auto repeat = [](const char* glyph, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += glyph;
    return s;
  };
  return paint(repeat("█", success), kGreen, true) + paint(repeat("█", failed), kRed, true) +
         paint(repeat("▒", updating), kYellow, true) + paint(repeat("░", rest), kDim, true);
}

std::vector<std::string> render(const plan::Plan& plan, const RunProgress& run, WallTime now,
                                const Style& style) {
  std::vector<std::string> lines;
  std::map<std::string, int> by_status;
  for (const auto& s : run.stages) ++by_status[shown_status(s.record)];
  std::vector<std::string> tally;
  for (const auto& [status, n] : by_status) tally.push_back(fmt::format("{} {}", n, status));
  lines.push_back(
      fit(fmt::format(
              "{} {} {} · {} · stages: {}", paint("run", kBold, style.color), run.run_id,
              paint(std::string(state::name(run.status)), status_color(run.status), style.color),
              format_duration(
                  std::chrono::duration_cast<Seconds>(run.finished.value_or(now) - run.started)),
              join(tally, ", ")),
          style.width));
  const int bar_width = style.width >= 120 ? 20 : 10;
  std::size_t name_width = 6;
  std::size_t status_width = 7;
  // A stage that is ready but outside its maintenance windows (or in a freeze) is shown
  // among the active ones: the run is waiting for it.
  const auto decisions = start_decisions(plan, run, now);
  const auto waits_for_window = [&](std::size_t i) {
    return run.status == RunStatus::running &&
           run.stages[i].record.status == StageStatus::waiting && decisions[i] &&
           (decisions[i]->hold == engine::Hold::window ||
            decisions[i]->hold == engine::Hold::no_window);
  };
  const auto shown = [&](std::size_t i) {
    return style.all_stages || active(run.stages[i].record.status) || waits_for_window(i);
  };
  for (std::size_t i = 0; i < run.stages.size(); ++i) {
    if (!shown(i)) continue;
    name_width = std::max(name_width, run.stages[i].record.name.size());
    status_width = std::max(status_width, shown_status(run.stages[i].record).size());
  }
  for (std::size_t i = 0; i < run.stages.size(); ++i) {
    const StageProgress& s = run.stages[i];
    const StageStatus status = s.record.status;
    if (!shown(i)) continue;
    const plan::Stage* spec = find_stage(plan, s.record.name);
    std::string line =
        fmt::format("  {:<{}} {} ", s.record.name, name_width,
                    paint(fmt::format("{:<{}}", shown_status(s.record), status_width),
                          status_color(status), style.color));
    if (s.last) {
      const auto& o = *s.last;
      line += status_bar(o, bar_width, style.color);
      line += fmt::format(" {} success, {} failed", o.success, o.failed + o.aborted);
      if (o.lost > 0) line += fmt::format(", {} lost", o.lost);
      line += fmt::format(", {} in_progress, {} pending", o.in_progress, o.pending);
      if (o.missing > 0) line += fmt::format(", {} missing", o.missing);
    } else {
      line += std::string(static_cast<std::size_t>(bar_width), ' ');
      line += s.devices ? fmt::format(" {} device(s)", *s.devices) : std::string(" -");
    }
    if (s.record.started_at) {
      const WallTime end = s.record.finished_at.value_or(now);
      line +=
          ", " + format_duration(std::chrono::duration_cast<Seconds>(end - *s.record.started_at));
    }
    // The gate's condition and what the stage waits for: on the same line when it fits.
    std::vector<std::string> tail;
    if (spec && (state::is_active(status) || status == StageStatus::paused))
      tail.push_back("gate: " + gate_condition(spec->gate, s.devices));
    if (std::string w = waiting_for(plan, run, s, decisions[i], now); !w.empty())
      tail.push_back("waiting: " + w);
    if (style.all_stages && terminal(status) &&
        (status != StageStatus::passed || skipped(s.record)) && !s.record.reason.empty())
      tail.push_back(s.record.reason);
    const std::string rest = join(tail, "; ");
    if (rest.empty()) {
      lines.push_back(fit(line, style.width));
    } else if (visible_width(line) + 3 + visible_width(rest) <= style.width) {
      lines.push_back(line + " | " + rest);
    } else {
      lines.push_back(fit(line, style.width));
      lines.push_back(fit(std::string(name_width + 4, ' ') + rest, style.width));
    }
  }
  return lines;
}

}  // namespace rollout::view
