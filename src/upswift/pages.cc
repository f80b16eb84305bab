// The two listings' 200 answers read into pages, with simdjson: the answer is indexed once
// (a parser kept per thread reuses its buffers) and each device is copied out of it, with no
// tree of JSON values built in between. Required fields of the wrong type, or missing, make
// the whole page unreadable, and `why` says where.
#include <simdjson.h>

#include <fmt/format.h>

#include "upswift/api.h"

namespace rollout::upswift {

namespace {

namespace dom = simdjson::dom;

struct Unreadable {
  std::string why;
};

template <typename T>
T need(simdjson::simdjson_result<T> r, const char* what) {
  T value{};
  if (const auto error = std::move(r).get(value); error != simdjson::SUCCESS)
    throw Unreadable{fmt::format("{}: {}", what, simdjson::error_message(error))};
  return value;
}

// A field that may be absent or null: false then.
bool optional(dom::object o, std::string_view key, dom::element& out) {
  return o[key].get(out) == simdjson::SUCCESS && !out.is_null();
}

void text(dom::object o, const char* key, std::string& out) {
  dom::element e;
  if (optional(o, key, e)) out = need(e.get_string(), key);
}

// Fields only shown to people, whose type the docs do not give (last_keepalive may be a time
// string or a number): taken as text whatever their JSON type, never an error.
void shown(dom::object o, const char* key, ShownTime& out) {
  dom::element e;
  if (!optional(o, key, e)) return;
  std::string_view s;
  out.text = e.get_string().get(s) == simdjson::SUCCESS ? std::string(s) : simdjson::minify(e);
}

dom::parser& parser() {
  thread_local dom::parser p;
  return p;
}

// {"more": bool, "message": [...]}: `each` reads one element of the message.
template <typename Page, typename Each>
std::optional<Page> read_page(std::string_view body, std::string* why, Each each) {
  std::optional<std::size_t> at;  // the element of the message being read
  try {
    dom::element root;
    if (const auto error = parser().parse(body.data(), body.size()).get(root))
      throw Unreadable{fmt::format("not JSON: {}", simdjson::error_message(error))};
    const dom::object answer = need(root.get_object(), "the answer");
    Page page;
    page.more = need(answer["more"].get_bool(), "more");
    const dom::array message = need(answer["message"].get_array(), "message");
    at = 0;
    for (dom::element item : message) {
      each(page, need(item.get_object(), "a device"));
      ++*at;
    }
    return page;
  } catch (const Unreadable& u) {
    if (why) *why = at ? fmt::format("message[{}]: {}", *at, u.why) : u.why;
    return std::nullopt;
  }
}

}  // namespace

std::optional<DevicesPage> parse_devices_page(std::string_view body, std::string* why) {
  return read_page<DevicesPage>(body, why, [](DevicesPage& page, dom::object d) {
    Device& dev = page.devices.emplace_back();
    dev.device_id = need(d["device_id"].get_int64(), "device_id");
    dev.device_uuid = need(d["device_uuid"].get_string(), "device_uuid");
    text(d, "device_name", dev.device_name);
    text(d, "project", dev.project);
    text(d, "group", dev.group);
    dom::element e;
    if (optional(d, "tags", e)) {
      std::vector<std::string> tags;
      for (dom::element tag : need(e.get_array(), "tags"))
        tags.emplace_back(need(tag.get_string(), "tags"));
      dev.tags = std::move(tags);
    }
    shown(d, "last_keepalive", dev.last_keepalive);
    bool trigger = false;
    if (optional(d, "is_update_trigger_set", e) && e.get_bool().get(trigger) == simdjson::SUCCESS)
      dev.is_update_trigger_set = trigger;
    if (optional(d, "apps", e) && e.is_array()) {
      std::vector<AppVersion> apps;
      for (dom::element app : need(e.get_array(), "apps")) {
        const dom::object a = need(app.get_object(), "apps");
        apps.push_back({std::string(need(a["name"].get_string(), "apps: name")),
                        std::string(need(a["version"].get_string(), "apps: version"))});
      }
      dev.apps = std::move(apps);
    }
    if (optional(d, "updates", e) && e.is_array()) {
      for (dom::element update : need(e.get_array(), "updates")) {
        const dom::object u = need(update.get_object(), "updates");
        UpdateRecord& r = dev.updates.emplace_back();
        r.update_id = need(u["update_id"].get_int64(), "updates: update_id");
        r.update_status = need(u["update_status"].get_string(), "updates: update_status");
        text(u, "update_version", r.update_version);
        std::string comment;
        text(u, "comment", comment);
        r.comment = std::move(comment);
        shown(u, "deployment_schedule_time", r.deployment_schedule_time);
      }
    }
  });
}

std::optional<StatesPage> parse_states_page(std::string_view body, std::string* why) {
  return read_page<StatesPage>(body, why, [](StatesPage& page, dom::object s) {
    DeviceState& st = page.states.emplace_back();
    st.device_uuid = need(s["device_uuid"].get_string(), "device_uuid");
    text(s, "device_name", st.device_name);
    st.device_status = need(s["device_status"].get_string(), "device_status");
  });
}

}  // namespace rollout::upswift
