// A run's timeline as segments per stage (waiting for approval, dispatch, bake, gate,
// paused, rollback), derived from its stage records and events. Pure.
#pragma once

#include <string>
#include <vector>

#include "view/report.h"

namespace rollout::view {

struct Segment {
  std::string stage;
  std::string kind;  // approval, dispatch, bake, gate, paused, rollback
  WallTime from{};
  WallTime to{};
};

// When the run ended, or the latest moment its records know of.
WallTime report_end(const ReportInput& in);

std::vector<Segment> timeline_segments(const ReportInput& in, WallTime end);

}  // namespace rollout::view
