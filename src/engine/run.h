// Starting a run: its id, and its records (the plan text and hash, who and where, every
// stage waiting), written in one transaction before anything is sent.
#pragma once

#include <random>
#include <string>

#include "plan/model.h"
#include "state/store.h"

namespace rollout::engine {

// "r-20261125-183012-4f2a": sortable by time, unique enough to type.
std::string new_run_id(WallTime now, std::mt19937_64& rng);

struct RunOrigin {
  std::string plan_path;
  std::string plan_text;
  std::string user;
  std::string host;
  std::string api_url;
};

state::RunRecord create_run(state::StateStore& store, const plan::Plan& plan,
                            const RunOrigin& origin, const std::string& run_id, WallTime now);

}  // namespace rollout::engine
