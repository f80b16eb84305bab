#include "util/time_text.h"

#include <ctime>

namespace rollout {

namespace {

std::string format(WallTime t, bool utc, const char* pattern) {
  const std::time_t s = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  if (utc)
    gmtime_r(&s, &tm);
  else
    localtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, pattern, &tm);
  return buf;
}

}  // namespace

std::string local_time(WallTime t) {
  return format(t, false, "%Y-%m-%d %H:%M:%S");
}

std::string iso_time(WallTime t) {
  return format(t, true, "%Y-%m-%dT%H:%M:%SZ");
}

}  // namespace rollout
