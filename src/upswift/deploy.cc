#include "upswift/deploy.h"

#include <nlohmann/json.hpp>

namespace rollout::upswift {

namespace {

// The loaders reject invalid UTF-8; this keeps a stray byte from ever throwing here.
constexpr auto kReplaceInvalid = nlohmann::ordered_json::error_handler_t::replace;

nlohmann::ordered_json to_json(const DeployRequest& r, std::string_view token) {
  using nlohmann::ordered_json;
  ordered_json groups = ordered_json::array();
  for (const std::string& g : r.groups) groups.push_back({{"name", g}});
  ordered_json filters = ordered_json::array();
  for (const Filter& f : r.filters) {
    filters.push_back({{"type", name(f.type)}, {"operand", name(f.operand)}, {"value", f.value}});
  }
  ordered_json metadata = ordered_json::object();
  if (r.comment) metadata["comment"] = *r.comment;
  if (r.app) metadata["app"] = {{"name", r.app->name}, {"version", r.app->version}};

  ordered_json body = ordered_json::object();
  body["user_token"] = token;
  body["flow_id"] = r.flow_id;
  body["devices_filter"] = {
      {"project", {{"name", r.project}}}, {"groups", groups}, {"filters", filters}};
  body["metadata"] = metadata;
  return body;
}

}  // namespace

std::string deploy_update_body(const DeployRequest& request, std::string_view user_token) {
  return to_json(request, user_token).dump(-1, ' ', false, kReplaceInvalid);
}

}  // namespace rollout::upswift
