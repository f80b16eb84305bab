// libFuzzer target over the plan loader, validator and DAG: any input must give
// diagnostics or a usable plan, never a crash, a hang or a sanitizer report.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "dag/graph.h"
#include "plan/loader.h"
#include "upswift/deploy.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  rollout::plan::LoadResult loaded = rollout::plan::load_plan(text);
  if (!loaded.plan) {
    if (!loaded.diagnostics.has_errors()) std::abort();  // unreadable must say why
    return 0;
  }
  auto graph = rollout::dag::build(*loaded.plan, loaded.diagnostics);
  (void)loaded.diagnostics.format("fuzz.yaml");
  if (loaded.diagnostics.has_errors() || !graph) return 0;
  // A plan that passed validation must be fully usable.
  if (graph->order.size() != loaded.plan->stages.size()) std::abort();
  for (const auto& stage : loaded.plan->stages) {
    if (stage.flow_id.empty() || stage.project.empty()) std::abort();
    if (stage.groups.empty() && stage.filters.empty()) std::abort();
    (void)rollout::upswift::deploy_update_body(stage.deploy_request(), "t");
  }
  (void)rollout::dag::to_dot(*loaded.plan, *graph);
  (void)rollout::dag::to_mermaid(*loaded.plan, *graph);
  return 0;
}
