// Reads a fleet description (YAML) for the simulator, with FILE:LINE:COL diagnostics.
#pragma once

#include <optional>
#include <string_view>

#include "sim/fleet.h"
#include "util/diagnostic.h"

namespace rollout::sim {

struct FleetLoad {
  std::optional<FleetSpec> spec;  // only when there are no errors
  Diagnostics diagnostics;
};

FleetLoad load_fleet(std::string_view yaml_text);

}  // namespace rollout::sim
