#include "plan/calendar.h"

#include <algorithm>

#include <fmt/format.h>

#include "util/time_text.h"
#include "util/tz.h"

namespace rollout::plan {

namespace {

constexpr int kDay = 24 * 60;

bool on_day(const Window& w, int weekday) {
  return w.days.empty() || std::find(w.days.begin(), w.days.end(), weekday) != w.days.end();
}

bool inside(const Window& w, WallTime t) {
  const LocalTime l = to_local(t, w.tz);
  if (w.from < w.to) return on_day(w, l.weekday) && l.minute >= w.from && l.minute < w.to;
  // Across midnight: the evening part on a listed day, or the morning after one.
  return (on_day(w, l.weekday) && l.minute >= w.from) ||
         (on_day(w, (l.weekday + 6) % 7) && l.minute < w.to);
}

// The next opening of `w` after `t` (strictly), looking a week and a day ahead.
std::optional<WallTime> next_opening(const Window& w, WallTime t) {
  const LocalTime l = to_local(t, w.tz);
  for (int ahead = 0; ahead <= 8; ++ahead) {
    const WallTime opens = from_local(l.year, l.month, l.day + ahead, w.from, w.tz);
    const int weekday = (l.weekday + ahead) % 7;
    if (opens > t && on_day(w, weekday)) return opens;
  }
  return std::nullopt;
}

const Freeze* freeze_at(const Stage& s, WallTime t) {
  for (const Freeze& f : s.freezes) {
    if (t >= f.from && t < f.to) return &f;
  }
  return nullptr;
}

}  // namespace

std::string describe(const Window& w) {
  static constexpr const char* kNames[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
  std::string days;
  for (int d : w.days) days += fmt::format("{}{}", days.empty() ? "" : ",", kNames[d]);
  return fmt::format("{} {:02}:{:02}-{:02}:{:02} {}", days.empty() ? "every day" : days,
                     w.from / 60, w.from % 60, w.to / 60, w.to % 60, w.tz);
}

bool may_dispatch(const Stage& stage, WallTime t) {
  if (freeze_at(stage, t)) return false;
  return stage.windows.empty() || std::any_of(stage.windows.begin(), stage.windows.end(),
                                              [&](const Window& w) { return inside(w, t); });
}

std::optional<WallTime> next_dispatch_time(const Stage& stage, WallTime t) {
  const WallTime limit = t + std::chrono::hours(24 * 366);
  WallTime at = t;
  while (at <= limit) {
    if (const Freeze* f = freeze_at(stage, at)) {
      at = f->to;
      continue;
    }
    if (may_dispatch(stage, at)) return at;
    std::optional<WallTime> next;
    for (const Window& w : stage.windows) {
      auto opens = next_opening(w, at);
      if (opens && (!next || *opens < *next)) next = opens;
    }
    if (!next) return std::nullopt;
    at = *next;
  }
  return std::nullopt;
}

std::string why_waiting(const Stage& stage, WallTime t) {
  if (may_dispatch(stage, t)) return {};
  const auto next = next_dispatch_time(stage, t);
  const std::string until = next ? fmt::format("until {} UTC", iso_time(*next).substr(0, 16))
                                 : "with no opening within a year";
  if (const Freeze* f = freeze_at(stage, t)) {
    return fmt::format("freeze {}{} {}", f->text, f->reason.empty() ? "" : " (" + f->reason + ")",
                       until);
  }
  return fmt::format("outside its maintenance windows {}", until);
}

}  // namespace rollout::plan
