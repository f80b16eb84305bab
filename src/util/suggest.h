// "Did you mean ...?" for misspelled names.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace rollout {

// Levenshtein distance, case-sensitive.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The closest candidate, if it is close enough to be a plausible typo.
std::optional<std::string> closest_match(std::string_view word,
                                         std::span<const std::string_view> candidates);

// The candidate that another tool's word for the same thing means ("depends_on": "needs",
// "succeeded": "success"), if it is among them.
std::optional<std::string> synonym(std::string_view word,
                                   std::span<const std::string_view> candidates);

// " (did you mean 'x'?)" or "", ready to append to a message: a synonym, else a typo.
std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates);

}  // namespace rollout
