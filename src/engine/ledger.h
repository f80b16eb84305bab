// The calls of one stage of one kind (its dispatches, or its rollback), indexed once by
// body and kept in step with the store as the engine writes intents and outcomes: deciding
// what to send next never reloads or re-serialises what was already sent. Pure.
#pragma once

#include <cstdint>
#include <deque>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "state/records.h"

namespace rollout::engine {

class CallLedger {
 public:
  explicit CallLedger(const std::vector<state::ApiCall>& calls = {});

  // An intent the store has just written (its id set).
  void add(const state::ApiCall& call);
  // Its outcome, as the store has just recorded it.
  void record(std::int64_t call_id, state::CallOutcome outcome, WallTime at,
              const std::string& message);

  // Every call, oldest first; and those with one body (one request), oldest first.
  std::vector<const state::ApiCall*> all() const;
  std::vector<const state::ApiCall*> tries(std::string_view body) const;
  bool empty() const { return calls_.empty(); }

 private:
  std::deque<state::ApiCall> calls_;  // stable addresses as calls are added
  std::unordered_map<std::string, std::vector<std::size_t>> by_body_;
  std::unordered_map<std::int64_t, std::size_t> by_id_;
};

// What to do about one request, given its tries (oldest first). The write-ahead rules:
// - one went through (accepted, or settled as applied): nothing, it is done;
// - the last has no outcome, or an unknown one: settle it before anything else is sent;
// - this process's last try was refused: stop for a person (sending again would be refused
//   again); an earlier process's refusal is retried, the cause may have been fixed;
// - this process tried `max_attempts` times (0: no limit) and none went through: stop;
// - otherwise (never sent, or certainly not applied): send it.
struct Move {
  enum What { done, settle, refused, gave_up, send } what = send;
  const state::ApiCall* call = nullptr;  // the try it is about: done, settle, refused, gave_up
  long attempts = 0;                     // this process's tries
};
Move next_move(const std::vector<const state::ApiCall*>& tries,
               const std::set<std::int64_t>& own_calls, int max_attempts);

// When a call that went through did: its outcome's time, or its intent's.
WallTime through_at(const state::ApiCall& call);

}  // namespace rollout::engine
