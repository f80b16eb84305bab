#include "engine/markers.h"

#include <algorithm>

#include <fmt/format.h>

namespace rollout::engine {

std::string dispatch_marker(const std::string& run_id, const std::string& stage) {
  return fmt::format("[rollout {}/{}]", run_id, stage);
}

std::string rollback_marker(const std::string& run_id, const std::string& stage, int retry) {
  const std::string marker = fmt::format("[rollout {}/{}/rollback]", run_id, stage);
  return retry > 0 ? fmt::format("{} (retry {})", marker, retry) : marker;
}

std::string call_marker(const std::string& run_id, const std::string& stage, int retry) {
  const std::string marker = dispatch_marker(run_id, stage);
  return retry > 0 ? fmt::format("{} (retry {})", marker, retry) : marker;
}

std::string with_marker(const std::optional<std::string>& comment, const std::string& marker) {
  return comment ? fmt::format("{} {}", *comment, marker) : marker;
}

std::string retry_key(const std::string& stage, int attempt) {
  return fmt::format("{}/retry-{}", stage, attempt);
}

std::string rollback_retry_key(const std::string& stage, int attempt) {
  return fmt::format("{}/rollback-retry-{}", stage, attempt);
}

bool is_crash_point(std::string_view name) {
  return std::find(kCrashPoints.begin(), kCrashPoints.end(), name) != kCrashPoints.end();
}

}  // namespace rollout::engine
