#include "engine/gate.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include <fmt/format.h>

namespace rollout::engine {

StatusCounts tally(const std::vector<Reading>& readings) {
  using state::DeviceStatus;
  StatusCounts counts;
  for (const Reading& device : readings) {
    if (device.lost) {
      ++counts.lost;
      continue;
    }
    switch (device.reached) {
      case DeviceStatus::unlisted:
      case DeviceStatus::missing:
        ++counts.missing;
        break;
      case DeviceStatus::pending:
        ++counts.pending;
        break;
      case DeviceStatus::in_progress:
        ++counts.in_progress;
        break;
      case DeviceStatus::success:
        ++counts.success;
        break;
      case DeviceStatus::failed:
        ++counts.failed;
        break;
      case DeviceStatus::aborted:
      case DeviceStatus::other:
        ++counts.aborted;
        break;
    }
  }
  return counts;
}

bool under_way(state::DeviceStatus reached, bool started) {
  return reached == state::DeviceStatus::in_progress ||
         (started && reached == state::DeviceStatus::pending);
}

bool is_lost(const plan::Gate& gate, state::DeviceStatus reached, bool started, std::int8_t online,
             WallTime online_last, WallTime now) {
  return under_way(reached, started) && online == 0 &&
         now - online_last > std::chrono::duration_cast<Millis>(gate.lost_after);
}

Millis next_poll(const plan::Gate& gate, Millis since_dispatch) {
  const Millis bake = std::chrono::duration_cast<Millis>(gate.bake);
  const Millis timeout = std::chrono::duration_cast<Millis>(gate.timeout);
  Millis next = std::chrono::duration_cast<Millis>(gate.poll);
  if (since_dispatch < bake) next = std::min(next, bake - since_dispatch);
  next = std::min(next, std::max(Millis{0}, timeout - since_dispatch));
  return std::max(next, Millis{1});
}

namespace {

// A threshold as a number of devices, of `targeted`: a count as written; a share rounded up
// (what must be reached: 95% of 30 devices is 28.5, so 29) or down (what is tolerated). The
// epsilons keep 100% of 7 at 7.
std::int64_t devices_at_least(const plan::Threshold& t, std::int64_t targeted) {
  if (t.kind == plan::Threshold::Kind::count) return static_cast<std::int64_t>(t.value);
  return static_cast<std::int64_t>(
      std::ceil(static_cast<double>(targeted) * t.value / 100.0 - 1e-9));
}

std::int64_t devices_at_most(const plan::Threshold& t, std::int64_t targeted) {
  if (t.kind == plan::Threshold::Kind::count) return static_cast<std::int64_t>(t.value);
  return static_cast<std::int64_t>(
      std::floor(static_cast<double>(targeted) * t.value / 100.0 + 1e-9));
}

}  // namespace

std::int64_t required_successes(const plan::Gate& gate, std::int64_t targeted) {
  return devices_at_least(gate.min_success, targeted);
}

std::int64_t allowed_failures(const plan::Gate& gate, std::int64_t targeted) {
  return devices_at_most(gate.max_failed, targeted);
}

std::int64_t allowed_lost(const plan::Gate& gate, std::int64_t targeted) {
  return devices_at_most(gate.max_lost, targeted);
}

std::optional<std::string> abort_criterion_met(const plan::AbortWhen& when, std::int64_t targeted,
                                               const StatusCounts& c) {
  if (targeted <= 0 || c.finished() < when.min_finished) return std::nullopt;
  // "failed: 3%" is met once 3% of the targeted devices have failed: at least one device.
  auto reached = [&](const std::optional<plan::Threshold>& t,
                     std::int64_t count) -> std::optional<std::int64_t> {
    if (!t) return std::nullopt;
    const std::int64_t at = std::max<std::int64_t>(devices_at_least(*t, targeted), 1);
    if (count < at) return std::nullopt;
    return at;
  };
  const std::string numbers = fmt::format(
      "{} of the {} devices the dispatched stages targeted failed, {} lost; {} "
      "finished (min_finished {})",
      c.failed, targeted, c.lost, c.finished(), when.min_finished);
  for (const auto& [what, threshold, count] :
       {std::tuple{"failed", &when.failed, c.failed}, std::tuple{"lost", &when.lost, c.lost}}) {
    const auto at = reached(*threshold, count);
    if (!at) continue;
    const std::string t = plan::format_threshold(**threshold);
    return fmt::format("abort_when {} {} met ({} = {} device(s)): {}", what, t,
                       (*threshold)->kind == plan::Threshold::Kind::percent
                           ? fmt::format("{} of {}", t, targeted)
                           : "a count",
                       *at, numbers);
  }
  return std::nullopt;
}

namespace {

std::string devices(std::int64_t n) {
  return fmt::format("{} device{}", n, n == 1 ? "" : "s");
}

std::string describe(std::string_view key, const plan::Threshold& t,
                     std::optional<std::int64_t> targeted, std::int64_t count) {
  if (t.kind == plan::Threshold::Kind::count)
    return fmt::format("{} {}", key, devices(static_cast<std::int64_t>(t.value)));
  if (!targeted) return fmt::format("{} {}", key, plan::format_threshold(t));
  return fmt::format("{} {} of {} = {}", key, plan::format_threshold(t), *targeted, devices(count));
}

}  // namespace

std::string describe_thresholds(const plan::Gate& gate, std::optional<std::int64_t> targeted,
                                bool with_lost) {
  std::string text = fmt::format("{}, {}",
                                 describe("min_success", gate.min_success, targeted,
                                          targeted ? required_successes(gate, *targeted) : 0),
                                 describe("max_failed", gate.max_failed, targeted,
                                          targeted ? allowed_failures(gate, *targeted) : 0));
  if (with_lost) {
    text += fmt::format(
        ", {} (offline {} mid-update)",
        describe("max_lost", gate.max_lost, targeted, targeted ? allowed_lost(gate, *targeted) : 0),
        format_duration(gate.lost_after));
  }
  return text;
}

std::optional<std::string> check_feasible(const plan::Gate& gate, std::int64_t targeted) {
  if (targeted < gate.min_devices) {
    return fmt::format("targets {} device(s), fewer than min_devices {}", targeted,
                       gate.min_devices);
  }
  const std::int64_t needed = required_successes(gate, targeted);
  if (needed > targeted) {
    return fmt::format("needs {} successes (min_success {}) but targets only {} device(s)", needed,
                       plan::format_threshold(gate.min_success), targeted);
  }
  return std::nullopt;
}

Judgement judge(const plan::Gate& gate, std::int64_t targeted, const StatusCounts& c,
                Millis since_dispatch) {
  const std::int64_t needed = required_successes(gate, targeted);
  const std::int64_t tolerated = allowed_failures(gate, targeted);
  // Missing devices (none of this run's update on them yet) may still get it, so they count
  // as unfinished; but they are not "updating", and are never called so.
  const std::int64_t unfinished = c.pending + c.in_progress + c.missing;
  std::string counts =
      fmt::format("{} of {} succeeded, {} failed, {} aborted, {} still updating", c.success,
                  targeted, c.failed, c.aborted, c.pending + c.in_progress);
  if (c.lost > 0)
    counts += fmt::format(", {} lost (offline mid-update for more than lost_after {})", c.lost,
                          format_duration(gate.lost_after));
  if (c.missing > 0)
    counts += fmt::format(", {} missing (no update of this run on them)", c.missing);
  const std::int64_t lost_tolerated = allowed_lost(gate, targeted);
  if (c.lost > lost_tolerated) {
    return {Verdict::fail,
            fmt::format("{} lost, more than max_lost {} allows ({}); {}", c.lost,
                        plan::format_threshold(gate.max_lost), lost_tolerated, counts)};
  }
  if (c.failed > tolerated) {
    return {Verdict::fail,
            fmt::format("{} failed, more than max_failed {} allows ({}); {}", c.failed,
                        plan::format_threshold(gate.max_failed), tolerated, counts)};
  }
  if (c.success + unfinished < needed) {
    return {Verdict::fail, fmt::format("at most {} can succeed, min_success {} needs {}; {}",
                                       c.success + unfinished,
                                       plan::format_threshold(gate.min_success), needed, counts)};
  }
  const Millis bake = std::chrono::duration_cast<Millis>(gate.bake);
  const Millis timeout = std::chrono::duration_cast<Millis>(gate.timeout);
  if (c.success >= needed && since_dispatch >= bake) {
    return {
        Verdict::pass,
        fmt::format("{} >= {} needed (min_success {}), {} failed <= {} allowed; {}", c.success,
                    needed, plan::format_threshold(gate.min_success), c.failed, tolerated, counts)};
  }
  if (since_dispatch >= timeout) {
    return {Verdict::timeout,
            fmt::format("no verdict after timeout {}: {} succeeded, {} needed; {}",
                        format_duration(gate.timeout), c.success, needed, counts)};
  }
  if (since_dispatch < bake) {
    return {Verdict::wait, fmt::format("baking until {}; {}", format_duration(gate.bake), counts)};
  }
  return {Verdict::wait, fmt::format("waiting for {} successes; {}", needed, counts)};
}

}  // namespace rollout::engine
