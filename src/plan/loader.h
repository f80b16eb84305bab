// Reads a plan from YAML text into the model, with every problem of the file reported
// at once as FILE:LINE:COL diagnostics. Graph-level checks (cycles) live in dag/.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "plan/model.h"
#include "util/diagnostic.h"

namespace rollout::plan {

struct LoadResult {
  // Present whenever the YAML could be read, even with errors, so that later checks
  // (the DAG's cycle check) can still report on it; use it only when !has_errors().
  std::optional<Plan> plan;
  Diagnostics diagnostics;
};

LoadResult load_plan(std::string_view yaml_text);

// Parsers for the plan's scalar notations, shared with the fleet file and tests.
std::optional<Threshold> parse_threshold(std::string_view text, std::string* why);
std::optional<RateLimit> parse_rate_limit(std::string_view text, std::string* why);

}  // namespace rollout::plan
