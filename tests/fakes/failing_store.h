// A StateStore that passes everything to another one, except that the n-th write of one
// kind fails as a full disk or a read-only file would: for the tests that inject store
// failures at each kind of write. A fake, not a mock: it has no expectations of its own.
#pragma once

#include <stdexcept>
#include <string>

#include "forwarding_store.h"

namespace rollout::test {

struct InjectedStoreFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class FailingStore : public ForwardingStore {
 public:
  // `kind`: one of kWriteKinds; fails its `nth` write (1-based), and only that one.
  FailingStore(state::StateStore& inner, std::string kind, int nth)
      : ForwardingStore(inner), kind_(std::move(kind)), nth_(nth) {}

  static constexpr const char* kWriteKinds[] = {
      "set_run_status", "update_stage",    "save_snapshot", "record_intent",
      "record_outcome", "add_observation", "add_event",     "heartbeat"};
  bool failed() const { return failed_; }

 protected:
  void on_write(const char* kind) override {
    if (kind_ == kind && ++seen_ == nth_) {
      failed_ = true;
      throw InjectedStoreFailure(std::string("injected: database or disk is full, at ") + kind);
    }
  }
  // A batch fails as a whole at the first of its records that is to fail: nothing of it is
  // written, as a transaction that could not commit.
  void on_batch(const state::WriteBatch& b) override {
    for (std::size_t i = 0; i < b.snapshots.size(); ++i) on_write("save_snapshot");
    for (std::size_t i = 0; i < b.intents.size(); ++i) on_write("record_intent");
    for (std::size_t i = 0; i < b.outcomes.size(); ++i) on_write("record_outcome");
    for (std::size_t i = 0; i < b.observations.size(); ++i) on_write("add_observation");
    for (std::size_t i = 0; i < b.stages.size(); ++i) on_write("update_stage");
    for (std::size_t i = 0; i < b.events.size(); ++i) on_write("add_event");
    if (b.run_status) on_write("set_run_status");
    if (b.heartbeat) on_write("heartbeat");
  }

 private:
  std::string kind_;
  int nth_;
  int seen_ = 0;
  bool failed_ = false;
};

}  // namespace rollout::test
