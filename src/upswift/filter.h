// The Upswift v1 device filter vocabulary, exactly as the deploy_update page states it:
// five filter types, their operands and, where the page lists them, their values.
// Pure data: the plan validator, the request builder and the simulator all use these tables.
#pragma once

#include <array>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace rollout::upswift {

enum class FilterType { specific_device, tag, app, device_state, update_status };
enum class Operand { is, is_not };

inline constexpr std::array<std::string_view, 5> kFilterTypeNames = {
    "specific_device", "tag", "app", "device_state", "update_status"};
inline constexpr std::array<std::string_view, 2> kOperandNames = {"is", "is_not"};
inline constexpr std::array<std::string_view, 2> kDeviceStates = {"online", "offline"};
inline constexpr std::array<std::string_view, 5> kUpdateStatuses = {"pending", "in_progress",
                                                                    "success", "failed", "aborted"};

std::string_view name(FilterType type);
std::string_view name(Operand operand);
std::optional<FilterType> parse_filter_type(std::string_view text);
std::optional<Operand> parse_operand(std::string_view text);

// The operands a type accepts (device_state: only "is").
std::span<const std::string_view> allowed_operands(FilterType type);
// The values a type accepts, or an empty span when any non-empty string will do.
std::span<const std::string_view> allowed_values(FilterType type);

struct Filter {
  FilterType type = FilterType::tag;
  Operand operand = Operand::is;
  std::string value;
  bool operator==(const Filter&) const = default;
};

// nullopt when the filter obeys the rules, otherwise why not, in words for a person.
std::optional<std::string> check_filter(std::string_view type, std::string_view operand,
                                        std::string_view value);

}  // namespace rollout::upswift
