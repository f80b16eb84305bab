// Private to plan/: the readers of a plan's when (maintenance windows, freezes) and whom to
// tell (webhooks), which loader.cc calls for the plan and for each stage.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "plan/model.h"
#include "yaml/document.h"
#include "yaml/reader.h"

namespace rollout::plan::detail {

std::vector<Window> read_windows(yaml::Reader& r, const yaml::Node& n, const std::string& where);
std::vector<Freeze> read_freezes(yaml::Reader& r, const yaml::Node& n, const std::string& where);
std::vector<Webhook> read_notify(yaml::Reader& r, const yaml::Node& n);

// A URL at `n` (its text `url`) that carries user:password@ is an error there, the URL
// named without them: plans are printed, diffed and stored. False when it carries none.
bool refuse_credentials(yaml::Reader& r, const yaml::Node& n, const std::string& url,
                        std::string_view what);

}  // namespace rollout::plan::detail
