// Local time in a named time zone, from the system's tz database (/usr/share/zoneinfo,
// through the C library). Used on one thread at a time: the conversion sets TZ for its
// duration and puts it back.
#pragma once

#include <string>

#include "util/time.h"

namespace rollout {

// Whether `zone` names a zone of the system's database ("Europe/Berlin", "UTC").
bool time_zone_exists(const std::string& zone);

struct LocalTime {
  int year = 1970, month = 1, day = 1;  // the local date
  int weekday = 0;                      // 0 = Monday ... 6 = Sunday
  int minute = 0;                       // minutes after local midnight
};

LocalTime to_local(WallTime t, const std::string& zone);

// The instant of a local date and time in `zone`. A time that a clock change skips is
// taken as if the change had not happened yet (02:30 on a spring-forward night is 03:30).
WallTime from_local(int year, int month, int day, int minute, const std::string& zone);

}  // namespace rollout
