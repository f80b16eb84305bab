#include "engine/ledger.h"

#include <algorithm>

namespace rollout::engine {

CallLedger::CallLedger(const std::vector<state::ApiCall>& calls) {
  for (const state::ApiCall& c : calls) add(c);
}

void CallLedger::add(const state::ApiCall& call) {
  by_body_[call.body].push_back(calls_.size());
  by_id_[call.id] = calls_.size();
  calls_.push_back(call);
}

void CallLedger::record(std::int64_t call_id, state::CallOutcome outcome, WallTime at,
                        const std::string& message) {
  auto it = by_id_.find(call_id);
  if (it == by_id_.end()) return;
  state::ApiCall& c = calls_[it->second];
  c.outcome = outcome;
  c.outcome_at = at;
  c.message = message;
}

std::vector<const state::ApiCall*> CallLedger::all() const {
  std::vector<const state::ApiCall*> out;
  out.reserve(calls_.size());
  for (const state::ApiCall& c : calls_) out.push_back(&c);
  return out;
}

std::vector<const state::ApiCall*> CallLedger::tries(std::string_view body) const {
  std::vector<const state::ApiCall*> out;
  auto it = by_body_.find(std::string(body));
  if (it == by_body_.end()) return out;
  for (std::size_t i : it->second) out.push_back(&calls_[i]);
  return out;
}

Move next_move(const std::vector<const state::ApiCall*>& tries,
               const std::set<std::int64_t>& own_calls, int max_attempts) {
  using state::CallOutcome;
  for (const state::ApiCall* c : tries) {
    if (c->outcome && went_through(*c->outcome)) return {Move::done, c, 0};
  }
  if (tries.empty()) return {};
  const state::ApiCall* last = tries.back();
  const auto own = [&](const state::ApiCall* c) { return own_calls.count(c->id) > 0; };
  if (!last->outcome || *last->outcome == CallOutcome::unknown) return {Move::settle, last, 0};
  if (*last->outcome == CallOutcome::refused && own(last)) return {Move::refused, last, 0};
  const long attempts = std::count_if(tries.begin(), tries.end(), own);
  if (max_attempts > 0 && attempts >= max_attempts) return {Move::gave_up, last, attempts};
  return {Move::send, last, attempts};
}

WallTime through_at(const state::ApiCall& call) {
  return call.outcome_at.value_or(call.intent_at);
}

}  // namespace rollout::engine
