#include "upswift/fleet_api.h"

#include <memory>
#include <unordered_set>

#include <fmt/format.h>

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
  std::function<void(std::vector<Device>&)> page;
  std::function<void(const CallError&)> done;
  PagingGuard<std::int64_t> guard{"devices_details"};

  Lister(FleetApi& a, DevicesQuery q, std::function<void(std::vector<Device>&)> p,
         std::function<void(const CallError&)> d)
      : api(a), query(std::move(q)), page(std::move(p)), done(std::move(d)) {}

  void next() {
    api.devices_details(query, [self = shared_from_this()](Result<DevicesPage> r) {
      if (!r.ok()) return self->done(r.error);
      std::vector<Device>& devices = r.value->devices;
      const bool last = !r.value->more || devices.empty();
      if (auto why = self->guard.check(devices, [](const Device& d) { return d.device_id; })) {
        return self->done(CallError{CallStatus::failed, 200, *why, r.error.attempts});
      }
      if (!last) self->query.offset = devices.back().device_id;
      self->page(devices);
      if (last) return self->done(CallError{});
      self->next();
    });
  }
};

}  // namespace

void for_each_device_page(FleetApi& api, const std::string& project,
                          const std::optional<std::string>& group,
                          std::function<void(std::vector<Device>&)> page,
                          std::function<void(const CallError&)> done) {
  DevicesQuery q;
  q.project_name = project;
  q.group_name = group;
  q.limit = kMaxPageSize;
  std::make_shared<Lister>(api, std::move(q), std::move(page), std::move(done))->next();
}

void list_all_devices(FleetApi& api, const std::string& project,
                      const std::optional<std::string>& group,
                      std::function<void(Result<std::vector<Device>>)> done) {
  auto all = std::make_shared<std::vector<Device>>();
  for_each_device_page(
      api, project, group,
      [all](std::vector<Device>& page) {
        for (Device& d : page) all->push_back(std::move(d));
      },
      [all, done = std::move(done)](const CallError& ended) {
        if (ended.status != CallStatus::ok) return done({std::nullopt, ended});
        done({std::move(*all), {}});
      });
}

}  // namespace rollout::upswift
