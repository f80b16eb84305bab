#include "engine/run.h"

#include <ctime>

#include <fmt/format.h>

#include "util/sha256.h"

namespace rollout::engine {

std::string new_run_id(WallTime now, std::mt19937_64& rng) {
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  return fmt::format("r-{}-{:04x}", stamp, std::uniform_int_distribution<int>(0, 0xffff)(rng));
}

state::RunRecord create_run(state::StateStore& store, const plan::Plan& plan,
                            const RunOrigin& origin, const std::string& run_id, WallTime now) {
  state::RunRecord run;
  run.id = run_id;
  run.plan_name = plan.name;
  run.plan_path = origin.plan_path;
  run.plan_text = origin.plan_text;
  run.plan_hash = sha256_hex(origin.plan_text);
  run.created_by = origin.user;
  run.host = origin.host;
  run.api_url = origin.api_url;
  run.status = "running";
  run.created_at = now;
  run.updated_at = now;
  std::vector<state::StageRecord> stages;
  for (std::size_t i = 0; i < plan.stages.size(); ++i) {
    state::StageRecord s;
    s.run_id = run_id;
    s.name = plan.stages[i].name;
    s.position = static_cast<int>(i);
    stages.push_back(s);
  }
  store.create_run(run, stages);
  return run;
}

}  // namespace rollout::engine
