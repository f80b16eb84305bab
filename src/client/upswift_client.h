// The Upswift v1 client: FleetApi over HTTP, with retries, backoff, Retry-After, a
// client-side rate limit, and an honest "unknown outcome" for a deploy_update whose
// answer never came. It never sends a deploy_update twice on its own.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>

#include "client/retry.h"
#include "http/curl_client.h"
#include "upswift/fleet_api.h"
#include "util/asio.h"

namespace rollout::client {

inline constexpr const char* kDefaultApiUrl = "https://api.upswift.io/v1/";

struct ClientConfig {
  std::string base_url = kDefaultApiUrl;  // ends with '/'
  std::string user_token;                 // from UPSWIFT_USER_TOKEN; never logged
  std::int64_t rate_calls = 600;
  Millis rate_per{60000};
  Millis timeout{30000};
  Millis connect_timeout{10000};
  RetryPolicy retry;
  std::optional<std::uint64_t> jitter_seed;  // tests fix it
};

// https anywhere; plain http only to loopback (a simulator). nullopt when acceptable,
// otherwise why not.
std::optional<std::string> check_base_url(const std::string& url);

// Adds the trailing '/' that endpoint names are appended to.
std::string normalize_base_url(std::string url);

class UpswiftClient : public upswift::FleetApi {
 public:
  // Throws std::invalid_argument when the URL is refused (check_base_url) or the token is empty.
  UpswiftClient(asio::io_context& io, ClientConfig config);
  ~UpswiftClient() override;

  void deploy_update(const upswift::DeployRequest& request,
                     std::function<void(upswift::Result<upswift::Accepted>)> done) override;
  void devices_details(const upswift::DevicesQuery& query,
                       std::function<void(upswift::Result<upswift::DevicesPage>)> done) override;
  void get_devices_state(const upswift::StatesQuery& query,
                         std::function<void(upswift::Result<upswift::StatesPage>)> done) override;
  void cancel_reads() override;

  // Asked just before each deploy_update leaves (after any wait for the rate limit, once
  // its connection is up): a reason not to send it, such as a lost lease. A withheld call
  // ends as `failed` (certainly not applied) and is never tried again by the client.
  void set_send_guard(std::function<std::optional<std::string>()> guard) {
    send_guard_ = std::move(guard);
  }

  // Told before each retry's wait, so that a person sees an API that does not answer as such
  // rather than silence: which call, why, which try comes next of how many, after how long.
  struct RetryNotice {
    std::string endpoint;
    std::string why;  // token-free
    int next_attempt = 0;
    int max_attempts = 0;
    Millis delay{0};
  };
  void set_retry_notice(std::function<void(const RetryNotice&)> notice) {
    retry_notice_ = std::move(notice);
  }

  struct Stats {
    std::int64_t requests = 0;   // HTTP requests sent, retries included
    std::int64_t throttled = 0;  // 429 answers
    std::int64_t retries = 0;
  };
  const Stats& stats() const { return stats_; }
  double current_rate_per_second() const { return limiter_.current_rate_per_second(); }

 private:
  struct Call;
  void start(std::shared_ptr<Call> call);
  void send(std::shared_ptr<Call> call);
  void on_response(std::shared_ptr<Call> call, http::Response response);
  void retry_later(std::shared_ptr<Call> call, Millis floor, std::string why);
  std::string safe(std::string text) const;
  // Runs `then(call)` after `delay`, unless reads are cancelled meanwhile (a read then ends).
  void after(Millis delay, std::shared_ptr<Call> call,
             void (UpswiftClient::*then)(std::shared_ptr<Call>));
  void end_cancelled(const std::shared_ptr<Call>& call);

  asio::io_context& io_;
  ClientConfig config_;
  http::CurlClient http_;
  RateLimiter limiter_;
  std::mt19937_64 rng_;
  Stats stats_;
  std::function<std::optional<std::string>()> send_guard_;
  std::function<void(const RetryNotice&)> retry_notice_;
  bool reads_cancelled_ = false;
  std::set<std::shared_ptr<asio::steady_timer>> timers_;  // rate-limit and retry waits
  // Timers and HTTP completions may outlive the client; they check this first.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace rollout::client
