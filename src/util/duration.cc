#include "util/duration.h"

#include <cstdint>
#include <limits>

#include <fmt/format.h>

namespace rollout {

namespace {

std::optional<std::int64_t> unit_seconds(char unit) {
  switch (unit) {
    case 's':
      return 1;
    case 'm':
      return 60;
    case 'h':
      return 3600;
    case 'd':
      return 86400;
    default:
      return std::nullopt;
  }
}

std::optional<Seconds> fail(std::string* why, std::string message) {
  if (why) *why = std::move(message);
  return std::nullopt;
}

}  // namespace

std::optional<Seconds> parse_duration(std::string_view text, std::string* why) {
  if (text.empty()) return fail(why, "empty duration");
  if (text == "0") return Seconds{0};
  // Ten years is far beyond any gate; the bound keeps arithmetic away from overflow.
  constexpr std::int64_t kMax = 10LL * 365 * 86400;
  std::int64_t total = 0;
  std::size_t i = 0;
  char last_unit = 0;
  while (i < text.size()) {
    std::size_t digits_start = i;
    std::int64_t number = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      number = number * 10 + (text[i] - '0');
      if (number > kMax) return fail(why, "duration is too long (at most 3650d)");
      ++i;
    }
    if (i == digits_start) {
      return fail(why, "expected a number followed by a unit: s, m, h or d (e.g. 90s, 10m, 2h)");
    }
    if (i == text.size()) {
      return fail(why, fmt::format("missing unit after {} (did you mean '{}s' or '{}m'?)", number,
                                   number, number));
    }
    auto unit = unit_seconds(text[i]);
    if (!unit) {
      return fail(why,
                  fmt::format("unknown unit '{}': use s, m, h or d (e.g. 90s, 10m, 2h)", text[i]));
    }
    if (last_unit != 0 && *unit >= *unit_seconds(last_unit)) {
      return fail(why, "units must go from largest to smallest, each once (e.g. 1h30m)");
    }
    last_unit = text[i];
    total += number * *unit;
    if (total > kMax) return fail(why, "duration is too long (at most 3650d)");
    ++i;
  }
  return Seconds{total};
}

std::string format_duration(Seconds d) {
  std::int64_t s = d.count();
  if (s == 0) return "0s";
  std::string out;
  if (s < 0) {
    out = "-";
    s = -s;
  }
  const std::pair<std::int64_t, char> units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
  for (auto [size, name] : units) {
    if (s >= size) {
      out += fmt::format("{}{}", s / size, name);
      s %= size;
    }
  }
  return out;
}

}  // namespace rollout
