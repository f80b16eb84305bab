#include "yaml/reader.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "util/safe_text.h"
#include "util/suggest.h"

namespace rollout::yaml {

// Reports keys outside `allowed`; returns false when `node` is not a map at all.
bool Reader::map(const Node& node, std::span<const std::string_view> allowed,
                 std::string_view what) {
  if (!node.is_map()) {
    d_.error(node.mark, fmt::format("{} must be a map, got {}", what, describe(node)));
    return false;
  }
  for (const auto& [key, value] : node.entries) {
    if (!key.is_scalar()) {
      d_.error(key.mark, fmt::format("keys in {} must be plain names", what));
      continue;
    }
    if (std::find(allowed.begin(), allowed.end(), key.scalar) == allowed.end()) {
      d_.error(key.mark, fmt::format("unknown key '{}' in {}{}", key.scalar, what,
                                     did_you_mean(key.scalar, allowed)));
    }
  }
  return true;
}

const Node* Reader::required(const Node& map, std::string_view key, std::string_view what) {
  const Node* n = map.find(key);
  if (!n) d_.error(map.mark, fmt::format("{} is missing required field '{}'", what, key));
  return n;
}

std::optional<std::string> Reader::string(const Node& n, std::string_view what,
                                          std::size_t max_bytes) {
  if (!n.is_scalar()) {
    d_.error(n.mark, fmt::format("{} must be a string, got {}", what, describe(n)));
    return std::nullopt;
  }
  if (!n.quoted && resolve_plain_scalar(n.scalar) != ScalarType::string) {
    d_.error(n.mark, fmt::format("{} must be a string, got {}; quote it: '{}'", what, describe(n),
                                 n.scalar));
    return std::nullopt;
  }
  if (n.scalar.empty()) {
    d_.error(n.mark, fmt::format("{} must not be empty", what));
    return std::nullopt;
  }
  // Names and comments are printed on terminals, in logs and in reports, and sent to
  // Upswift: no terminal sequences, no line breaks, nothing that is not UTF-8.
  const bool controls = std::any_of(n.scalar.begin(), n.scalar.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7F;
  });
  if (controls || !is_valid_utf8(n.scalar)) {
    d_.error(n.mark, fmt::format("{} must be one line of UTF-8 text without control characters, "
                                 "got '{}'",
                                 what, printable(n.scalar)));
    return std::nullopt;
  }
  if (n.scalar.size() > max_bytes) {
    d_.error(n.mark, fmt::format("{} is {} bytes long; at most {} are allowed", what,
                                 n.scalar.size(), max_bytes));
    return std::nullopt;
  }
  return n.scalar;
}

std::optional<std::string> Reader::optional_string(const Node& map, std::string_view key,
                                                   std::string_view what, std::size_t max_bytes) {
  const Node* n = map.find(key);
  return n ? string(*n, what, max_bytes) : std::nullopt;
}

std::optional<std::int64_t> Reader::integer(const Node& n, std::string_view what, std::int64_t min,
                                            std::int64_t max) {
  std::int64_t value = 0;
  bool ok = n.is_scalar() && !n.quoted && !n.scalar.empty();
  if (ok) {
    const char* end = n.scalar.data() + n.scalar.size();
    auto [ptr, ec] = std::from_chars(n.scalar.data(), end, value);
    ok = ec == std::errc() && ptr == end;
  }
  if (!ok) {
    d_.error(n.mark, fmt::format("{} must be a whole number, got {}", what, describe(n)));
    return std::nullopt;
  }
  if (value < min || value > max) {
    d_.error(n.mark, fmt::format("{} must be between {} and {}, got {}", what, min, max, value));
    return std::nullopt;
  }
  return value;
}

std::optional<std::string> Reader::choice(const Node& n, std::string_view what,
                                          std::span<const std::string_view> choices) {
  if (!n.is_scalar()) {
    d_.error(n.mark, fmt::format("{} must be one of {}, got {}", what, join(choices), describe(n)));
    return std::nullopt;
  }
  if (std::find(choices.begin(), choices.end(), n.scalar) == choices.end()) {
    d_.error(n.mark, fmt::format("{} must be one of {}, not '{}'{}", what, join(choices), n.scalar,
                                 did_you_mean(n.scalar, choices)));
    return std::nullopt;
  }
  return n.scalar;
}

std::optional<Seconds> Reader::duration(const Node& n, std::string_view what) {
  if (!n.is_scalar()) {
    d_.error(n.mark, fmt::format("{} must be a duration such as 90s, 10m or 2h, got {}", what,
                                 describe(n)));
    return std::nullopt;
  }
  std::string why;
  auto d = parse_duration(n.scalar, &why);
  if (!d) d_.error(n.mark, fmt::format("{}: bad duration '{}': {}", what, n.scalar, why));
  return d;
}

std::vector<std::string> Reader::string_list(const Node& n, std::string_view what) {
  std::vector<std::string> out;
  if (!n.is_sequence()) {
    d_.error(n.mark, fmt::format("{} must be a list, got {}{}", what, describe(n),
                                 n.is_scalar() ? fmt::format(" (write [{}])", n.scalar) : ""));
    return out;
  }
  for (const Node& item : n.items) {
    if (auto s = string(item, fmt::format("each entry of {}", what))) out.push_back(*s);
  }
  return out;
}

std::string Reader::join(std::span<const std::string_view> words) {
  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += ", ";
    out += fmt::format("'{}'", words[i]);
  }
  return out;
}

std::optional<bool> Reader::boolean(const Node& n, std::string_view what) {
  if (n.is_scalar() && !n.quoted && resolve_plain_scalar(n.scalar) == ScalarType::boolean) {
    return n.scalar[0] == 't' || n.scalar[0] == 'T';
  }
  d_.error(n.mark, fmt::format("{} must be true or false, got {}", what, describe(n)));
  return std::nullopt;
}

std::optional<double> Reader::percentage(const Node& n, std::string_view what) {
  double value = 0;
  bool ok = n.is_scalar() && n.scalar.size() > 1 && n.scalar.back() == '%';
  if (ok) {
    const char* begin = n.scalar.data();
    const char* end = begin + n.scalar.size() - 1;
    auto [ptr, ec] = std::from_chars(begin, end, value);
    ok = ec == std::errc() && ptr == end && value >= 0 && value <= 100;
  }
  if (!ok) {
    // A bare number in range was meant as a percentage: say how to write it.
    double bare = -1;
    if (n.is_scalar() && !n.scalar.empty() && n.scalar.back() != '%') {
      const char* begin = n.scalar.data();
      const char* end = begin + n.scalar.size();
      auto [ptr, ec] = std::from_chars(begin, end, bare);
      if (ec != std::errc() || ptr != end) bare = -1;
    }
    d_.error(n.mark,
             fmt::format("{} must be a percentage from 0% to 100%, got {}{}", what,
                         n.is_scalar() ? fmt::format("'{}'", n.scalar) : describe(n),
                         bare >= 0 && bare <= 100 ? fmt::format(" (write {}%)", n.scalar) : ""));
    return std::nullopt;
  }
  return value / 100.0;
}

}  // namespace rollout::yaml
