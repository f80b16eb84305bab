#include "cli/review.h"

#include <ctime>

#include <fmt/format.h>

#include "util/duration.h"

namespace rollout::cli {

std::string local_time(WallTime t) {
  const std::time_t s = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  localtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string iso_time(WallTime t) {
  const std::time_t s = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string span(WallTime from, WallTime to) {
  return format_duration(std::chrono::duration_cast<Seconds>(to - from));
}

StageTally tally(const std::vector<state::StageRecord>& stages) {
  StageTally t;
  t.total = static_cast<int>(stages.size());
  for (const auto& s : stages) t.done += s.status == "passed" ? 1 : 0;
  return t;
}

nlohmann::ordered_json to_json(const state::RunRecord& run,
                               const std::vector<state::StageRecord>& stages) {
  const StageTally t = tally(stages);
  const WallTime end = run.finished_at.value_or(run.updated_at);
  return {
      {"id", run.id},
      {"plan", run.plan_name},
      {"plan_path", run.plan_path},
      {"plan_sha256", run.plan_hash},
      {"status", run.status},
      {"reason", run.reason},
      {"created_by", run.created_by},
      {"host", run.host},
      {"api_url", run.api_url},
      {"started", iso_time(run.created_at)},
      {"finished", run.finished_at ? nlohmann::ordered_json(iso_time(*run.finished_at)) : nullptr},
      {"duration_s",
       std::chrono::duration_cast<std::chrono::seconds>(end - run.created_at).count()},
      {"stages_done", t.done},
      {"stages_total", t.total}};
}

}  // namespace rollout::cli
