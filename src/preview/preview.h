// What a plan will do against the fleet as it is now: the devices each stage targets,
// online and offline among them, devices two stages target, devices no stage reaches, the
// API calls the run will need and the shortest time it can take. `rollout plan` shows and
// saves it; `rollout apply --plan-file` reads the fleet again and refuses a stale one.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "dag/graph.h"
#include "plan/model.h"
#include "state/records.h"
#include "upswift/fleet_api.h"
#include "util/time.h"

namespace rollout::preview {

struct StagePreview {
  std::string name;
  // Its filters look at update_status or device_state: the engine reads them again when
  // it dispatches, so what is shown here is only what they select now.
  bool dynamic = false;
  std::vector<state::SnapshotDevice> devices;  // by device_id; a sampled stage's candidates
  // What it selects without its update_status and app filters: when `devices` is empty but
  // these are not, everything is done and the stage will be skipped.
  std::int64_t candidates = 0;
  // A sampled stage: how many it will draw, its candidates less the devices the stages
  // before it target (the draw itself is made per run, at the stage's start).
  std::optional<std::int64_t> sample_size;
  std::int64_t online = 0;
  std::int64_t offline = 0;
  std::int64_t listing_pages = 0;  // devices_details pages in one listing of its candidates
  std::int64_t state_pages = 0;    // get_devices_state pages, when its filters need them
  std::int64_t min_polls = 0;      // its gate passing as soon as the bake ends
  std::int64_t max_polls = 0;      // its gate running to its timeout
};

struct Overlap {
  state::SnapshotDevice device;
  std::vector<std::string> stages;
};

struct ApiEstimate {
  std::int64_t deploy_updates = 0;
  std::int64_t min_calls = 0;  // every call, every gate passing as soon as its bake ends
  std::int64_t max_calls = 0;  // every gate running to its timeout
};

struct CriticalPath {
  std::vector<std::string> stages;
  Millis shortest{0};     // the bakes along it: the run cannot take less
  bool approval = false;  // a stage on it also waits for a person
};

struct Preview {
  std::string plan_name;
  std::vector<std::string> projects;  // the projects the stages name
  std::int64_t project_devices = 0;   // in those projects
  std::int64_t project_online = 0;
  std::vector<StagePreview> stages;  // in plan order
  std::vector<Overlap> overlaps;
  std::vector<state::SnapshotDevice> unreached;  // devices of the project no stage targets
  ApiEstimate api;
  CriticalPath critical_path;
};

// The pure parts, from what the listings found. Overlaps are between stages whose
// selection does not depend on update or online state and is not sampled (a sample leaves
// out what earlier stages target).
std::int64_t min_polls(const plan::Gate& gate);
std::int64_t max_polls(const plan::Gate& gate);
std::vector<Overlap> find_overlaps(const std::vector<StagePreview>& stages);
std::vector<state::SnapshotDevice> find_unreached(const std::vector<StagePreview>& stages,
                                                  const std::vector<state::SnapshotDevice>& all);
ApiEstimate estimate_calls(const std::vector<StagePreview>& stages);
CriticalPath critical_path(const plan::Plan& plan, const dag::Graph& graph);

// What makes a saved preview stale: one line per stage whose selection is not what it was
// (stages with dynamic filters are not compared: they are read again at dispatch anyway).
std::vector<std::string> stale_stages(const Preview& saved, const Preview& now);

// Reads the fleet through `api` (one listing of the project's devices and states, one of
// each stage's candidates) and calls `done` once.
void build_preview(upswift::FleetApi& api, const plan::Plan& plan, const dag::Graph& graph,
                   std::function<void(upswift::Result<Preview>)> done);

}  // namespace rollout::preview
