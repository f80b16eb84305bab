// The body of POST deploy_update, built to the byte of the seed page's example:
// the same keys in the same order, every filter value a string.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "upswift/filter.h"

namespace rollout::upswift {

struct AppVersion {
  std::string name;
  std::string version;
  bool operator==(const AppVersion&) const = default;
};

struct DeployRequest {
  std::string flow_id;
  std::string project;
  std::vector<std::string> groups;  // devices in ANY of them
  std::vector<Filter> filters;      // ANDed on top
  std::optional<std::string> comment;
  std::optional<AppVersion> app;
  bool operator==(const DeployRequest&) const = default;
};

// What is written in place of the token wherever a body is shown or stored.
inline constexpr std::string_view kRedactedToken = "<redacted>";

// Compact JSON, keys in the seed's order:
// {"user_token":..,"flow_id":..,"devices_filter":{"project":{"name":..},"groups":[{"name":..}],
//  "filters":[{"type":..,"operand":..,"value":..}]},"metadata":{"comment":..,"app":{..}}}
std::string deploy_update_body(const DeployRequest& request, std::string_view user_token);

}  // namespace rollout::upswift
