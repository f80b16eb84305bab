#include "client/retry.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace rollout::client {

Millis backoff_delay(const RetryPolicy& policy, int attempt, std::mt19937_64& rng) {
  const int shift = std::clamp(attempt - 1, 0, 30);
  const double ceiling =
      std::min<double>(static_cast<double>(policy.max_delay.count()),
                       static_cast<double>(policy.base_delay.count()) * std::ldexp(1.0, shift));
  std::uniform_real_distribution<double> uniform(0.0, ceiling);
  return Millis(static_cast<std::int64_t>(uniform(rng)));
}

std::optional<Millis> parse_retry_after(std::string_view value) {
  std::int64_t seconds = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (value.empty() || ec != std::errc() || ptr != value.data() + value.size() || seconds < 0) {
    return std::nullopt;
  }
  return Millis(std::min<std::int64_t>(seconds, 3600) * 1000);
}

RateLimiter::RateLimiter(std::int64_t calls, Millis per, Clock::time_point now)
    : configured_(static_cast<double>(calls) * 1000.0 /
                  static_cast<double>(std::max<std::int64_t>(1, per.count()))),
      rate_(configured_),
      min_rate_(configured_ / 16.0),
      capacity_(std::clamp(static_cast<double>(calls), 1.0, 10.0)),
      tokens_(capacity_),
      last_(now) {}

void RateLimiter::refill(Clock::time_point now) {
  if (now <= last_) return;
  const double elapsed = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(capacity_, tokens_ + elapsed * rate_);
  last_ = now;
}

Clock::time_point RateLimiter::reserve(Clock::time_point now) {
  refill(now);
  tokens_ -= 1.0;
  if (tokens_ >= 0) return now;
  // Negative tokens are calls queued ahead: this one goes when its token has refilled.
  const double wait = -tokens_ / rate_;
  return now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait));
}

void RateLimiter::on_throttled(Clock::time_point now) {
  refill(now);
  rate_ = std::max(min_rate_, rate_ / 2.0);
  tokens_ = std::min(tokens_, 0.0);  // no more bursts until the server is happy again
}

void RateLimiter::on_success() {
  rate_ = std::min(configured_, rate_ * 1.05);
}

}  // namespace rollout::client
