// Time for the engine: what time it is, and "call me back after this long". The real
// clock (util/asio_clock.h) runs on Asio timers, optionally faster for simulated fleets; the
// manual clock is driven by tests and rehearsals, so a two-hour bake passes in
// microseconds. This interface needs no Asio: the pure cores see only util/time.h.
#pragma once

#include <functional>
#include <memory>
#include <utility>

#include "util/time.h"

namespace rollout {

// Cancels its callback when cancel() is called; copies share the same callback.
class TimerHandle {
 public:
  TimerHandle() = default;
  explicit TimerHandle(std::shared_ptr<bool> cancelled) : cancelled_(std::move(cancelled)) {}
  void cancel() {
    if (cancelled_) *cancelled_ = true;
  }

 private:
  std::shared_ptr<bool> cancelled_;
};

class Clock {
 public:
  virtual ~Clock() = default;
  virtual WallTime now() const = 0;
  // Runs `fn` on the io_context once `delay` of this clock's time has passed.
  virtual TimerHandle schedule(Millis delay, std::function<void()> fn) = 0;
};

}  // namespace rollout
