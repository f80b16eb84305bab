#include "upswift/filter.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "util/suggest.h"

namespace rollout::upswift {

namespace {

constexpr std::array<std::string_view, 1> kIsOnly = {"is"};

template <typename Range>
bool contains(const Range& range, std::string_view word) {
  return std::find(range.begin(), range.end(), word) != range.end();
}

std::string quoted_list(std::span<const std::string_view> words) {
  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += i + 1 == words.size() ? " or " : ", ";
    out += fmt::format("'{}'", words[i]);
  }
  return out;
}

}  // namespace

std::string_view name(FilterType type) {
  return kFilterTypeNames[static_cast<std::size_t>(type)];
}
std::string_view name(Operand operand) {
  return kOperandNames[static_cast<std::size_t>(operand)];
}

std::optional<FilterType> parse_filter_type(std::string_view text) {
  for (std::size_t i = 0; i < kFilterTypeNames.size(); ++i) {
    if (kFilterTypeNames[i] == text) return static_cast<FilterType>(i);
  }
  return std::nullopt;
}

std::optional<Operand> parse_operand(std::string_view text) {
  for (std::size_t i = 0; i < kOperandNames.size(); ++i) {
    if (kOperandNames[i] == text) return static_cast<Operand>(i);
  }
  return std::nullopt;
}

std::span<const std::string_view> allowed_operands(FilterType type) {
  if (type == FilterType::device_state) return kIsOnly;
  return kOperandNames;
}

std::span<const std::string_view> allowed_values(FilterType type) {
  switch (type) {
    case FilterType::device_state:
      return kDeviceStates;
    case FilterType::update_status:
      return kUpdateStatuses;
    default:
      return {};
  }
}

std::optional<std::string> check_filter(std::string_view type_text, std::string_view operand_text,
                                        std::string_view value) {
  auto type = parse_filter_type(type_text);
  if (!type) {
    return fmt::format("unknown filter type '{}'{}; the types are {}", type_text,
                       did_you_mean(type_text, kFilterTypeNames), quoted_list(kFilterTypeNames));
  }
  auto operands = allowed_operands(*type);
  if (!contains(operands, operand_text)) {
    return fmt::format("filter type '{}' takes operand {}, not '{}'", type_text,
                       quoted_list(operands), operand_text);
  }
  auto values = allowed_values(*type);
  if (!values.empty() && !contains(values, value)) {
    return fmt::format("filter type '{}' takes value {}, not '{}'{}", type_text,
                       quoted_list(values), value, did_you_mean(value, values));
  }
  if (values.empty() && value.empty()) {
    return fmt::format("filter type '{}' needs a non-empty value", type_text);
  }
  return std::nullopt;
}

}  // namespace rollout::upswift
