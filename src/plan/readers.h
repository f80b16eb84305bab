// Private to plan/: the readers of a plan's when (maintenance windows, freezes) and whom to
// tell (webhooks), which loader.cc calls for the plan and for each stage.
#pragma once

#include <string>
#include <vector>

#include "plan/model.h"
#include "yaml/document.h"
#include "yaml/reader.h"

namespace rollout::plan::detail {

std::vector<Window> read_windows(yaml::Reader& r, const yaml::Node& n, const std::string& where);
std::vector<Freeze> read_freezes(yaml::Reader& r, const yaml::Node& n, const std::string& where);
std::vector<Webhook> read_notify(yaml::Reader& r, const yaml::Node& n);

}  // namespace rollout::plan::detail
