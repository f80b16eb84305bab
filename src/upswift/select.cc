#include "upswift/select.h"

#include <algorithm>

namespace rollout::upswift {

namespace {

template <typename Range, typename T>
bool contains(const Range& range, const T& value) {
  return std::find(range.begin(), range.end(), value) != range.end();
}

bool matches(const Filter& f, const DeviceFacts& d) {
  switch (f.type) {
    case FilterType::specific_device:
      return *d.uuid == f.value;
    case FilterType::tag:
      return contains(*d.tags, f.value);
    case FilterType::app:
      return contains(d.app_names, f.value);
    case FilterType::device_state:
      return (d.online ? "online" : "offline") == f.value;
    case FilterType::update_status:
      // The device's LAST update; a device that never had one matches no status.
      return d.last_update_status && *d.last_update_status == f.value;
  }
  return false;
}

}  // namespace

bool selects(const DeployRequest& request, const DeviceFacts& device) {
  if (*device.project != request.project) return false;
  if (!request.groups.empty() && !contains(request.groups, *device.group)) return false;
  for (const Filter& f : request.filters) {
    const bool match = matches(f, device);
    if (match != (f.operand == Operand::is)) return false;
  }
  return true;
}

bool needs_online_state(const DeployRequest& request) {
  return std::any_of(request.filters.begin(), request.filters.end(),
                     [](const Filter& f) { return f.type == FilterType::device_state; });
}

namespace {
bool is_update_filter(const Filter& f) {
  return f.type == FilterType::update_status || f.type == FilterType::app;
}
}  // namespace

bool narrows_by_update(const DeployRequest& request) {
  return std::any_of(request.filters.begin(), request.filters.end(), is_update_filter);
}

DeployRequest without_update_filters(DeployRequest request) {
  std::erase_if(request.filters, is_update_filter);
  return request;
}

}  // namespace rollout::upswift
