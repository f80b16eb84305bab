#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>

#include "cli/command.h"
#include "client/upswift_client.h"
#include "plan/loader.h"

namespace rollout::cli {

std::optional<CheckedPlan> load_checked_plan(const std::string& path) {
  std::string why;
  auto text = read_file(path, &why);
  if (!text) {
    std::cerr << fmt::format("{}: error: cannot read the plan: {}\n", path, why);
    return std::nullopt;
  }
  plan::LoadResult loaded = plan::load_plan(*text);
  std::optional<dag::Graph> graph;
  if (loaded.plan) graph = dag::build(*loaded.plan, loaded.diagnostics);
  std::cerr << loaded.diagnostics.format(path);
  if (loaded.diagnostics.has_errors() || !graph) {
    std::cerr << fmt::format("{}: {} error(s); nothing was sent\n", path,
                             loaded.diagnostics.error_count());
    return std::nullopt;
  }
  // What apply would refuse before sending, validate refuses too: the same check.
  if (loaded.plan->api.url) {
    if (auto refused = client::check_base_url(*loaded.plan->api.url)) {
      std::cerr << fmt::format("{}: error: api.url: {}\n{}: 1 error(s); nothing was sent\n", path,
                               *refused, path);
      return std::nullopt;
    }
  }
  return CheckedPlan{path, std::move(*text), std::move(*loaded.plan), std::move(*graph)};
}

std::optional<CheckedPlan> check_stored_plan(const std::string& run_id, const std::string& path,
                                             const std::string& text) {
  plan::LoadResult loaded = plan::load_plan(text);
  std::optional<dag::Graph> graph;
  if (loaded.plan) graph = dag::build(*loaded.plan, loaded.diagnostics);
  if (loaded.diagnostics.has_errors() || !graph) {
    std::cerr << "rollout: the plan stored with run " << run_id << " does not load:\n"
              << loaded.diagnostics.format(path);
    return std::nullopt;
  }
  return CheckedPlan{path, text, std::move(*loaded.plan), std::move(*graph)};
}

}  // namespace rollout::cli
