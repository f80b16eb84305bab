#include "util/asio_clock.h"

namespace rollout {

AsioClock::AsioClock(asio::io_context& io, double scale, WallTime start)
    : io_(io), scale_(scale), start_wall_(start), start_steady_(std::chrono::steady_clock::now()) {}

WallTime AsioClock::now() const {
  if (scale_ == 1.0) return std::chrono::system_clock::now();
  const auto elapsed =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start_steady_);
  return start_wall_ +
         std::chrono::microseconds(static_cast<std::int64_t>(elapsed.count() * scale_));
}

TimerHandle AsioClock::schedule(Millis delay, std::function<void()> fn) {
  auto cancelled = std::make_shared<bool>(false);
  const auto real = std::chrono::microseconds(static_cast<std::int64_t>(
      static_cast<double>(std::chrono::microseconds(delay).count()) / scale_));
  auto timer = std::make_shared<asio::steady_timer>(io_, real);
  timer->async_wait([timer, cancelled, fn = std::move(fn)](const boost::system::error_code& ec) {
    if (!ec && !*cancelled) fn();
  });
  return TimerHandle(cancelled);
}

ManualClock::ManualClock(asio::io_context& io, WallTime start) : io_(io), now_(start) {}

TimerHandle ManualClock::schedule(Millis delay, std::function<void()> fn) {
  auto cancelled = std::make_shared<bool>(false);
  queue_.emplace(std::make_pair(now_ + std::max(delay, Millis{0}), sequence_++),
                 Entry{cancelled, std::move(fn)});
  return TimerHandle(cancelled);
}

void ManualClock::drop_cancelled() {
  for (auto it = queue_.begin(); it != queue_.end();) {
    it = *it->second.cancelled ? queue_.erase(it) : std::next(it);
  }
}

bool ManualClock::advance() {
  drop_cancelled();
  if (queue_.empty()) return false;
  now_ = std::max(now_, queue_.begin()->first.first);
  while (!queue_.empty() && queue_.begin()->first.first <= now_) {
    Entry e = std::move(queue_.begin()->second);
    queue_.erase(queue_.begin());
    if (*e.cancelled) continue;
    asio::post(io_, [cancelled = e.cancelled, fn = std::move(e.fn)] {
      if (!*cancelled) fn();
    });
  }
  return true;
}

void ManualClock::advance_by(Millis d) {
  const WallTime target = now_ + d;
  drop_cancelled();
  while (!queue_.empty() && queue_.begin()->first.first <= target) advance();
  now_ = std::max(now_, target);
}

void run_on_manual_clock(asio::io_context& io, ManualClock& clock,
                         const std::function<bool()>& done) {
  for (;;) {
    io.restart();
    io.poll();
    if (done()) return;
    if (!clock.advance()) {
      // Nothing scheduled on the clock: real work (sockets) may still be pending.
      io.restart();
      if (io.run_one() == 0) return;
    }
  }
}

}  // namespace rollout
