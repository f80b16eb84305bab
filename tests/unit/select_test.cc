// Which devices a deploy_update selects, by the contract's rules (src/upswift/README.md): the
// project, ANY of the groups (every group when none is listed), then EVERY filter, each `is`
// or `is_not`. A table of requests against one device, and the devices that never had an
// update, which match no update_status.
#include <doctest/doctest.h>

#include "upswift/select.h"

using namespace rollout::upswift;

namespace {

Filter filter(FilterType type, Operand operand, std::string value) {
  return {type, operand, std::move(value)};
}

struct Row {
  const char* what;
  std::vector<std::string> groups;
  std::vector<Filter> filters;
  bool selected;
  std::string project = "Demo";
};

}  // namespace

TEST_CASE("selects(): project, any group, every filter, is and is_not") {
  const std::string uuid = "d-1", project = "Demo", group = "EU";
  const std::vector<std::string> tags = {"lab", "beta"};
  DeviceFacts device;
  device.uuid = &uuid;
  device.project = &project;
  device.group = &group;
  device.tags = &tags;
  device.app_names = {"agent"};
  device.online = true;
  device.last_update_status = "success";
  using enum FilterType;
  using enum Operand;
  const std::vector<Row> rows = {
      {"no groups, no filters: the whole project", {}, {}, true},
      {"another project", {}, {}, false, "Other"},
      {"its group", {"EU"}, {}, true},
      {"any of the groups", {"US", "EU"}, {}, true},
      {"none of its groups", {"US", "APAC"}, {}, false},
      {"group names are exact", {"eu"}, {}, false},
      {"specific_device is", {}, {filter(specific_device, is, "d-1")}, true},
      {"specific_device is another", {}, {filter(specific_device, is, "d-2")}, false},
      {"specific_device is_not another", {}, {filter(specific_device, is_not, "d-2")}, true},
      {"tag is one of its tags", {}, {filter(tag, is, "beta")}, true},
      {"tag is one it lacks", {}, {filter(tag, is, "prod")}, false},
      {"tag is_not one of its tags", {}, {filter(tag, is_not, "lab")}, false},
      {"app is", {}, {filter(app, is, "agent")}, true},
      {"app is_not", {}, {filter(app, is_not, "agent")}, false},
      {"device_state is online", {}, {filter(device_state, is, "online")}, true},
      {"device_state is offline", {}, {filter(device_state, is, "offline")}, false},
      {"device_state is_not offline", {}, {filter(device_state, is_not, "offline")}, true},
      {"update_status is its last", {}, {filter(update_status, is, "success")}, true},
      {"update_status is another", {}, {filter(update_status, is, "failed")}, false},
      {"update_status is_not its last", {}, {filter(update_status, is_not, "success")}, false},
      {"update_status is_not another", {}, {filter(update_status, is_not, "failed")}, true},
      {"every filter must match (AND)",
       {},
       {filter(tag, is, "lab"), filter(update_status, is, "failed")},
       false},
      {"every filter matches",
       {"EU"},
       {filter(tag, is, "lab"), filter(device_state, is, "online"), filter(app, is, "agent")},
       true},
      {"the group and the filters: a filter fails", {"EU"}, {filter(tag, is_not, "beta")}, false},
  };
  for (const Row& row : rows) {
    const std::string what = row.what;
    CAPTURE(what);
    DeployRequest request;
    request.flow_id = "f";
    request.project = row.project;
    request.groups = row.groups;
    request.filters = row.filters;
    CHECK(selects(request, device) == row.selected);
  }
}

TEST_CASE("selects(): a device that never had an update matches no update_status") {
  const std::string uuid = "d-1", project = "Demo", group = "EU";
  const std::vector<std::string> tags;
  DeviceFacts fresh;
  fresh.uuid = &uuid;
  fresh.project = &project;
  fresh.group = &group;
  fresh.tags = &tags;
  fresh.online = false;
  DeployRequest request;
  request.project = "Demo";
  for (std::string_view status : kUpdateStatuses) {
    CAPTURE(std::string(status));
    request.filters = {{FilterType::update_status, Operand::is, std::string(status)}};
    CHECK_FALSE(selects(request, fresh));
    request.filters = {{FilterType::update_status, Operand::is_not, std::string(status)}};
    CHECK(selects(request, fresh));
  }
  request.filters = {{FilterType::device_state, Operand::is, "offline"}};
  CHECK(selects(request, fresh));
  CHECK(needs_online_state(request));
  request.filters = {{FilterType::tag, Operand::is_not, "lab"}};
  CHECK(selects(request, fresh));  // no tags: is_not any tag
  CHECK_FALSE(needs_online_state(request));
}
