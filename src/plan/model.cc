#include "plan/model.h"

#include <cmath>

#include <fmt/format.h>

namespace rollout::plan {

std::string format_sample(const Sample& s) {
  if (s.kind == Sample::Kind::count) return fmt::format("{} device(s)", s.count);
  return fmt::format("{}%", s.percent);
}

std::string format_percent(double percent) {
  return fmt::format("{}%", percent);
}

std::string describe(const AbortWhen& a) {
  std::string what;
  if (a.failed) what = "failed " + format_threshold(*a.failed);
  if (a.lost) what += (what.empty() ? "" : " or ") + ("lost " + format_threshold(*a.lost));
  return fmt::format(
      "{} of the devices the dispatched stages targeted{}", what,
      a.min_finished > 0 ? fmt::format(", counted once {} have finished", a.min_finished) : "");
}

std::string describe(const RampStep& r) {
  return fmt::format(
      "step {} of {} of ramp {}: {} of its selection in all, earlier steps' devices left out",
      r.index + 1, r.steps, r.stage, format_percent(r.percent));
}

std::string format_threshold(const Threshold& t) {
  if (t.kind == Threshold::Kind::count)
    return fmt::format("{}", static_cast<std::int64_t>(t.value));
  return fmt::format("{}%", t.value);
}

std::string_view name(OnTimeout v) {
  switch (v) {
    case OnTimeout::pause:
      return "pause";
    case OnTimeout::fail:
      return "fail";
    case OnTimeout::pass:
      return "pass";
  }
  return "pause";
}

std::string_view name(FailureAction v) {
  return v == FailureAction::stop ? "stop" : "rollback";
}

std::string_view name(RollbackScope v) {
  return v == RollbackScope::stage ? "stage" : "run";
}

std::string format_rate_limit(const RateLimit& r) {
  return fmt::format("{}/{}", r.calls, format_duration(r.per));
}

Gate resolve(const GateSpec& stage, const GateSpec& defaults) {
  Gate g;
  auto pick = [](const auto& own, const auto& fallback, auto builtin) {
    return own ? *own : (fallback ? *fallback : builtin);
  };
  g.bake = pick(stage.bake, defaults.bake, g.bake);
  g.timeout = pick(stage.timeout, defaults.timeout, g.timeout);
  g.poll = pick(stage.poll, defaults.poll, g.poll);
  g.min_success = pick(stage.min_success, defaults.min_success, g.min_success);
  g.max_failed = pick(stage.max_failed, defaults.max_failed, g.max_failed);
  g.min_devices = pick(stage.min_devices, defaults.min_devices, g.min_devices);
  g.on_timeout = pick(stage.on_timeout, defaults.on_timeout, g.on_timeout);
  g.lost_after = pick(stage.lost_after, defaults.lost_after, g.lost_after);
  g.max_lost = pick(stage.max_lost, defaults.max_lost, g.max_lost);
  return g;
}

upswift::DeployRequest Stage::deploy_request() const {
  return {flow_id, project, groups, filters, comment, app};
}

}  // namespace rollout::plan
