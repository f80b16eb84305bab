#include "upswift/fleet_api.h"

#include <memory>

namespace rollout::upswift {

std::string_view name(CallStatus s) {
  switch (s) {
    case CallStatus::ok:
      return "ok";
    case CallStatus::refused:
      return "refused";
    case CallStatus::unknown_outcome:
      return "unknown_outcome";
    case CallStatus::failed:
      return "failed";
  }
  return "failed";
}

namespace {

struct Lister : std::enable_shared_from_this<Lister> {
  FleetApi& api;
  DevicesQuery query;
  std::vector<Device> devices;
  std::function<void(Result<std::vector<Device>>)> done;

  Lister(FleetApi& a, DevicesQuery q, std::function<void(Result<std::vector<Device>>)> d)
      : api(a), query(std::move(q)), done(std::move(d)) {}

  void next() {
    api.devices_details(query, [self = shared_from_this()](Result<DevicesPage> page) {
      if (!page.ok()) {
        self->done({std::nullopt, page.error});
        return;
      }
      for (Device& d : page.value->devices) self->devices.push_back(std::move(d));
      if (!page.value->more || page.value->devices.empty()) {
        self->done({std::move(self->devices), {}});
        return;
      }
      self->query.offset = self->devices.back().device_id;
      self->next();
    });
  }
};

}  // namespace

void list_all_devices(FleetApi& api, const std::string& project,
                      const std::optional<std::string>& group,
                      std::function<void(Result<std::vector<Device>>)> done) {
  DevicesQuery q;
  q.project_name = project;
  q.group_name = group;
  q.limit = kMaxPageSize;
  std::make_shared<Lister>(api, std::move(q), std::move(done))->next();
}

}  // namespace rollout::upswift
