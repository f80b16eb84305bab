// Pure pieces of the client's politeness: backoff with jitter, Retry-After, and an
// adaptive client-side rate limit. Time is passed in, so tests need no clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string_view>

namespace rollout::client {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

struct RetryPolicy {
  int max_attempts = 8;  // per call, the first one included
  Millis base_delay{500};
  Millis max_delay{30000};
  Millis budget{120000};  // total waiting across the retries of one call
};

// "Full jitter": a uniform delay in [0, min(max, base * 2^(attempt-1))], attempt >= 1.
Millis backoff_delay(const RetryPolicy& policy, int attempt, std::mt19937_64& rng);

// Retry-After as delta-seconds ("120"). HTTP dates are not used by Upswift; nullopt then.
std::optional<Millis> parse_retry_after(std::string_view value);

// A token bucket whose rate halves on every 429 and creeps back (5% per success) to
// the configured rate. reserve() hands out send times in order, so queued calls are
// spaced evenly rather than released in a burst.
class RateLimiter {
 public:
  RateLimiter(std::int64_t calls, Millis per, Clock::time_point now);

  // When the next call may go out (now, or later when the bucket is empty).
  Clock::time_point reserve(Clock::time_point now);
  void on_throttled(Clock::time_point now);
  void on_success();

  double current_rate_per_second() const { return rate_; }
  double configured_rate_per_second() const { return configured_; }

 private:
  void refill(Clock::time_point now);

  double configured_;  // calls per second
  double rate_;
  double min_rate_;
  double capacity_;
  double tokens_;
  Clock::time_point last_;
};

}  // namespace rollout::client
