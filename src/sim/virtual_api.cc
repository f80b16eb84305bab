#include "sim/virtual_api.h"

namespace rollout::sim {

namespace {

template <typename T, typename Outcome>
upswift::Result<T> page_result(Outcome outcome) {
  upswift::Result<T> result;
  if (outcome.error) {
    result.error = {upswift::CallStatus::refused, 400, *outcome.error, 1};
  } else {
    result.value = std::move(outcome.page);
  }
  return result;
}

}  // namespace

upswift::Result<upswift::Accepted> VirtualApi::apply(const upswift::DeployRequest& r) {
  upswift::Result<upswift::Accepted> result;
  auto outcome = fleet_.deploy(r, now());
  if (outcome.error) {
    result.error = {upswift::CallStatus::refused, 400,
                    "Upswift refused deploy_update: \"" + *outcome.error + "\"", 1};
  } else {
    result.value = upswift::Accepted{};
  }
  return result;
}

void VirtualApi::deploy_update(const upswift::DeployRequest& r,
                               std::function<void(upswift::Result<upswift::Accepted>)> done) {
  ++deploy_calls;
  answer(std::move(done), apply(r));
}

void VirtualApi::devices_details(const upswift::DevicesQuery& q,
                                 std::function<void(upswift::Result<upswift::DevicesPage>)> done) {
  ++details_calls;
  answer(std::move(done), page_result<upswift::DevicesPage>(fleet_.devices_details(q, now())));
}

void VirtualApi::get_devices_state(const upswift::StatesQuery& q,
                                   std::function<void(upswift::Result<upswift::StatesPage>)> done) {
  ++state_calls;
  answer(std::move(done), page_result<upswift::StatesPage>(fleet_.devices_state(q, now())));
}

}  // namespace rollout::sim
