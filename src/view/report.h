// `rollout report`: one self-contained HTML file of a run (no scripts, no fetches; inline
// SVG charts): the timeline of stages as a Gantt chart, each stage's device statuses over
// time, the gate decisions with their numbers, approvals, the API calls and the events.
// Pure: from records to a string.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "plan/model.h"
#include "state/records.h"

namespace rollout::view {

// The run's history, its record, and its plan (null when the stored plan no longer loads).
struct ReportInput : state::RunHistory {
  const plan::Plan* plan = nullptr;
  state::RunRecord run;
};

// The y-axis labels of a chart of 0..max devices: whole numbers, evenly spaced (steps of
// 1, 2, 5, 10, 20, 50 ...), at most five.
std::vector<std::int64_t> axis_ticks(std::int64_t max);

std::string html_escape(const std::string& text);

std::string render_report(const ReportInput& in);

}  // namespace rollout::view
