#include "upswift/api.h"

#include <algorithm>
#include <array>
#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace rollout::upswift {

namespace {

// Bodies we send keep their fields in the documented order. (The listings' answers are read
// in pages.cc.)
using Json = nlohmann::ordered_json;
constexpr auto kReplaceInvalid = Json::error_handler_t::replace;

std::string dump(const Json& j) {
  return j.dump(-1, ' ', false, kReplaceInvalid);
}

}  // namespace

std::string format_utc(std::int64_t seconds) {
  // A listing shows the same few seconds for every device (now, each stage's dispatch): the
  // last few are kept, per thread (a simulator's server and a rehearsal run apart).
  struct Kept {
    std::int64_t seconds = -1;
    std::string text;
  };
  thread_local std::array<Kept, 8> kept;
  thread_local std::size_t next = 0;
  for (const Kept& k : kept) {
    if (k.seconds == seconds) return k.text;
  }
  const auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  Kept& slot = kept[next++ % kept.size()];
  slot = {seconds, buf};
  return slot.text;
}

std::string devices_details_body(const DevicesQuery& q, std::string_view user_token) {
  Json body{{"user_token", user_token}};
  if (q.device_token) body["device_token"] = *q.device_token;
  if (!q.project_name.empty()) body["project_name"] = q.project_name;
  if (q.group_name) body["group_name"] = *q.group_name;
  if (q.device_name) body["device_name"] = *q.device_name;
  body["limit"] = q.limit;
  if (q.offset) body["offset"] = *q.offset;
  return dump(body);
}

std::string get_devices_state_body(const StatesQuery& q, std::string_view user_token) {
  Json body{{"user_token", user_token}};
  if (!q.project_name.empty()) body["project_name"] = q.project_name;
  if (q.group_name) body["group_name"] = *q.group_name;
  body["limit"] = q.limit;
  if (q.offset) body["offset"] = *q.offset;
  return dump(body);
}

std::optional<std::string> parse_error_message(std::string_view body) {
  try {
    const Json j = Json::parse(body);
    if (auto it = j.find("error_message"); it != j.end() && it->is_string())
      return it->get<std::string>();
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

std::optional<std::string> check_deploy_accepted(std::string_view body) {
  Json j;
  try {
    j = Json::parse(body);
  } catch (const std::exception&) {
    return body.empty() ? "an empty body" : fmt::format("{} bytes that are not JSON", body.size());
  }
  if (!j.is_object()) return "JSON that is not an object";
  const auto it = j.find("message");
  if (it == j.end()) return "a JSON object without \"message\"";
  if (!it->is_string() || it->get<std::string>() != "Success")
    return "a \"message\" other than \"Success\"";
  return std::nullopt;
}

std::string devices_page_json(const DevicesPage& page) {
  Json devices = Json::array();
  for (const Device& d : page.devices) {
    Json apps = Json::array();
    for (const AppVersion& a : d.apps) apps.push_back({{"name", a.name}, {"version", a.version}});
    Json updates = Json::array();
    for (const UpdateRecord& u : d.updates) {
      updates.push_back({{"update_id", u.update_id},
                         {"update_status", u.update_status},
                         {"update_version", u.update_version},
                         {"comment", u.comment.str()},
                         {"deployment_schedule_time", u.deployment_schedule_time.shown()}});
    }
    devices.push_back({{"device_id", d.device_id},
                       {"device_uuid", d.device_uuid},
                       {"device_name", d.device_name},
                       {"project", d.project},
                       {"group", d.group},
                       {"tags", d.tags.items()},
                       {"last_keepalive", d.last_keepalive.shown()},
                       {"is_update_trigger_set", d.is_update_trigger_set},
                       {"apps", apps},
                       {"updates", updates}});
  }
  return dump(Json{{"more", page.more}, {"message", devices}});
}

std::string states_page_json(const StatesPage& page) {
  Json states = Json::array();
  for (const DeviceState& s : page.states) {
    states.push_back({{"device_uuid", s.device_uuid},
                      {"device_name", s.device_name},
                      {"device_status", s.device_status}});
  }
  return dump(Json{{"more", page.more}, {"message", states}});
}

std::string success_json() {
  return R"({"message": "Success"})";
}

std::string error_json(std::string_view message) {
  return dump(Json{{"error_message", message}});
}

std::string redact_token(std::string_view json_body) {
  try {
    Json j = Json::parse(json_body);
    if (j.is_object() && j.contains("user_token")) j["user_token"] = kRedactedToken;
    return dump(j);
  } catch (const std::exception&) {
    // Not JSON: never echo it, it might hold a token in some other shape.
    return std::string("<unparseable body of ") + std::to_string(json_body.size()) + " bytes>";
  }
}

}  // namespace rollout::upswift

namespace rollout::upswift {

namespace {

// Reads a required string field, or says what is wrong with it.
std::optional<std::string> string_field(const Json& j, const char* key, std::string& error,
                                        const char* where) {
  auto it = j.find(key);
  if (it == j.end()) {
    error = fmt::format("{}{} is missing", where, key);
    return std::nullopt;
  }
  if (!it->is_string()) {
    error = fmt::format("{}{} must be a string", where, key);
    return std::nullopt;
  }
  return it->get<std::string>();
}

std::optional<Json> parse_object(std::string_view body, std::string& error) {
  try {
    Json j = Json::parse(body);
    if (!j.is_object()) {
      error = "the body must be a JSON object";
      return std::nullopt;
    }
    return j;
  } catch (const std::exception&) {
    error = "the body is not valid JSON";
    return std::nullopt;
  }
}

std::optional<int> page_limit(const Json& j, std::string& error) {
  auto it = j.find("limit");
  if (it == j.end()) return kDefaultPageSize;
  if (!it->is_number_integer() || it->get<std::int64_t>() < 1) {
    error = "limit must be a whole number, at least 1";
    return std::nullopt;
  }
  // "max 50": more is answered with 50.
  return static_cast<int>(std::min<std::int64_t>(it->get<std::int64_t>(), kMaxPageSize));
}

}  // namespace

DeployParse parse_deploy_update(std::string_view body) {
  DeployParse out;
  auto j = parse_object(body, out.error);
  if (!j) return out;
  ParsedDeploy p;
  auto token = string_field(*j, "user_token", out.error, "");
  if (!token) return out;
  p.user_token = *token;
  auto flow = string_field(*j, "flow_id", out.error, "");
  if (!flow) return out;
  p.request.flow_id = *flow;
  auto filter = j->find("devices_filter");
  if (filter == j->end() || !filter->is_object()) {
    out.error = "devices_filter is missing or not an object";
    return out;
  }
  auto project = filter->find("project");
  if (project == filter->end() || !project->is_object()) {
    out.error = "devices_filter.project is missing or not an object";
    return out;
  }
  auto project_name = string_field(*project, "name", out.error, "devices_filter.project.");
  if (!project_name) return out;
  p.request.project = *project_name;
  auto groups = filter->find("groups");
  if (groups == filter->end() || !groups->is_array()) {
    out.error = "devices_filter.groups is missing or not a list";
    return out;
  }
  for (const Json& g : *groups) {
    if (!g.is_object()) {
      out.error = "each entry of devices_filter.groups must be an object with a name";
      return out;
    }
    auto name = string_field(g, "name", out.error, "devices_filter.groups[].");
    if (!name) return out;
    p.request.groups.push_back(*name);
  }
  if (auto filters = filter->find("filters"); filters != filter->end()) {
    if (!filters->is_array()) {
      out.error = "devices_filter.filters must be a list";
      return out;
    }
    for (const Json& f : *filters) {
      if (!f.is_object()) {
        out.error = "each filter must be an object with type, operand and value";
        return out;
      }
      auto type = string_field(f, "type", out.error, "filter ");
      if (!type) return out;
      auto operand = string_field(f, "operand", out.error, "filter ");
      if (!operand) return out;
      auto value = string_field(f, "value", out.error, "filter ");  // all values are strings
      if (!value) return out;
      if (auto why = check_filter(*type, *operand, *value)) {
        out.error = *why;
        return out;
      }
      p.request.filters.push_back({*parse_filter_type(*type), *parse_operand(*operand), *value});
    }
  }
  auto metadata = j->find("metadata");
  if (metadata == j->end() || !metadata->is_object()) {
    out.error = "metadata is missing or not an object";
    return out;
  }
  if (auto comment = metadata->find("comment"); comment != metadata->end()) {
    if (!comment->is_string()) {
      out.error = "metadata.comment must be a string";
      return out;
    }
    p.request.comment = comment->get<std::string>();
  }
  if (auto app = metadata->find("app"); app != metadata->end()) {
    if (!app->is_object()) {
      out.error = "metadata.app must be an object with name and version";
      return out;
    }
    auto name = string_field(*app, "name", out.error, "metadata.app.");
    if (!name) return out;
    auto version = string_field(*app, "version", out.error, "metadata.app.");
    if (!version) return out;
    p.request.app = AppVersion{*name, *version};
  }
  out.parsed = std::move(p);
  return out;
}

DevicesParse parse_devices_details(std::string_view body) {
  DevicesParse out;
  auto j = parse_object(body, out.error);
  if (!j) return out;
  auto token = string_field(*j, "user_token", out.error, "");
  if (!token) return out;
  out.user_token = *token;
  DevicesQuery q;
  if (j->contains("device_token")) {
    // One device; the docs say the rest of the body is then ignored.
    auto device_token = string_field(*j, "device_token", out.error, "");
    if (!device_token) return out;
    q.device_token = *device_token;
    out.query = std::move(q);
    return out;
  }
  // Only user_token is required: without project_name, the user's devices in every project.
  if (j->contains("project_name")) {
    auto project = string_field(*j, "project_name", out.error, "");
    if (!project) return out;
    q.project_name = *project;
  }
  if (j->contains("group_name")) {
    if (q.project_name.empty()) {
      out.error = "group_name is given without project_name";
      return out;
    }
    auto g = string_field(*j, "group_name", out.error, "");
    if (!g) return out;
    q.group_name = *g;
  }
  if (j->contains("device_name")) {
    auto d = string_field(*j, "device_name", out.error, "");
    if (!d) return out;
    q.device_name = *d;
  }
  auto limit = page_limit(*j, out.error);
  if (!limit) return out;
  q.limit = *limit;
  if (auto off = j->find("offset"); off != j->end()) {
    if (!off->is_number_integer()) {
      out.error = "offset must be the last device_id of the previous page";
      return out;
    }
    q.offset = off->get<std::int64_t>();
  }
  out.query = std::move(q);
  return out;
}

StatesParse parse_get_devices_state(std::string_view body) {
  StatesParse out;
  auto j = parse_object(body, out.error);
  if (!j) return out;
  auto token = string_field(*j, "user_token", out.error, "");
  if (!token) return out;
  out.user_token = *token;
  StatesQuery q;
  // As for devices_details: without project_name, every project's devices.
  if (j->contains("project_name")) {
    auto project = string_field(*j, "project_name", out.error, "");
    if (!project) return out;
    q.project_name = *project;
  }
  if (j->contains("group_name")) {
    if (q.project_name.empty()) {
      out.error = "group_name is given without project_name";
      return out;
    }
    auto g = string_field(*j, "group_name", out.error, "");
    if (!g) return out;
    q.group_name = *g;
  }
  auto limit = page_limit(*j, out.error);
  if (!limit) return out;
  q.limit = *limit;
  if (auto off = j->find("offset"); off != j->end()) {
    if (!off->is_string()) {
      out.error = "offset must be the last device_uuid of the previous page";
      return out;
    }
    q.offset = off->get<std::string>();
  }
  out.query = std::move(q);
  return out;
}

}  // namespace rollout::upswift
