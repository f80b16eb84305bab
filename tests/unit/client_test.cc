#include <doctest/doctest.h>

#include "client/retry.h"
#include "client/upswift_client.h"
#include "upswift/fleet_api.h"

using namespace rollout::client;
using namespace std::chrono_literals;

TEST_CASE("backoff grows exponentially under a cap, with jitter below the ceiling") {
  RetryPolicy p;
  p.base_delay = 100ms;
  p.max_delay = 1000ms;
  std::mt19937_64 rng(1);
  // Full jitter: uniform below a ceiling of 100, 200, 400, 800 ms, then 1000 ms (the cap).
  // Over many draws the largest comes near the ceiling and the mean near half of it: a
  // delay that did not grow, or grew past the cap, fails here.
  for (int attempt = 1; attempt <= 10; ++attempt) {
    CAPTURE(attempt);
    const auto ceiling = std::min<std::int64_t>(1000, 100LL << (attempt - 1));
    std::int64_t largest = 0, sum = 0;
    constexpr int kDraws = 2000;
    for (int i = 0; i < kDraws; ++i) {
      const auto d = backoff_delay(p, attempt, rng).count();
      CHECK(d >= 0);
      CHECK(d <= ceiling);
      largest = std::max(largest, d);
      sum += d;
    }
    CHECK(largest >= ceiling * 95 / 100);
    const double mean = static_cast<double>(sum) / kDraws;
    CHECK(mean >= static_cast<double>(ceiling) * 0.45);
    CHECK(mean <= static_cast<double>(ceiling) * 0.55);
  }
  // Attempts past 31 do not overflow the shift: the cap holds.
  CHECK(backoff_delay(p, 1000, rng) <= 1000ms);
}

TEST_CASE("Retry-After in seconds") {
  CHECK(parse_retry_after("5") == Millis(5000));
  CHECK(parse_retry_after("0") == Millis(0));
  CHECK_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));
  CHECK_FALSE(parse_retry_after(""));
  CHECK(parse_retry_after("999999") == Millis(3600 * 1000));
}

TEST_CASE("the rate limiter spaces calls evenly after its burst") {
  const auto t0 = Clock::time_point{} + 1h;
  RateLimiter limiter(60, 60000ms, t0);  // one a second, burst of 10
  for (int i = 0; i < 10; ++i) CHECK(limiter.reserve(t0) == t0);
  CHECK(limiter.reserve(t0) == t0 + 1s);
  CHECK(limiter.reserve(t0) == t0 + 2s);
}

TEST_CASE("the rate limiter halves on 429 and recovers on success") {
  const auto t0 = Clock::time_point{} + 1h;
  RateLimiter limiter(600, 60000ms, t0);
  CHECK(limiter.current_rate_per_second() == doctest::Approx(10.0));
  limiter.on_throttled(t0);
  CHECK(limiter.current_rate_per_second() == doctest::Approx(5.0));
  limiter.on_throttled(t0);
  CHECK(limiter.current_rate_per_second() == doctest::Approx(2.5));
  for (int i = 0; i < 100; ++i) limiter.on_success();
  CHECK(limiter.current_rate_per_second() == doctest::Approx(10.0));
  for (int i = 0; i < 20; ++i) limiter.on_throttled(t0);
  CHECK(limiter.current_rate_per_second() == doctest::Approx(10.0 / 16));
  // Throttled: no burst left, the next call waits for a token.
  CHECK(limiter.reserve(t0) > t0);
}

TEST_CASE("https anywhere, plain http only to loopback") {
  CHECK_FALSE(check_base_url("https://api.upswift.io/v1/"));
  CHECK_FALSE(check_base_url("http://127.0.0.1:8080/v1/"));
  CHECK_FALSE(check_base_url("http://localhost:8080/v1/"));
  CHECK_FALSE(check_base_url("http://[::1]:8080/v1/"));
  CHECK(check_base_url("http://api.upswift.io/v1/") ==
        "API URL 'http://api.upswift.io/v1/' uses plain http to 'api.upswift.io': only https is "
        "allowed, except to a simulator on loopback (127.0.0.1, localhost, [::1])");
  CHECK(check_base_url("http://10.0.0.1/v1/"));
  CHECK(check_base_url("http://127.0.0.1.evil.com/v1/"));
  CHECK(check_base_url("http://127.0.0.1@evil.com/v1/"));
  CHECK(check_base_url("ftp://x/"));
  CHECK(normalize_base_url("http://127.0.0.1:1/v1") == "http://127.0.0.1:1/v1/");
}

TEST_CASE("an API URL with credentials is refused, and its message never shows them") {
  for (const char* url :
       {"https://ops:hunter2@api.upswift.io/v1/", "http://ops:hunter2@127.0.0.1:8/v1/",
        "https://hunter2@api.connect.jfrog.io/v1/"}) {
    CAPTURE(url);
    const auto why = check_base_url(url);
    REQUIRE(why);
    CHECK(why->find("carries credentials") != std::string::npos);
    CHECK(why->find("hunter2") == std::string::npos);
    CHECK(why->find("***@") != std::string::npos);
  }
}

TEST_CASE("a listing that repeats a device stops, whether its keys come in order or not") {
  auto key = [](std::int64_t k) { return k; };
  using Page = std::vector<std::int64_t>;
  rollout::upswift::PagingGuard<std::int64_t> ascending("devices_details");
  CHECK_FALSE(ascending.check(Page{1, 2, 3}, key));
  CHECK_FALSE(ascending.check(Page{4, 5}, key));
  auto again = ascending.check(Page{5, 6}, key);  // the last page's last device again
  REQUIRE(again);
  CHECK(again->find("page 3 repeats a device already listed (5)") != std::string::npos);

  rollout::upswift::PagingGuard<std::int64_t> shuffled("devices_details");
  CHECK_FALSE(shuffled.check(Page{10, 30, 20}, key));  // out of order, no repeat
  CHECK_FALSE(shuffled.check(Page{5, 40}, key));
  CHECK(shuffled.check(Page{50, 30}, key));  // 30 again, long after
  rollout::upswift::PagingGuard<std::int64_t> early("devices_details");
  CHECK_FALSE(early.check(Page{1, 2, 3}, key));
  CHECK(early.check(Page{1}, key));  // the first page again
}
