// The plan: what an operator asked for, resolved (stage overrides over defaults over
// built-in defaults) and validated. Pure data, no I/O.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "upswift/deploy.h"
#include "upswift/filter.h"
#include "util/diagnostic.h"
#include "util/duration.h"
#include "util/time.h"

namespace rollout::plan {

// Upswift's metadata.comment carries the plan's comment and then the run's marker
// ("[rollout RUN/STAGE/rollback]", at most 128 bytes with a stage name of 64): 4 KiB in all.
inline constexpr std::size_t kMaxSentComment = 4096;
inline constexpr std::size_t kMaxComment = kMaxSentComment - 128 - 1;

// min_success / max_failed: "95%" or a device count "3".
struct Threshold {
  enum class Kind { percent, count };
  Kind kind = Kind::percent;
  double value = 0;  // 0..100 for percent, a whole number for count
  bool operator==(const Threshold&) const = default;
};
std::string format_threshold(const Threshold& t);

enum class OnTimeout { pause, fail, pass };
std::string_view name(OnTimeout v);

struct Gate {
  Seconds bake{0};
  Seconds timeout{std::chrono::hours(1)};
  Seconds poll{std::chrono::seconds(30)};
  Threshold min_success{Threshold::Kind::percent, 100};
  Threshold max_failed{Threshold::Kind::count, 0};
  std::int64_t min_devices = 1;
  OnTimeout on_timeout = OnTimeout::pause;
  // A device whose update is under way while the device has been offline this long (since
  // it was last seen online after the dispatch) is lost; more lost than max_lost fail the
  // stage at once.
  Seconds lost_after{std::chrono::minutes(15)};
  Threshold max_lost{Threshold::Kind::count, 0};
  bool operator==(const Gate&) const = default;
};

// A gate as written: each field may be absent and is then filled from further out.
struct GateSpec {
  std::optional<Seconds> bake, timeout, poll;
  std::optional<Threshold> min_success, max_failed;
  std::optional<std::int64_t> min_devices;
  std::optional<OnTimeout> on_timeout;
  std::optional<Seconds> lost_after;
  std::optional<Threshold> max_lost;
};
Gate resolve(const GateSpec& stage, const GateSpec& defaults);

struct StageRef {
  std::string name;
  Mark mark;
};

// A sampled wave: a share or a number of the devices the stage's selection finds, drawn
// per run, leaving out devices earlier stages of the run targeted; each is sent its own
// deploy_update with a specific_device filter.
struct Sample {
  enum class Kind { percent, count };
  Kind kind = Kind::count;
  double percent = 0;      // (0, 100]
  std::int64_t count = 0;  // >= 1
  bool operator==(const Sample&) const = default;
};
std::string format_sample(const Sample& s);  // "5%" or "20 devices"

// One step of a ramp (`ramp:` on a stage): the stage becomes consecutive sampled waves, one
// per step, named `<stage>@<share>`. Step k targets `percent` of the stage's selection in
// all (devices of earlier steps count, and are left out of this one), drawn in one order
// fixed per run and stage.
struct RampStep {
  std::string stage;      // the stage as written
  double percent = 0;     // (0, 100], growing from step to step
  std::size_t index = 0;  // 0-based
  std::size_t steps = 0;  // how many the ramp has
  bool operator==(const RampStep&) const = default;
};
std::string format_percent(double percent);  // "1%", "2.5%"

// A maintenance window: when any are given, a stage dispatches only inside one.
struct Window {
  std::vector<int> days;  // 0 = Monday ... 6 = Sunday; every day when empty
  int from = 0;           // minutes after local midnight
  int to = 0;             // to <= from: the window ends on the next day
  std::string tz;         // from the system's tz database, e.g. Europe/Berlin
  bool operator==(const Window&) const = default;
};

// A freeze: no stage dispatches from `from` until `to`.
struct Freeze {
  WallTime from{};
  WallTime to{};
  std::string reason;  // may be empty
  std::string text;    // as written, for messages: "2026-12-20 .. 2027-01-03 Europe/Berlin"
  bool operator==(const Freeze&) const = default;
};

enum class FailureAction { stop, rollback };
std::string_view name(FailureAction v);

struct Rollback {
  std::string flow_id;
  std::optional<upswift::AppVersion> app;
  std::optional<std::string> comment;
  // How long its check waits for the rollback's update to finish on every device it was
  // sent to, after its last call went through; unset: the stage's gate timeout.
  std::optional<Seconds> timeout;
};

// What a failed rollback rolls back: `stage`, what the run has not proven (the failed stage,
// every step of its ramp, the stages cut off in flight); `run`, every device the run updated,
// the stages that passed too.
enum class RollbackScope { stage, run };
std::string_view name(RollbackScope v);

struct OnFailure {
  FailureAction action = FailureAction::stop;
  std::optional<Rollback> rollback;
  RollbackScope scope = RollbackScope::stage;
};

struct Stage {
  std::string name;
  Mark mark;  // where the stage's `name` is
  std::vector<StageRef> needs;
  std::vector<std::string> groups;
  std::vector<upswift::Filter> filters;
  bool approval_required = false;
  std::optional<Sample> sample;
  std::optional<RampStep> ramp;  // set with sample: a step of a ramp
  std::vector<Window> windows;   // the stage's own, else the plan's
  std::vector<Freeze> freezes;   // the plan's and the stage's
  // Resolved: stage override, else the plan's value.
  std::string flow_id;
  std::string project;
  std::optional<upswift::AppVersion> app;
  std::optional<std::string> comment;
  Gate gate;
  // Resolved: the stage's own on_failure (own_on_failure), else the plan's; its rollback
  // flow, when it names none, is the plan's.
  OnFailure on_failure;
  bool own_on_failure = false;

  upswift::DeployRequest deploy_request() const;
};

struct RateLimit {
  std::int64_t calls = 600;
  Seconds per{std::chrono::minutes(1)};
  bool operator==(const RateLimit&) const = default;
};
std::string format_rate_limit(const RateLimit& r);

struct Api {
  std::optional<std::string> url;
  RateLimit rate_limit;
};

// A webhook told about the run as it goes (`notify:`).
struct Webhook {
  enum class Format { json, slack };
  std::string url;
  std::vector<std::string> events;  // of keys::kNotifyEvents; all of them when none are given
  Format format = Format::json;
  bool operator==(const Webhook&) const = default;
};

// Run-wide abort criteria (`abort_when:`): counted over every device the dispatched stages
// targeted, once at least `min_finished` of them have a final status or are lost. A
// criterion is met when that many devices failed (lost) or more.
struct AbortWhen {
  std::optional<Threshold> failed;
  std::optional<Threshold> lost;
  std::int64_t min_finished = 0;
  bool operator==(const AbortWhen&) const = default;
};

// "failed 3% or lost 1% of the devices the dispatched stages targeted, counted once 50 have
// finished"
std::string describe(const AbortWhen& a);
// "step 2 of 4 of ramp eu: 5% of its selection in all, earlier steps' devices left out"
std::string describe(const RampStep& r);

struct Plan {
  int version = 1;
  std::string name;
  std::optional<std::string> flow_id;
  std::optional<std::string> project;
  std::optional<upswift::AppVersion> app;
  std::optional<std::string> comment;
  GateSpec default_gate;
  std::optional<int> max_parallel;  // absent: every ready stage may run
  std::vector<Window> windows;
  std::vector<Freeze> freezes;
  std::vector<Webhook> notify;
  std::vector<Stage> stages;
  std::optional<AbortWhen> abort_when;
  OnFailure on_failure;
  Api api;
};

}  // namespace rollout::plan
