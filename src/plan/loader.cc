#include "plan/loader.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <span>

#include <fmt/format.h>

#include "plan/keys.h"
#include "plan/readers.h"
#include "util/suggest.h"
#include "util/tz.h"
#include "yaml/document.h"
#include "yaml/reader.h"

namespace rollout::plan {

namespace {

using detail::read_freezes;
using detail::read_notify;
using detail::read_windows;
using yaml::Node;
using yaml::Reader;

bool valid_stage_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(s[0])) return false;
  for (char c : s) {
    if (!alnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

std::optional<Threshold> read_threshold(Reader& r, const Node& n, std::string_view what) {
  if (!n.is_scalar()) {
    r.diagnostics().error(
        n.mark, fmt::format("{} must be a percentage such as 95% or a device count, got {}", what,
                            yaml::describe(n)));
    return std::nullopt;
  }
  std::string why;
  auto t = parse_threshold(n.scalar, &why);
  if (!t) r.diagnostics().error(n.mark, fmt::format("{}: bad value '{}': {}", what, n.scalar, why));
  return t;
}

std::optional<upswift::AppVersion> read_app(Reader& r, const Node& n, std::string_view what) {
  if (!r.map(n, keys::kApp, what)) return std::nullopt;
  const Node* name = r.required(n, "name", what);
  const Node* version = r.required(n, "version", what);
  std::optional<std::string> name_s, version_s;
  if (name) name_s = r.string(*name, fmt::format("{} name", what));
  if (version) version_s = r.string(*version, fmt::format("{} version", what));
  if (!name_s || !version_s) return std::nullopt;
  return upswift::AppVersion{*name_s, *version_s};
}

GateSpec read_gate(Reader& r, const Node& n, std::string_view what) {
  GateSpec g;
  if (!r.map(n, keys::kGate, what)) return g;
  if (const Node* v = n.find("bake")) g.bake = r.duration(*v, "bake");
  if (const Node* v = n.find("timeout")) g.timeout = r.duration(*v, "timeout");
  if (const Node* v = n.find("poll")) g.poll = r.duration(*v, "poll");
  if (const Node* v = n.find("min_success")) g.min_success = read_threshold(r, *v, "min_success");
  if (const Node* v = n.find("max_failed")) g.max_failed = read_threshold(r, *v, "max_failed");
  if (const Node* v = n.find("min_devices")) {
    g.min_devices = r.integer(*v, "min_devices", 0, 100'000'000);
  }
  if (const Node* v = n.find("on_timeout")) {
    if (auto c = r.choice(*v, "on_timeout", keys::kOnTimeoutValues)) {
      g.on_timeout = *c == "pause"  ? OnTimeout::pause
                     : *c == "fail" ? OnTimeout::fail
                                    : OnTimeout::pass;
    }
  }
  if (const Node* v = n.find("max_lost")) g.max_lost = read_threshold(r, *v, "max_lost");
  if (const Node* v = n.find("lost_after")) {
    g.lost_after = r.duration(*v, "lost_after");
    if (g.lost_after && g.lost_after->count() == 0) {
      r.diagnostics().error(v->mark,
                            "lost_after must be above 0s: a device offline for a moment (a "
                            "reboot to install the update) is not lost");
      g.lost_after.reset();
    }
  }
  return g;
}

// A share written as "5%": above 0, at most 100 (returned as 5).
std::optional<double> read_share(Reader& r, const Node& n, std::string_view what) {
  auto fraction = r.percentage(n, what);
  if (!fraction) return std::nullopt;
  if (*fraction <= 0) {
    r.diagnostics().error(n.mark, fmt::format("{} must be above 0%, got '{}'", what, n.scalar));
    return std::nullopt;
  }
  return *fraction * 100;
}

// `ramp: {steps: [1%, 5%, 25%, 100%]}` or `ramp: {from: 1%, factor: 2}` (1%, 2%, 4% ... 64%,
// 100%): the shares, each larger than the one before.
std::optional<std::vector<double>> read_ramp(Reader& r, const Node& n, const std::string& label) {
  const std::string what = fmt::format("ramp of {}", label);
  const std::size_t errors = r.diagnostics().error_count();
  if (!r.map(n, keys::kRamp, what) || r.diagnostics().error_count() > errors) return std::nullopt;
  const Node* steps = n.find("steps");
  const Node* from = n.find("from");
  const Node* factor = n.find("factor");
  if ((steps != nullptr) == (from != nullptr)) {
    r.diagnostics().error(n.mark, fmt::format("{} needs exactly one of steps (e.g. {{steps: [1%, "
                                              "5%, 25%, 100%]}}) or from and factor (e.g. "
                                              "{{from: 1%, factor: 2}})",
                                              what));
    return std::nullopt;
  }
  std::vector<double> shares;
  if (steps) {
    if (factor) {
      r.diagnostics().error(factor->mark,
                            fmt::format("{}: factor goes with from, not with steps", what));
      return std::nullopt;
    }
    if (!steps->is_sequence() || steps->items.empty()) {
      r.diagnostics().error(steps->mark, fmt::format("{}: steps must be a list of shares such as "
                                                     "[1%, 5%, 25%, 100%], got {}",
                                                     what, yaml::describe(*steps)));
      return std::nullopt;
    }
    bool ok = true;
    for (const Node& item : steps->items) {
      auto v = read_share(r, item, "each step of a ramp");
      if (!v) {
        ok = false;
        continue;
      }
      if (!shares.empty() && *v <= shares.back()) {
        r.diagnostics().error(item.mark,
                              fmt::format("{}: step {} is not above the step before it ({}): "
                                          "each step is the share reached in all, so each grows",
                                          what, format_percent(*v), format_percent(shares.back())));
        ok = false;
      }
      shares.push_back(*v);
    }
    if (!ok) return std::nullopt;
  } else {
    auto first = read_share(r, *from, "ramp from");
    if (!factor) {
      r.diagnostics().error(n.mark, fmt::format("{}: from needs a factor (e.g. {{from: 1%, factor: "
                                                "2}})",
                                                what));
      return std::nullopt;
    }
    double f = 0;
    bool ok = factor->is_scalar() && !factor->quoted && !factor->scalar.empty();
    if (ok) {
      const char* begin = factor->scalar.data();
      const char* end = begin + factor->scalar.size();
      auto [ptr, ec] = std::from_chars(begin, end, f);
      ok = ec == std::errc() && ptr == end && std::isfinite(f) && f > 1 && f <= 100;
    }
    if (!ok) {
      r.diagnostics().error(factor->mark,
                            fmt::format("{}: factor must be a number above 1 and at most 100, "
                                        "got {}",
                                        what,
                                        factor->is_scalar() ? fmt::format("'{}'", factor->scalar)
                                                            : yaml::describe(*factor)));
      return std::nullopt;
    }
    if (!first) return std::nullopt;
    // Shares kept to two decimals, so that step names stay short: 1.5, 2.25, 3.38 ... Each
    // grows by at least 0.01 (a factor that rounds to no growth would never reach 100%).
    for (double v = *first; v < 100 && shares.size() <= 50;
         v = std::max(std::round(v * f * 100) / 100, v + 0.01))
      shares.push_back(v);
    shares.push_back(100);
  }
  if (shares.size() > 50) {
    r.diagnostics().error(
        n.mark, steps ? fmt::format("{} has {} steps: at most 50", what, shares.size())
                      : fmt::format("{} takes more than 50 steps to reach 100%: at most 50 (a "
                                    "larger from or factor)",
                                    what));
    return std::nullopt;
  }
  return shares;
}

std::optional<AbortWhen> read_abort_when(Reader& r, const Node& n) {
  const std::size_t errors = r.diagnostics().error_count();
  if (!r.map(n, keys::kAbortWhen, "abort_when") || r.diagnostics().error_count() > errors)
    return std::nullopt;
  AbortWhen a;
  if (const Node* v = n.find("failed")) a.failed = read_threshold(r, *v, "abort_when failed");
  if (const Node* v = n.find("lost")) a.lost = read_threshold(r, *v, "abort_when lost");
  if (const Node* v = n.find("min_finished")) {
    if (auto m = r.integer(*v, "abort_when min_finished", 0, 100'000'000)) a.min_finished = *m;
  }
  if (!n.find("failed") && !n.find("lost")) {
    r.diagnostics().error(n.mark,
                          "abort_when needs failed, lost or both (e.g. {failed: 3%, "
                          "lost: 1%, min_finished: 50})");
    return std::nullopt;
  }
  return a;
}

std::vector<upswift::Filter> read_filters(Reader& r, const Node& n) {
  std::vector<upswift::Filter> out;
  if (!n.is_sequence()) {
    r.diagnostics().error(n.mark, fmt::format("filters must be a list, got {}", yaml::describe(n)));
    return out;
  }
  for (const Node& f : n.items) {
    if (!r.map(f, keys::kFilter, "filter")) continue;
    const Node* type = r.required(f, "type", "filter");
    const Node* operand = r.required(f, "operand", "filter");
    const Node* value = r.required(f, "value", "filter");
    if (!type || !operand || !value) continue;
    auto type_s = r.string(*type, "filter type");
    auto operand_s = r.string(*operand, "filter operand");
    auto value_s = r.string(*value, "filter value");  // the seed: all values are strings
    if (!type_s || !operand_s || !value_s) continue;
    if (auto why = upswift::check_filter(*type_s, *operand_s, *value_s)) {
      // Point at the part that is wrong.
      const Node* at = !upswift::parse_filter_type(*type_s)        ? type
                       : why->find("operand") != std::string::npos ? operand
                                                                   : value;
      r.diagnostics().error(at->mark, *why);
      continue;
    }
    out.push_back(
        {*upswift::parse_filter_type(*type_s), *upswift::parse_operand(*operand_s), *value_s});
  }
  return out;
}

// Where a stage's gate field was written: in the stage's own gate, else in the plan's
// defaults; the gate itself, or the stage, when neither names it.
struct GateMarks {
  const Node* own = nullptr;
  const Node* defaults = nullptr;
  Mark stage;
  Mark of(std::string_view key) const {
    for (const Node* g : {own, defaults}) {
      if (const Node* f = g ? g->find(key) : nullptr) return f->mark;
    }
    return own ? own->mark : stage;
  }
};

void check_gate(Diagnostics& d, const Gate& g, const GateMarks& at, std::string_view label) {
  if (g.timeout.count() == 0)
    d.error(at.of("timeout"), fmt::format("{}: gate timeout must be above 0s", label));
  if (g.poll.count() == 0)
    d.error(at.of("poll"), fmt::format("{}: gate poll must be above 0s", label));
  if (g.timeout.count() > 0 && g.bake >= g.timeout) {
    d.error(at.of("bake"),
            fmt::format("{}: bake ({}) must be shorter than timeout ({}), or the gate can never "
                        "judge",
                        label, format_duration(g.bake), format_duration(g.timeout)));
  }
  if (g.poll > g.timeout) {
    d.warning(at.of("poll"), fmt::format("{}: poll ({}) is longer than timeout ({})", label,
                                         format_duration(g.poll), format_duration(g.timeout)));
  }
}

std::optional<Sample> read_sample(Reader& r, const Node& n, const std::string& label) {
  const std::string what = fmt::format("sample of {}", label);
  if (n.is_scalar() && !n.quoted && !n.scalar.empty()) {
    // `sample: 2` or `sample: 5%`: the shape is the mistake, the number is what was meant.
    const bool share = n.scalar.back() == '%';
    const std::string number = share ? n.scalar.substr(0, n.scalar.size() - 1) : n.scalar;
    if (!number.empty() && std::all_of(number.begin(), number.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
        })) {
      r.diagnostics().error(
          n.mark, fmt::format("{} must be a map (did you mean 'sample: {{{}: {}}}'?)", what,
                              share ? "percent" : "count", number));
      return std::nullopt;
    }
  }
  if (!r.map(n, keys::kSample, what)) return std::nullopt;
  const Node* percent = n.find("percent");
  const Node* count = n.find("count");
  if ((percent != nullptr) == (count != nullptr)) {
    r.diagnostics().error(n.mark, fmt::format("{} needs exactly one of percent (e.g. "
                                              "{{percent: 5}}) or count (e.g. {{count: 20}})",
                                              what));
    return std::nullopt;
  }
  Sample s;
  if (count) {
    auto v = r.integer(*count, "sample count", 1, 1'000'000);
    if (!v) return std::nullopt;
    s.kind = Sample::Kind::count;
    s.count = *v;
    return s;
  }
  double value = 0;
  bool ok = percent->is_scalar() && !percent->quoted && !percent->scalar.empty();
  if (ok) {
    const char* begin = percent->scalar.data();
    const char* end = begin + percent->scalar.size();
    auto [ptr, ec] = std::from_chars(begin, end, value);
    ok = ec == std::errc() && ptr == end && value > 0 && value <= 100;
  }
  if (!ok) {
    r.diagnostics().error(
        percent->mark,
        fmt::format(
            "sample percent must be a number above 0 and at most 100, got {}{}",
            percent->is_scalar() ? fmt::format("'{}'", percent->scalar) : yaml::describe(*percent),
            percent->is_scalar() && percent->scalar.ends_with('%')
                ? fmt::format(" (write percent: {})",
                              percent->scalar.substr(0, percent->scalar.size() - 1))
                : ""));
    return std::nullopt;
  }
  s.kind = Sample::Kind::percent;
  s.percent = value;
  return s;
}

OnFailure read_on_failure(Reader& r, const Node& n, const std::string& where,
                          const OnFailure* inherited = nullptr);

Stage read_stage(Reader& r, const Node& n, const Plan& plan, std::size_t index,
                 std::vector<double>& ramp_shares, const Node* defaults_gate) {
  Stage s;
  s.on_failure = plan.on_failure;
  s.mark = n.mark;
  const std::string what = fmt::format("stage #{}", index + 1);
  if (!r.map(n, keys::kStage, what)) return s;
  if (const Node* name = r.required(n, "name", what)) {
    s.mark = name->mark;
    if (auto v = r.string(*name, "stage name")) {
      if (!valid_stage_name(*v)) {
        r.diagnostics().error(name->mark,
                              fmt::format("stage name '{}' must be 1 to 64 letters, digits, '-', "
                                          "'_' or '.', starting with a letter or digit",
                                          *v));
      }
      s.name = *v;
    }
  }
  const std::string label = s.name.empty() ? what : fmt::format("stage '{}'", s.name);
  if (const Node* needs = n.find("needs")) {
    if (!needs->is_sequence()) {
      r.diagnostics().error(
          needs->mark,
          fmt::format("needs must be a list of stage names, got {}{}", yaml::describe(*needs),
                      needs->is_scalar() ? fmt::format(" (write [{}])", needs->scalar) : ""));
    } else {
      for (const Node& item : needs->items) {
        if (auto v = r.string(item, "each entry of needs")) s.needs.push_back({*v, item.mark});
      }
    }
  }
  const std::size_t errors_before_selection = r.diagnostics().error_count();
  if (const Node* groups = n.find("groups")) s.groups = r.string_list(*groups, "groups");
  if (const Node* filters = n.find("filters")) s.filters = read_filters(r, *filters);
  const bool selection_well_formed = r.diagnostics().error_count() == errors_before_selection;
  if (const Node* approval = n.find("approval")) {
    if (auto c = r.choice(*approval, "approval", keys::kApprovalValues)) {
      s.approval_required = *c == "required";
    }
  }
  if (const Node* f = n.find("on_failure")) {
    s.on_failure = read_on_failure(r, *f, fmt::format("{} on_failure", label), &plan.on_failure);
    s.own_on_failure = true;
  }
  if (const Node* sample = n.find("sample")) s.sample = read_sample(r, *sample, label);
  if (const Node* ramp = n.find("ramp")) {
    if (n.find("sample")) {
      r.diagnostics().error(ramp->mark, fmt::format("{} has both sample and ramp: a ramp is a "
                                                    "series of samples; keep one",
                                                    label));
    } else if (auto shares = read_ramp(r, *ramp, label)) {
      ramp_shares = std::move(*shares);
    }
  }
  s.windows = plan.windows;
  if (const Node* windows = n.find("windows")) s.windows = read_windows(r, *windows, label);
  s.freezes = plan.freezes;
  if (const Node* freeze = n.find("freeze")) {
    for (auto& f : read_freezes(r, *freeze, label)) s.freezes.push_back(std::move(f));
  }
  GateSpec own;
  if (const Node* gate = n.find("gate"))
    own = read_gate(r, *gate, fmt::format("gate of {}", label));
  s.gate = resolve(own, plan.default_gate);

  auto own_flow = r.optional_string(n, "flow_id", "flow_id");
  auto own_project = r.optional_string(n, "project", "project");
  std::optional<upswift::AppVersion> own_app;
  if (const Node* app = n.find("app")) own_app = read_app(r, *app, "app");
  auto own_comment = r.optional_string(n, "comment", "comment", kMaxComment);

  if (own_flow)
    s.flow_id = *own_flow;
  else if (plan.flow_id)
    s.flow_id = *plan.flow_id;
  if (own_project)
    s.project = *own_project;
  else if (plan.project)
    s.project = *plan.project;
  s.app = own_app ? own_app : plan.app;
  s.comment = own_comment ? own_comment : plan.comment;

  if (!n.find("groups") && !n.find("filters")) {
    r.diagnostics().error(s.mark,
                          fmt::format("{} has no way to select devices: give it groups, filters, "
                                      "or both (to reach every remaining device, filter "
                                      "{{type: update_status, operand: is_not, value: success}})",
                                      label));
  } else if (s.groups.empty() && s.filters.empty() && selection_well_formed) {
    r.diagnostics().error(s.mark, fmt::format("{} has empty groups and filters: it would select "
                                              "every device of the project",
                                              label));
  }
  check_gate(r.diagnostics(), s.gate, {n.find("gate"), defaults_gate, s.mark}, label);
  return s;
}

// The plan's on_failure, or a stage's (`inherited`: the plan's, whose rollback flow a stage's
// rollback without one of its own takes).
OnFailure read_on_failure(Reader& r, const Node& n, const std::string& where,
                          const OnFailure* inherited) {
  OnFailure f;
  if (!r.map(n, keys::kOnFailure, where)) return inherited ? *inherited : f;
  if (const Node* action = r.required(n, "action", where)) {
    if (auto c = r.choice(*action, where + " action", keys::kFailureActions)) {
      f.action = *c == "stop" ? FailureAction::stop : FailureAction::rollback;
    }
  }
  if (const Node* scope = n.find("scope")) {
    if (auto c = r.choice(*scope, where + " scope", keys::kScopeValues))
      f.scope = *c == "stage" ? RollbackScope::stage : RollbackScope::run;
    if (f.action == FailureAction::stop)
      r.diagnostics().warning(scope->mark,
                              fmt::format("{} action is 'stop': its scope is not used", where));
  }
  const Node* rollback = n.find("rollback");
  if (rollback && r.map(*rollback, keys::kRollback, "rollback")) {
    Rollback rb;
    if (const Node* flow = r.required(*rollback, "flow_id", "rollback")) {
      if (auto v = r.string(*flow, "rollback flow_id")) rb.flow_id = *v;
    }
    if (const Node* app = rollback->find("app")) rb.app = read_app(r, *app, "rollback app");
    rb.comment = r.optional_string(*rollback, "comment", "rollback comment", kMaxComment);
    if (const Node* v = rollback->find("timeout")) {
      rb.timeout = r.duration(*v, "rollback timeout");
      if (rb.timeout && rb.timeout->count() <= 0) {
        r.diagnostics().error(v->mark,
                              "rollback timeout must be above 0 (how long its check waits for "
                              "the rollback's update to finish on every device)");
        rb.timeout.reset();
      }
    }
    // With action stop, the flow is still what `abort --rollback` sends (and a stage's own
    // rollback without a flow of its own takes the plan's).
    f.rollback = rb;
  }
  // A stage's rollback without a flow of its own takes the plan's.
  if (!rollback && inherited) f.rollback = inherited->rollback;
  if (f.action == FailureAction::rollback && !f.rollback) {
    r.diagnostics().error(
        n.mark, fmt::format("{} action 'rollback' needs a rollback block with the "
                            "rollback flow_id (and usually the previous app version){}",
                            where, inherited ? ", here or in the plan's on_failure" : ""));
  }
  return f;
}

Api read_api(Reader& r, const Node& n) {
  Api api;
  if (!r.map(n, keys::kApi, "api")) return api;
  if (const Node* url = n.find("url")) {
    if (auto v = r.string(*url, "api url", yaml::Reader::kMaxUrl)) {
      if (detail::refuse_credentials(r, *url, *v, "api url")) {
        // said; not kept
      } else if (v->rfind("https://", 0) != 0 && v->rfind("http://", 0) != 0) {
        r.diagnostics().error(url->mark, fmt::format("api url '{}' must start with https:// (or "
                                                     "http:// for a simulator on loopback)",
                                                     *v));
      } else {
        api.url = *v;
      }
    }
  }
  if (const Node* rate = n.find("rate_limit")) {
    std::string why;
    auto parsed = rate->is_scalar() ? parse_rate_limit(rate->scalar, &why) : std::nullopt;
    if (!rate->is_scalar())
      why = fmt::format("expected text such as 30/min, got {}", yaml::describe(*rate));
    if (parsed) {
      api.rate_limit = *parsed;
    } else {
      r.diagnostics().error(rate->mark, fmt::format("api rate_limit: {}", why));
    }
  }
  return api;
}

// flow_id and project may be set on the plan or on each stage. Missing everywhere is one
// error at the top; missing on some stages is an error on each of those.
void report_missing_inherited(Diagnostics& d, const Node& root, const Plan& plan,
                              std::string_view key) {
  if (root.find(key)) return;  // given at the top (a malformed one is reported already)
  const Node* stages = root.find("stages");
  if (!stages || !stages->is_sequence()) return;
  std::vector<const Stage*> missing;
  for (std::size_t i = 0; i < plan.stages.size(); ++i) {
    if (!stages->items[i].find(key)) missing.push_back(&plan.stages[i]);
  }
  if (missing.empty()) return;
  if (missing.size() == plan.stages.size() && plan.stages.size() > 1) {
    d.error(root.mark, fmt::format("the plan is missing required field '{}' (set it at the top, or "
                                   "on every stage)",
                                   key));
    return;
  }
  for (const Stage* s : missing) {
    d.error(s->mark, fmt::format("{} has no {}: set {} on the plan or on the stage",
                                 s->name.empty() ? "a stage" : fmt::format("stage '{}'", s->name),
                                 key, key));
  }
}

void check_stage_names(Diagnostics& d, const std::vector<Stage>& stages) {
  std::map<std::string, const Stage*> by_name;
  for (const Stage& s : stages) {
    if (s.name.empty()) continue;
    auto [it, inserted] = by_name.emplace(s.name, &s);
    if (!inserted) {
      d.error(s.mark, fmt::format("duplicate stage name '{}' (first defined at line {})", s.name,
                                  it->second->mark.line));
    }
  }
  std::vector<std::string_view> names;
  for (const auto& [name, stage] : by_name) names.push_back(name);
  for (const Stage& s : stages) {
    std::set<std::string> seen;
    for (const StageRef& need : s.needs) {
      if (!by_name.count(need.name)) {
        d.error(need.mark, fmt::format("stage '{}' needs unknown stage '{}'{}", s.name, need.name,
                                       did_you_mean(need.name, names)));
      } else if (!seen.insert(need.name).second) {
        d.warning(need.mark,
                  fmt::format("stage '{}' lists '{}' in needs twice", s.name, need.name));
      }
    }
  }
}

// Each stage with a ramp becomes its steps, `eu@1%` ... `eu@100%`, one after the other: the
// first has the stage's needs and approval, each later one needs the step before, and a
// stage that needed the ramped stage needs its last step.
void expand_ramps(Plan& plan, const std::vector<std::vector<double>>& ramps) {
  std::map<std::string, std::string> last_step;
  std::vector<Stage> out;
  for (std::size_t i = 0; i < plan.stages.size(); ++i) {
    const Stage& stage = plan.stages[i];
    if (ramps[i].empty()) {
      out.push_back(stage);
      continue;
    }
    for (std::size_t k = 0; k < ramps[i].size(); ++k) {
      Stage step = stage;
      step.name = fmt::format("{}@{}", stage.name, format_percent(ramps[i][k]));
      step.sample = Sample{Sample::Kind::percent, ramps[i][k], 0};
      step.ramp = RampStep{stage.name, ramps[i][k], k, ramps[i].size()};
      if (k > 0) {
        step.needs = {{out.back().name, stage.mark}};
        step.approval_required = false;
      }
      out.push_back(std::move(step));
    }
    last_step[stage.name] = out.back().name;
  }
  for (Stage& s : out) {
    for (StageRef& need : s.needs) {
      if (auto it = last_step.find(need.name); it != last_step.end()) need.name = it->second;
    }
  }
  plan.stages = std::move(out);
}

}  // namespace

std::optional<Threshold> parse_threshold(std::string_view text, std::string* why) {
  auto fail = [&](std::string m) -> std::optional<Threshold> {
    if (why) *why = std::move(m);
    return std::nullopt;
  };
  if (text.empty()) return fail("empty");
  const bool percent = text.back() == '%';
  std::string_view number = percent ? text.substr(0, text.size() - 1) : text;
  double value = 0;
  const char* end = number.data() + number.size();
  auto [ptr, ec] = std::from_chars(number.data(), end, value);
  if (number.empty() || ec != std::errc() || ptr != end || !std::isfinite(value)) {
    return fail("expected a percentage such as 95% or a whole device count such as 3");
  }
  if (value < 0) return fail("must not be negative");
  if (percent) {
    if (value > 100) return fail("a percentage must be at most 100%");
    return Threshold{Threshold::Kind::percent, value};
  }
  if (value != std::floor(value)) {
    return fail(fmt::format("a device count must be whole (did you mean '{}%'?)", number));
  }
  if (value > 1e9) return fail("device count is too large");
  return Threshold{Threshold::Kind::count, value};
}

std::optional<RateLimit> parse_rate_limit(std::string_view text, std::string* why) {
  auto fail = [&](std::string m) -> std::optional<RateLimit> {
    if (why) *why = std::move(m);
    return std::nullopt;
  };
  const auto slash = text.find('/');
  if (slash == std::string_view::npos)
    return fail(fmt::format("'{}' is not a rate such as 30/min", text));
  std::string_view count = text.substr(0, slash);
  std::string_view per = text.substr(slash + 1);
  std::int64_t calls = 0;
  auto [ptr, ec] = std::from_chars(count.data(), count.data() + count.size(), calls);
  if (count.empty() || ec != std::errc() || ptr != count.data() + count.size() || calls < 1 ||
      calls > 100000) {
    return fail(
        fmt::format("'{}' is not a rate such as 30/min: the count must be a whole number "
                    "from 1 to 100000",
                    text));
  }
  static const std::map<std::string_view, Seconds> kUnits = {
      {"s", Seconds{1}},    {"sec", Seconds{1}},     {"second", Seconds{1}},
      {"m", Seconds{60}},   {"min", Seconds{60}},    {"minute", Seconds{60}},
      {"h", Seconds{3600}}, {"hour", Seconds{3600}},
  };
  if (auto it = kUnits.find(per); it != kUnits.end()) return RateLimit{calls, it->second};
  std::string duration_why;
  auto d = parse_duration(per, &duration_why);
  if (!d || d->count() == 0) {
    return fail(
        fmt::format("'{}' is not a rate such as 30/min: the period must be s, min, hour or "
                    "a duration such as 10s",
                    text));
  }
  return RateLimit{calls, *d};
}

LoadResult load_plan(std::string_view yaml_text) {
  LoadResult result;
  Diagnostics& d = result.diagnostics;
  auto root = yaml::parse(yaml_text, d);
  if (!root) return result;
  Reader r(d);
  if (!r.map(*root, keys::kPlan, "the plan")) return result;

  Plan plan;
  if (const Node* version = r.required(*root, "version", "the plan")) {
    if (auto v = r.integer(*version, "version", 0, 1'000'000)) {
      if (*v != 1) {
        d.error(version->mark, fmt::format("plan version {} is not supported: this rollout reads "
                                           "version 1",
                                           *v));
      }
      plan.version = static_cast<int>(*v);
    }
  }
  if (const Node* name = r.required(*root, "name", "the plan")) {
    if (auto v = r.string(*name, "plan name")) plan.name = *v;
  }
  plan.flow_id = r.optional_string(*root, "flow_id", "flow_id");
  plan.project = r.optional_string(*root, "project", "project");
  if (const Node* app = root->find("app")) plan.app = read_app(r, *app, "app");
  plan.comment = r.optional_string(*root, "comment", "comment", kMaxComment);
  if (const Node* defaults = root->find("defaults")) {
    if (r.map(*defaults, keys::kDefaults, "defaults")) {
      if (const Node* gate = defaults->find("gate")) {
        plan.default_gate = read_gate(r, *gate, "defaults gate");
      }
    }
  }
  if (const Node* mp = root->find("max_parallel")) {
    if (auto v = r.integer(*mp, "max_parallel", 1, 10'000))
      plan.max_parallel = static_cast<int>(*v);
  }
  if (const Node* api = root->find("api")) plan.api = read_api(r, *api);
  if (const Node* windows = root->find("windows"))
    plan.windows = read_windows(r, *windows, "the plan");
  if (const Node* freeze = root->find("freeze"))
    plan.freezes = read_freezes(r, *freeze, "the plan");
  if (const Node* notify = root->find("notify")) plan.notify = read_notify(r, *notify);
  if (const Node* f = root->find("on_failure"))
    plan.on_failure = read_on_failure(r, *f, "on_failure");
  if (const Node* a = root->find("abort_when")) plan.abort_when = read_abort_when(r, *a);
  std::vector<std::vector<double>> ramps;  // each stage's ramp shares, empty: no ramp

  if (const Node* stages = r.required(*root, "stages", "the plan")) {
    if (!stages->is_sequence()) {
      d.error(stages->mark, fmt::format("stages must be a list, got {}", yaml::describe(*stages)));
    } else if (stages->items.empty()) {
      d.error(stages->mark, "stages is empty: a plan needs at least one stage");
    } else {
      for (std::size_t i = 0; i < stages->items.size(); ++i) {
        const Node* defaults = root->find("defaults");
        plan.stages.push_back(read_stage(r, stages->items[i], plan, i, ramps.emplace_back(),
                                         defaults ? defaults->find("gate") : nullptr));
      }
    }
  }
  report_missing_inherited(d, *root, plan, "flow_id");
  report_missing_inherited(d, *root, plan, "project");
  check_stage_names(d, plan.stages);
  if (d.error_count() == 0) expand_ramps(plan, ramps);
  result.plan = std::move(plan);
  return result;
}

}  // namespace rollout::plan
