// What the engine sees of Upswift: three asynchronous calls. The real client (over
// libcurl) and the tests' fakes implement it; the engine never sees HTTP.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "upswift/api.h"
#include "upswift/deploy.h"

namespace rollout::upswift {

enum class CallStatus {
  ok,
  refused,          // 400: Upswift said no, and why (error_message)
  unknown_outcome,  // deploy_update only: sent, but no answer; it may or may not have applied
  failed,           // could not be done within the retry budget; certainly not applied
};

std::string_view name(CallStatus s);

struct CallError {
  CallStatus status = CallStatus::ok;
  int http_status = 0;  // 0 when no answer came
  std::string message;  // for a person: Upswift's error_message quoted, or what went wrong
  int attempts = 0;
};

template <typename T>
struct Result {
  std::optional<T> value;
  CallError error;
  bool ok() const { return value.has_value(); }
};

struct Accepted {};  // deploy_update's {"message": "Success"}

class FleetApi {
 public:
  virtual ~FleetApi() = default;

  // Completion handlers are never called from inside the call that starts the operation.
  virtual void deploy_update(const DeployRequest& request,
                             std::function<void(Result<Accepted>)> done) = 0;
  virtual void devices_details(const DevicesQuery& query,
                               std::function<void(Result<DevicesPage>)> done) = 0;
  virtual void get_devices_state(const StatesQuery& query,
                                 std::function<void(Result<StatesPage>)> done) = 0;
};

// Every device of a project (or one group), 50 at a time: `page` gets each page as it
// arrives and nothing is kept, so a listing costs one page of memory whatever the fleet's
// size; then `done` gets how it ended (status ok, or the error that stopped it).
void for_each_device_page(FleetApi& api, const std::string& project,
                          const std::optional<std::string>& group,
                          std::function<void(std::vector<Device>& page)> page,
                          std::function<void(const CallError& ended)> done);

// The same listing, collected.
void list_all_devices(FleetApi& api, const std::string& project,
                      const std::optional<std::string>& group,
                      std::function<void(Result<std::vector<Device>>)> done);

}  // namespace rollout::upswift
