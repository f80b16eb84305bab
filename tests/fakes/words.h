// Tests compare records with the words a person reads: word(x.status) == "passed". The
// words are state/status.h's own, so a check reads as the state database would say it.
#pragma once

#include <optional>
#include <string>

#include "state/status.h"

namespace rollout::test {

template <typename E>
std::string word(E value) {
  return std::string(state::name(value));
}
template <typename E>
std::string word(const std::optional<E>& value) {
  return value ? word(*value) : std::string();
}
inline std::string word(const std::string& text) {
  return text;
}

}  // namespace rollout::test
