// Maintenance windows and freezes: local times from the system's tz database, windows
// across midnight, freezes that push dispatch to the next window, and the plan's syntax.
#include <doctest/doctest.h>

#include "check_plan.h"
#include "plan/calendar.h"
#include "util/time_text.h"
#include "util/tz.h"

using namespace rollout;
using namespace std::chrono_literals;

namespace {

WallTime utc(int y, unsigned m, unsigned d, std::chrono::minutes at) {
  return std::chrono::sys_days{std::chrono::year{y} / m / d} + at;
}

plan::Stage stage_with(std::vector<plan::Window> windows, std::vector<plan::Freeze> freezes = {}) {
  plan::Stage s;
  s.name = "eu";
  s.windows = std::move(windows);
  s.freezes = std::move(freezes);
  return s;
}

const plan::Window kNights{{0, 1, 2, 3, 4}, 2 * 60, 5 * 60, "Europe/Berlin"};  // mon-fri 02-05

}  // namespace

TEST_CASE("local time in a named zone follows its clock changes") {
  CHECK(time_zone_exists("Europe/Berlin"));
  CHECK(time_zone_exists("UTC"));
  CHECK_FALSE(time_zone_exists("Europe/Atlantis"));
  CHECK_FALSE(time_zone_exists("../etc/passwd"));
  const LocalTime winter = to_local(utc(2026, 11, 30, 1h), "Europe/Berlin");
  CHECK(winter.minute == 2 * 60);
  CHECK(winter.weekday == 0);  // Monday
  const LocalTime summer = to_local(utc(2026, 7, 1, 0h), "Europe/Berlin");
  CHECK(summer.minute == 2 * 60);
  CHECK(from_local(2026, 7, 1, 2 * 60, "Europe/Berlin") == utc(2026, 7, 1, 0h));
  CHECK(from_local(2026, 11, 31, 0, "UTC") == utc(2026, 12, 1, 0h));  // days past the month
}

TEST_CASE("a stage dispatches inside a window, else at the next opening") {
  const plan::Stage s = stage_with({kNights});
  CHECK(plan::may_dispatch(s, utc(2026, 11, 30, 1h + 30min)));  // Mon 02:30 Berlin
  CHECK_FALSE(plan::may_dispatch(s, utc(2026, 11, 30, 4h)));    // Mon 05:00 Berlin: closed
  // Saturday morning: next Monday 02:00 Berlin.
  CHECK(plan::next_dispatch_time(s, utc(2026, 11, 28, 10h)) == utc(2026, 11, 30, 1h));
  // Inside: now.
  CHECK(plan::next_dispatch_time(s, utc(2026, 12, 1, 2h)) == utc(2026, 12, 1, 2h));
  // No windows: any time.
  CHECK(plan::next_dispatch_time(stage_with({}), utc(2026, 11, 28, 10h)) == utc(2026, 11, 28, 10h));
}

TEST_CASE("a window across midnight belongs to the day it opens") {
  const plan::Window friday_night{{4}, 22 * 60, 2 * 60, "UTC"};
  const plan::Stage s = stage_with({friday_night});
  CHECK(plan::may_dispatch(s, utc(2026, 11, 27, 23h)));       // Fri 23:00
  CHECK(plan::may_dispatch(s, utc(2026, 11, 28, 1h)));        // Sat 01:00
  CHECK_FALSE(plan::may_dispatch(s, utc(2026, 11, 28, 3h)));  // Sat 03:00
  CHECK_FALSE(plan::may_dispatch(s, utc(2026, 11, 27, 1h)));  // Fri 01:00: Thursday's night
  CHECK(plan::next_dispatch_time(s, utc(2026, 11, 28, 3h)) == utc(2026, 12, 4, 22h));
}

TEST_CASE("a freeze holds dispatch until the first window after it") {
  // 21 and 22 December frozen in Berlin: it ends at midnight before the 23rd.
  plan::Freeze holidays{from_local(2026, 12, 21, 0, "Europe/Berlin"),
                        from_local(2026, 12, 23, 0, "Europe/Berlin"), "holidays",
                        "2026-12-21 .. 2026-12-22 Europe/Berlin"};
  const plan::Stage s = stage_with({kNights}, {holidays});
  const WallTime monday_night = utc(2026, 12, 21, 1h);  // Mon 02:00 Berlin, frozen
  CHECK_FALSE(plan::may_dispatch(s, monday_night));
  CHECK(plan::next_dispatch_time(s, monday_night) == utc(2026, 12, 23, 1h));  // Wed 02:00
  CHECK(plan::why_waiting(s, monday_night) ==
        "freeze 2026-12-21 .. 2026-12-22 Europe/Berlin (holidays) until 2026-12-23T01:00 UTC");
  // Only a freeze, no windows: dispatch when it ends.
  const plan::Stage frozen = stage_with({}, {holidays});
  CHECK(plan::next_dispatch_time(frozen, monday_night) == holidays.to);
  CHECK(plan::why_waiting(frozen, utc(2027, 1, 5, 0h)).empty());
}

TEST_CASE("plans give windows on the plan or a stage, and freezes on both") {
  const auto c = test::check_plan(R"(version: 1
name: p
flow_id: f
project: Demo
windows:
  - {days: [mon, tue, wed, thu], from: "02:00", to: "05:00", tz: Europe/Berlin}
freeze:
  - {from: "2026-12-20", to: "2027-01-03", tz: Europe/Berlin, reason: holidays}
stages:
  - {name: a, groups: [A]}
  - name: b
    groups: [B]
    windows:
      - {from: "22:00", to: "24:00", tz: UTC}
    freeze:
      - {from: "2026-11-30 08:00", to: "2026-11-30 18:00", tz: UTC}
)");
  REQUIRE(c.report == "");
  const auto& a = c.loaded.plan->stages[0];
  const auto& b = c.loaded.plan->stages[1];
  REQUIRE(a.windows.size() == 1);
  CHECK(a.windows[0] == plan::Window{{0, 1, 2, 3}, 120, 300, "Europe/Berlin"});
  CHECK(b.windows == std::vector<plan::Window>{{{}, 22 * 60, 0, "UTC"}});
  REQUIRE(b.freezes.size() == 2);                                        // the plan's, then its own
  CHECK(b.freezes[0].to == from_local(2027, 1, 4, 0, "Europe/Berlin"));  // the 3rd included
  CHECK(b.freezes[1].from == utc(2026, 11, 30, 8h));
}
