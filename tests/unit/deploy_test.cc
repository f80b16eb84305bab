#include <doctest/doctest.h>

#include "upswift/api.h"
#include "upswift/deploy.h"

using namespace rollout::upswift;

TEST_CASE("the seed page's payload is reproduced byte for byte") {
  DeployRequest r;
  r.flow_id = "73a7-1ft8";
  r.project = "Demo";
  r.groups = {"TestGroup1", "TestGroup2"};
  r.filters = {{FilterType::specific_device, Operand::is, "d-4ec7-1be9"}};
  r.comment = "test webhook 1";
  r.app = AppVersion{"default_app", "v1.1"};
  CHECK(
      deploy_update_body(r, "<user token>") ==
      R"({"user_token":"<user token>","flow_id":"73a7-1ft8","devices_filter":{"project":{"name":"Demo"},)"
      R"("groups":[{"name":"TestGroup1"},{"name":"TestGroup2"}],"filters":[{"type":"specific_device",)"
      R"("operand":"is","value":"d-4ec7-1be9"}]},"metadata":{"comment":"test webhook 1","app":)"
      R"({"name":"default_app","version":"v1.1"}}})");
}

TEST_CASE("groups and filters are always present, metadata always an object") {
  DeployRequest r;
  r.flow_id = "f";
  r.project = "P";
  CHECK(
      deploy_update_body(r, kRedactedToken) ==
      R"({"user_token":"<redacted>","flow_id":"f","devices_filter":{"project":{"name":"P"},"groups":[],"filters":[]},"metadata":{}})");
}

TEST_CASE("strings are escaped as JSON") {
  DeployRequest r;
  r.flow_id = "f";
  r.project = "P \"quoted\"\n";
  CHECK(deploy_update_body(r, "t").find(R"("name":"P \"quoted\"\n")") != std::string::npos);
}

TEST_CASE("filter vocabulary checks") {
  CHECK_FALSE(check_filter("tag", "is", "x"));
  CHECK(check_filter("device_state", "is_not", "online") ==
        "filter type 'device_state' takes operand 'is', not 'is_not'");
  CHECK(check_filter("app", "is", "") == "filter type 'app' needs a non-empty value");
  CHECK(allowed_values(FilterType::update_status).size() == 5);
}

TEST_CASE("a devices page reads back what the simulator writes, shown times of any type as text") {
  Device d;
  d.device_id = 1001;
  d.device_uuid = "d-0001-aaaa";
  d.device_name = "eu-0001 \"quoted\" \u00e9";
  d.project = "Demo";
  d.group = "EU";
  d.tags = {"canary", "wave-1"};
  d.apps = {{"default_app", "v2.3"}, {"modem-fw", "7.1"}};
  d.last_keepalive.utc_seconds = 1'700'000'000;
  d.is_update_trigger_set = true;
  d.updates.push_back({5, "pending", "v2.4", "fw [rollout r-1/eu]", {{}, 1'700'000'060}});
  DevicesPage page;
  page.more = true;
  page.devices = {d, Device{1002, "d-0002-bbbb", "", "", "", {}, {}, {}, false, {}}};
  std::string why;
  const auto read = parse_devices_page(devices_page_json(page), &why);
  REQUIRE(read);
  CHECK(why.empty());
  CHECK(read->more);
  CHECK(read->devices == page.devices);
  CHECK(read->devices[0].last_keepalive.text == "2023-11-14 22:13:20");

  // Times only shown to people: whatever their JSON type, as text, never an error.
  const auto other = parse_devices_page(
      R"({"more": false, "message": [{"device_id": 7, "device_uuid": "u", "last_keepalive": 1700000000,)"
      R"( "updates": [{"update_id": 1, "update_status": "success", "deployment_schedule_time": {"t": [1, 2]}}]}]})",
      &why);
  REQUIRE(other);
  CHECK(other->devices[0].last_keepalive.shown() == "1700000000");
  CHECK(other->devices[0].updates[0].deployment_schedule_time.shown() == R"({"t":[1,2]})");
  CHECK(other->devices[0].tags.empty());
}

TEST_CASE("a devices page the contract does not describe is unreadable, and says where") {
  std::string why;
  CHECK_FALSE(parse_devices_page("<html>proxy error</html>", &why));
  CHECK(why.rfind("not JSON", 0) == 0);
  CHECK_FALSE(parse_devices_page(R"({"message": []})", &why));
  CHECK(why.rfind("more: ", 0) == 0);
  CHECK_FALSE(parse_devices_page("[1, 2]", &why));
  CHECK(why.rfind("the answer: ", 0) == 0);
  CHECK_FALSE(parse_devices_page(
      R"({"more": false, "message": [{"device_id": 1, "device_uuid": "a"}, {"device_uuid": "b"}]})",
      &why));
  CHECK(why.find("message[1]: device_id") == 0);
  CHECK_FALSE(parse_devices_page(
      R"({"more": false, "message": [{"device_id": "1", "device_uuid": "a"}]})", &why));
  CHECK(why.find("message[0]: device_id") == 0);
  CHECK_FALSE(parse_devices_page(
      R"({"more": false, "message": [{"device_id": 1, "device_uuid": "a", "tags": "x"}]})", &why));
  CHECK(why.find("tags") != std::string::npos);
  CHECK_FALSE(
      parse_devices_page(R"({"more": false, "message": [{"device_id": 1, "device_uuid": "a",)"
                         R"( "updates": [{"update_id": 2}]}]})",
                         &why));
  CHECK(why.find("update_status") != std::string::npos);
  CHECK_FALSE(
      parse_devices_page("{\"more\": false, \"message\": [{\"device_id\": 1, "
                         "\"device_uuid\": \"\xff\"}]}",
                         &why));  // not UTF-8
  const auto states = parse_states_page(
      R"({"more": true, "message": [{"device_uuid": "a", "device_status": "offline"}]})", &why);
  REQUIRE(states);
  CHECK(states->more);
  CHECK(states->states[0] == DeviceState{"a", "", "offline"});
  CHECK_FALSE(parse_states_page(R"({"more": true, "message": [{"device_uuid": "a"}]})", &why));
  CHECK(why.find("message[0]: device_status") == 0);
}
