#include "util/suggest.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

namespace rollout {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      std::size_t substitution = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitution});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::optional<std::string> closest_match(std::string_view word,
                                         std::span<const std::string_view> candidates) {
  // A typo changes a few characters; anything further is a different word.
  const std::size_t limit = std::max<std::size_t>(1, std::min<std::size_t>(3, word.size() / 3));
  std::optional<std::string> best;
  std::size_t best_distance = limit + 1;
  for (std::string_view candidate : candidates) {
    std::size_t d = edit_distance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = std::string(candidate);
    }
  }
  return best;
}

std::optional<std::string> synonym(std::string_view word,
                                   std::span<const std::string_view> candidates) {
  // Words other tools use for the same thing: not typos, so no distance finds them.
  static constexpr std::pair<std::string_view, std::string_view> kSynonyms[] = {
      {"depends_on", "needs"},
      {"depends", "needs"},
      {"dependencies", "needs"},
      {"after", "needs"},
      {"requires", "needs"},
      {"depend_on", "needs"},
      {"succeeded", "success"},
      {"successful", "success"},
      {"succeed", "success"},
      {"ok", "success"},
      {"done", "success"},
      {"failure", "failed"},
      {"fail", "failed"},
      {"error", "failed"},
      {"running", "in_progress"},
      {"updating", "in_progress"},
      {"in-progress", "in_progress"},
      {"queued", "pending"},
      {"waiting", "pending"},
      {"cancelled", "aborted"},
      {"canceled", "aborted"},
      {"device", "specific_device"},
      {"state", "device_state"},
      {"status", "update_status"},
      {"equals", "is"},
      {"not", "is_not"},
      {"isnot", "is_not"},
  };
  for (const auto& [from, to] : kSynonyms) {
    if (word == from && std::find(candidates.begin(), candidates.end(), to) != candidates.end())
      return std::string(to);
  }
  return std::nullopt;
}

std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates) {
  if (auto same = synonym(word, candidates)) return fmt::format(" (did you mean '{}'?)", *same);
  if (auto match = closest_match(word, candidates))
    return fmt::format(" (did you mean '{}'?)", *match);
  return {};
}

}  // namespace rollout
