// The clocks behind util/clock.h's interface: wall time on Asio's steady timers, and the
// manual clock that tests and rehearsals drive.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <utility>

#include "util/asio.h"
#include "util/clock.h"

namespace rollout {

// Wall time from the system clock, waits on Asio's steady timers. With scale > 1, time
// runs that many times faster (for simulated fleets only: the CLI refuses it otherwise).
class AsioClock : public Clock {
 public:
  // A faster clock starts at `start` (a resumed simulated run continues its own time).
  explicit AsioClock(asio::io_context& io, double scale = 1.0,
                     WallTime start = std::chrono::system_clock::now());
  WallTime now() const override;
  TimerHandle schedule(Millis delay, std::function<void()> fn) override;

 private:
  asio::io_context& io_;
  double scale_;
  WallTime start_wall_;
  std::chrono::steady_clock::time_point start_steady_;
};

// Time stands still until advance() moves it to the next due callback.
class ManualClock : public Clock {
 public:
  ManualClock(asio::io_context& io, WallTime start);
  WallTime now() const override { return now_; }
  TimerHandle schedule(Millis delay, std::function<void()> fn) override;

  // Moves time to the earliest pending callback and posts every callback due then.
  // False when nothing is pending.
  bool advance();
  void advance_by(Millis d);
  std::size_t pending() const { return queue_.size(); }

 private:
  struct Entry {
    std::shared_ptr<bool> cancelled;
    std::function<void()> fn;
  };
  void drop_cancelled();

  asio::io_context& io_;
  WallTime now_;
  std::uint64_t sequence_ = 0;
  std::multimap<std::pair<WallTime, std::uint64_t>, Entry> queue_;
};

// Runs `io` with `clock`'s time jumping ahead whenever nothing else is left to do, until
// `done()` or no work and no timers remain. Rehearsals and engine tests run this way.
void run_on_manual_clock(asio::io_context& io, ManualClock& clock,
                         const std::function<bool()>& done);

}  // namespace rollout
