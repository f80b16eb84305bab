// A preview saved by `rollout plan --out FILE` (or printed by --output json), which
// `rollout apply --plan-file FILE` runs: JSON, with the plan's checksum and the API it was
// resolved against, so that a changed plan or a changed fleet is refused.
#pragma once

#include <optional>
#include <string>

#include "cli/command.h"
#include "preview/preview.h"
#include "util/time.h"

namespace rollout::cli {

struct SavedPlan {
  std::string plan_file;
  std::string plan_sha256;
  std::string api_url;
  WallTime resolved_at{};
  preview::Preview preview;
};

std::string saved_plan_json(const SavedPlan& saved);

// nullopt, with `why`, when `text` is not a saved plan this version can read.
std::optional<SavedPlan> parse_saved_plan(const std::string& text, std::string* why);

// What applying `c` through `url` will do, in a few lines: each stage in order, what it
// selects (with the device counts of `saved`, when given), its update and gate, and what a
// failure does. Shown before `apply` asks for a yes.
std::string plan_summary(const CheckedPlan& c, const std::string& url, const SavedPlan* saved);

}  // namespace rollout::cli
