// The rest of the Upswift v1 contract that rollout uses: devices_details and
// get_devices_state, as request bodies and parsed answers. Shared by the client and the
// simulator so both sides speak exactly the same JSON.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "upswift/deploy.h"

namespace rollout::upswift {

inline constexpr int kMaxPageSize = 50;
inline constexpr int kDefaultPageSize = 20;

// "2020-02-08 16:12:11": seconds since the Unix epoch as Upswift writes times, in UTC.
std::string format_utc(std::int64_t seconds);

// A time only shown to people, whose type the docs do not give: the text an answer gave, or
// where it is known as a number (the simulator's), the number, formatted only when shown.
struct ShownTime {
  std::string text;
  std::optional<std::int64_t> utc_seconds;
  std::string shown() const { return utc_seconds ? format_utc(*utc_seconds) : text; }
  bool operator==(const ShownTime& o) const { return shown() == o.shown(); }
};

// A list a device's views share instead of copying (its tags, its apps), read as a vector: a
// simulator lists the same thousands of devices, each with the same few tags and apps, at
// every poll.
template <typename T>
class SharedList {
 public:
  SharedList() = default;
  SharedList(std::vector<T> items)  // NOLINT: a list is one
      : items_(std::make_shared<const std::vector<T>>(std::move(items))) {}
  SharedList(std::initializer_list<T> items) : SharedList(std::vector<T>(items)) {}

  const std::vector<T>& items() const { return items_ ? *items_ : empty_list(); }
  auto begin() const { return items().begin(); }
  auto end() const { return items().end(); }
  std::size_t size() const { return items().size(); }
  bool empty() const { return items().empty(); }
  bool operator==(const SharedList& o) const { return items() == o.items(); }

 private:
  static const std::vector<T>& empty_list() {
    static const std::vector<T> none;
    return none;
  }
  std::shared_ptr<const std::vector<T>> items_;
};
using AppList = SharedList<AppVersion>;
using TagList = SharedList<std::string>;

// Text every view shares: an update's comment, the same on each device one call reached.
class SharedText {
 public:
  SharedText() = default;
  SharedText(std::string text)  // NOLINT: text is text
      : text_(std::make_shared<const std::string>(std::move(text))) {}
  SharedText(const char* text) : SharedText(std::string(text)) {}  // NOLINT

  const std::string& str() const {
    static const std::string none;
    return text_ ? *text_ : none;
  }
  bool operator==(const SharedText& o) const { return str() == o.str(); }

 private:
  std::shared_ptr<const std::string> text_;
};

struct UpdateRecord {
  std::int64_t update_id = 0;
  std::string update_status;  // pending, in_progress, success, failed, aborted
  std::string update_version;
  SharedText comment;
  ShownTime deployment_schedule_time;
  bool operator==(const UpdateRecord&) const = default;
};

struct Device {
  std::int64_t device_id = 0;
  std::string device_uuid;  // what specific_device filters take: "d-1234-1234"
  std::string device_name;
  std::string project;
  std::string group;
  TagList tags;
  AppList apps;  // not in the public docs; the simulator's documented reading
  ShownTime last_keepalive;
  bool is_update_trigger_set = false;
  std::vector<UpdateRecord> updates;  // oldest first; the last is the device's current update
  bool operator==(const Device&) const = default;
};

struct DevicesQuery {
  std::string project_name;               // empty: the user's devices in every project
  std::optional<std::string> group_name;  // only with a project_name
  std::optional<std::string> device_name;
  int limit = kMaxPageSize;
  std::optional<std::int64_t> offset;       // the last device_id of the previous page
  std::optional<std::string> device_token;  // one device; the rest of the query is ignored
};

struct DevicesPage {
  bool more = false;
  std::vector<Device> devices;
};

struct DeviceState {
  std::string device_uuid;
  std::string device_name;
  std::string device_status;  // online, offline: the contract's words
  bool online() const { return device_status == "online"; }
  bool operator==(const DeviceState&) const = default;
};

struct StatesQuery {
  std::string project_name;
  std::optional<std::string> group_name;
  int limit = kMaxPageSize;
  std::optional<std::string> offset;  // the last device_uuid of the previous page
};

struct StatesPage {
  bool more = false;
  std::vector<DeviceState> states;
};

std::string devices_details_body(const DevicesQuery& q, std::string_view user_token);
std::string get_devices_state_body(const StatesQuery& q, std::string_view user_token);

// 200 answers. nullopt (and `why`) when the body is not what the contract promises.
std::optional<DevicesPage> parse_devices_page(std::string_view body, std::string* why);
std::optional<StatesPage> parse_states_page(std::string_view body, std::string* why);
// The "error_message" of a 400 answer, or nullopt.
std::optional<std::string> parse_error_message(std::string_view body);

// deploy_update's 200 answer is {"message": "Success"}. Anything else under a 200 (an HTML
// page from a proxy or a captive portal, an empty body, another shape) is not Upswift's
// word that the update started. nullopt when it is; otherwise what it was instead.
std::optional<std::string> check_deploy_accepted(std::string_view body);

// The simulator's side: answers as JSON text.
std::string devices_page_json(const DevicesPage& page);
std::string states_page_json(const StatesPage& page);
std::string success_json();                        // {"message": "Success"}
std::string error_json(std::string_view message);  // {"error_message": "..."}

// Any JSON text with the "user_token" value replaced by "<redacted>", for logs.
// Text that is not a JSON object comes back as-is when it has no token-like content.
std::string redact_token(std::string_view json_body);

}  // namespace rollout::upswift

namespace rollout::upswift {

// The simulator's side of deploy_update: the body parsed and checked as Upswift would,
// or the error_message of a 400. The token is returned separately.
struct ParsedDeploy {
  DeployRequest request;
  std::string user_token;
};
struct DeployParse {
  std::optional<ParsedDeploy> parsed;
  std::string error;  // when !parsed
};
DeployParse parse_deploy_update(std::string_view body);

// The same for the two GET calls.
struct DevicesParse {
  std::optional<DevicesQuery> query;
  std::string user_token;
  std::string error;
};
DevicesParse parse_devices_details(std::string_view body);
struct StatesParse {
  std::optional<StatesQuery> query;
  std::string user_token;
  std::string error;
};
StatesParse parse_get_devices_state(std::string_view body);

}  // namespace rollout::upswift
