// Typed reads out of a YAML tree that report what is wrong where it is wrong: the shared
// vocabulary of the plan and fleet loaders (maps with known keys, strings that must be
// strings, whole numbers, choices, durations, percentages).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/diagnostic.h"
#include "util/duration.h"
#include "yaml/document.h"

namespace rollout::yaml {

class Reader {
 public:
  explicit Reader(Diagnostics& d) : d_(d) {}

  Diagnostics& diagnostics() { return d_; }

  // Reports keys outside `allowed` (with "did you mean"); false when `node` is not a map.
  bool map(const Node& node, std::span<const std::string_view> allowed, std::string_view what);
  // The value under `key`, or an error at the map when it is missing.
  const Node* required(const Node& map, std::string_view key, std::string_view what);

  // Names, ids and values are at most this long: what a plan sends stays far below what any
  // answer that carries it back may hold.
  static constexpr std::size_t kMaxText = 256;
  // URLs may be longer.
  static constexpr std::size_t kMaxUrl = 2048;

  // A non-empty string of at most `max_bytes`; a plain number or boolean is refused with a
  // hint to quote it.
  std::optional<std::string> string(const Node& n, std::string_view what,
                                    std::size_t max_bytes = kMaxText);
  std::optional<std::string> optional_string(const Node& map, std::string_view key,
                                             std::string_view what,
                                             std::size_t max_bytes = kMaxText);
  std::vector<std::string> string_list(const Node& n, std::string_view what);

  std::optional<std::int64_t> integer(const Node& n, std::string_view what, std::int64_t min,
                                      std::int64_t max);
  std::optional<bool> boolean(const Node& n, std::string_view what);
  std::optional<std::string> choice(const Node& n, std::string_view what,
                                    std::span<const std::string_view> choices);
  std::optional<Seconds> duration(const Node& n, std::string_view what);
  // "12.5%" as 0.125.
  std::optional<double> percentage(const Node& n, std::string_view what);

  static std::string join(std::span<const std::string_view> words);

 private:
  Diagnostics& d_;
};

}  // namespace rollout::yaml
