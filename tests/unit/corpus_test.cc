// The plans in plans/ validate; every malformed plan in tests/plans/invalid/ yields exactly
// the diagnostics its "# expect:" lines name. The plan schema names exactly the loader's keys.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "check_plan.h"
#include "plan/keys.h"

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<fs::path> yaml_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".yaml") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

const fs::path kSource = ROLLOUT_SOURCE_DIR;

}  // namespace

TEST_CASE("every plan in plans/ and examples/demo/ validates without errors or warnings") {
  auto files = yaml_files(kSource / "plans");
  CHECK(files.size() >= 4);
  for (const auto& f : yaml_files(kSource / "examples/demo")) files.push_back(f);
  for (const auto& f : files) {
    CAPTURE(f);
    auto c = rollout::test::check_plan(slurp(f));
    CHECK(c.report == "");
    CHECK(c.graph);
  }
}

TEST_CASE("every malformed plan gets exactly its expected diagnostics") {
  auto files = yaml_files(kSource / "tests/plans/invalid");
  CHECK(files.size() >= 40);
  for (const auto& f : files) {
    CAPTURE(f);
    const std::string text = slurp(f);
    std::string expected;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("# expect: ", 0) != 0) continue;
      const std::string rest = line.substr(10);
      // A diagnostic about the whole file has no line and column.
      expected += (rest.rfind("error:", 0) == 0 ? "p.yaml: " : "p.yaml:") + rest + "\n";
    }
    REQUIRE_FALSE(expected.empty());
    auto c = rollout::test::check_plan(text);
    CHECK(c.report == expected);
    CHECK(c.loaded.diagnostics.has_errors());
  }
}

namespace {

std::set<std::string> schema_keys(const nlohmann::json& object) {
  std::set<std::string> out;
  for (const auto& [key, value] : object.at("properties").items()) out.insert(key);
  return out;
}

template <typename Keys>
std::set<std::string> loader_keys(const Keys& keys) {
  return {keys.begin(), keys.end()};
}

}  // namespace

TEST_CASE("schema/plan.schema.json knows exactly the loader's keys") {
  namespace k = rollout::plan::keys;
  const auto schema = nlohmann::json::parse(slurp(kSource / "schema/plan.schema.json"));
  const auto& defs = schema.at("definitions");
  CHECK(schema_keys(schema) == loader_keys(k::kPlan));
  CHECK(schema_keys(schema.at("properties").at("defaults")) == loader_keys(k::kDefaults));
  CHECK(schema_keys(defs.at("gate")) == loader_keys(k::kGate));
  CHECK(schema_keys(defs.at("stage")) == loader_keys(k::kStage));
  CHECK(schema_keys(defs.at("filter")) == loader_keys(k::kFilter));
  CHECK(schema_keys(defs.at("sample")) == loader_keys(k::kSample));
  CHECK(schema_keys(defs.at("window")) == loader_keys(k::kWindow));
  CHECK(schema_keys(defs.at("freeze")) == loader_keys(k::kFreeze));
  CHECK(schema_keys(defs.at("notify")) == loader_keys(k::kNotify));
  CHECK(schema_keys(defs.at("app")) == loader_keys(k::kApp));
  CHECK(schema_keys(defs.at("on_failure")) == loader_keys(k::kOnFailure));
  CHECK(schema_keys(defs.at("rollback")) == loader_keys(k::kRollback));
  CHECK(schema_keys(defs.at("api")) == loader_keys(k::kApi));
  CHECK(schema_keys(defs.at("ramp")) == loader_keys(k::kRamp));
  CHECK(schema_keys(defs.at("abort_when")) == loader_keys(k::kAbortWhen));
  const auto on_timeout = defs.at("gate").at("properties").at("on_timeout").at("enum");
  CHECK(std::set<std::string>(on_timeout.begin(), on_timeout.end()) ==
        loader_keys(k::kOnTimeoutValues));
}
