// Durations as operators write them: 90s, 10m, 2h, 1h30m, 1d.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace rollout {

using Seconds = std::chrono::seconds;

// nullopt when the text is not a duration; `why` then says what is wrong.
std::optional<Seconds> parse_duration(std::string_view text, std::string* why = nullptr);

// The shortest exact spelling: 0s, 90s -> 1m30s, 7200s -> 2h.
std::string format_duration(Seconds d);

}  // namespace rollout
