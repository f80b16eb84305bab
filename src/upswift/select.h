// Which devices a deploy_update selects, by the seed page's rules: devices of the project,
// in ANY of the listed groups (all devices when the list is empty), matching EVERY filter.
// One definition, used by the simulator to act and by the engine to snapshot a stage.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "upswift/deploy.h"

namespace rollout::upswift {

// What selection looks at, for one device at one moment.
struct DeviceFacts {
  const std::string* uuid = nullptr;
  const std::string* project = nullptr;
  const std::string* group = nullptr;
  const std::vector<std::string>* tags = nullptr;
  std::vector<std::string> app_names;
  bool online = true;
  std::optional<std::string> last_update_status;  // none: the device never had an update
};

bool selects(const DeployRequest& request, const DeviceFacts& device);

// Whether selecting needs the devices' online state (a device_state filter), which
// devices_details does not carry and get_devices_state must supply.
bool needs_online_state(const DeployRequest& request);

// Whether the request leaves out devices by what they have (update_status or app filters):
// such a stage finds nothing once every candidate has the update. The same request without
// those filters selects its candidates.
bool narrows_by_update(const DeployRequest& request);
DeployRequest without_update_filters(DeployRequest request);

}  // namespace rollout::upswift
