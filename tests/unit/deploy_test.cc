#include <doctest/doctest.h>

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
