#include "client/upswift_client.h"

#include <stdexcept>

#include <fmt/format.h>

#include "util/safe_text.h"

namespace rollout::client {

using upswift::CallError;
using upswift::CallStatus;

namespace {

// localhost, [::1], or an IPv4 literal 127.x.y.z (not a name that merely starts with "127.").
bool is_loopback_host(std::string_view host) {
  if (host == "localhost" || host == "[::1]") return true;
  if (host.rfind("127.", 0) != 0) return false;
  int dots = 0;
  int digits = 0;
  for (char c : host) {
    if (c == '.') {
      if (digits == 0) return false;
      ++dots;
      digits = 0;
    } else if (c >= '0' && c <= '9') {
      if (++digits > 3) return false;
    } else {
      return false;
    }
  }
  return dots == 3 && digits > 0;
}

}  // namespace

std::optional<std::string> check_base_url(const std::string& given) {
  // Messages name the URL without what it must not carry.
  const std::string url = without_credentials(given);
  if (url_user_info(given)) {
    return fmt::format(
        "API URL '{}' carries credentials (user:password@): Upswift takes the token from "
        "UPSWIFT_USER_TOKEN alone, and a secret in a URL ends up in shell histories and logs; "
        "remove them",
        url);
  }
  constexpr std::string_view kHttps = "https://";
  constexpr std::string_view kHttp = "http://";
  if (url.rfind(kHttps, 0) == 0) {
    if (url.size() == kHttps.size()) return fmt::format("API URL '{}' has no host", url);
    return std::nullopt;
  }
  if (url.rfind(kHttp, 0) != 0) {
    return fmt::format("API URL '{}' must start with https:// (or http:// to a loopback simulator)",
                       url);
  }
  std::string_view rest = std::string_view(url).substr(kHttp.size());
  std::string_view host = rest.substr(0, rest.find('/'));
  if (!host.empty() && host.front() == '[') {
    host = host.substr(0, host.find(']') + 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  if (!is_loopback_host(host)) {
    return fmt::format(
        "API URL '{}' uses plain http to '{}': only https is allowed, except to a "
        "simulator on loopback (127.0.0.1, localhost, [::1])",
        url, host);
  }
  return std::nullopt;
}

std::string normalize_base_url(std::string url) {
  if (url.empty() || url.back() != '/') url += '/';
  return url;
}

struct UpswiftClient::Call {
  std::string endpoint;
  std::string method;
  std::string body;
  bool is_deploy = false;
  int attempts = 0;
  Millis waited{0};
  std::string last_problem;
  // Called once: ok with the 200 body, or an error.
  std::function<void(std::optional<std::string> body, CallError error)> finish;
};

UpswiftClient::UpswiftClient(asio::io_context& io, ClientConfig config)
    : io_(io),
      config_(std::move(config)),
      http_(io),
      limiter_(config_.rate_calls, config_.rate_per, Clock::now()),
      rng_(config_.jitter_seed ? *config_.jitter_seed : std::random_device{}()) {
  config_.base_url = normalize_base_url(config_.base_url);
  if (auto why = check_base_url(config_.base_url)) throw std::invalid_argument(*why);
  if (config_.user_token.empty()) {
    throw std::invalid_argument("no Upswift user token: set UPSWIFT_USER_TOKEN");
  }
}

UpswiftClient::~UpswiftClient() {
  *alive_ = false;
}

void UpswiftClient::start(std::shared_ptr<Call> call) {
  if (reads_cancelled_ && !call->is_deploy) return end_cancelled(call);
  const auto now = Clock::now();
  const auto slot = limiter_.reserve(now);
  if (slot <= now) {
    send(std::move(call));
    return;
  }
  after(std::chrono::duration_cast<Millis>(slot - now), std::move(call), &UpswiftClient::send);
}

void UpswiftClient::after(Millis delay, std::shared_ptr<Call> call,
                          void (UpswiftClient::*then)(std::shared_ptr<Call>)) {
  // After a signal nothing waits: a deploy_update that would is not sent.
  if (reads_cancelled_) return end_cancelled(call);
  auto timer = std::make_shared<asio::steady_timer>(io_, delay);
  timers_.insert(timer);  // cancel_reads ends these at once: none of them is on the wire
  timer->async_wait([this, call, timer, then, alive = alive_](const boost::system::error_code&) {
    if (!*alive) return;
    timers_.erase(timer);
    if (reads_cancelled_) return end_cancelled(call);
    (this->*then)(call);
  });
}

void UpswiftClient::end_cancelled(const std::shared_ptr<Call>& call) {
  call->finish(std::nullopt,
               CallError{CallStatus::failed, 0,
                         call->is_deploy
                             ? std::string("deploy_update not sent: the run is stopping")
                             : fmt::format("{}: cancelled (the run is stopping)", call->endpoint),
                         call->attempts});
}

void UpswiftClient::cancel_reads() {
  reads_cancelled_ = true;
  http_.cancel_idempotent();
  // Waits end now (their handlers see the flag): reads, and deploy_update calls that are
  // waiting for their turn or their next try, which are certainly not applied.
  for (const auto& timer : timers_) timer->cancel();
}

void UpswiftClient::send(std::shared_ptr<Call> call) {
  ++call->attempts;
  ++stats_.requests;
  http::Request request;
  request.method = call->method;
  request.url = config_.base_url + call->endpoint;
  request.body = call->body;
  request.timeout = config_.timeout;
  request.connect_timeout = config_.connect_timeout;
  if (call->is_deploy) {
    request.idempotent = false;
    request.before_send = send_guard_;
  }
  http_.send(std::move(request), [this, call, alive = alive_](http::Response response) {
    if (*alive) on_response(call, std::move(response));
  });
}

// A server's words (error_message, a parser's complaint quoting the body) are kept in the
// state, printed and sent to webhooks: never with the token in them (a server may echo the
// request), never with bytes that are not UTF-8 or that move a terminal's cursor.
std::string UpswiftClient::safe(std::string text) const {
  return printable(redact(std::move(text), config_.user_token));
}

void UpswiftClient::on_response(std::shared_ptr<Call> call, http::Response response) {
  auto fail = [&](CallStatus status, std::string message) {
    call->finish(std::nullopt, CallError{status, static_cast<int>(response.status),
                                         safe(std::move(message)), call->attempts});
  };
  switch (response.transport) {
    case http::Transport::cancelled:
      end_cancelled(call);
      return;
    case http::Transport::withheld:
      fail(CallStatus::failed, fmt::format("{} not sent: {}", call->endpoint, response.error));
      return;
    case http::Transport::not_sent:
      // Nothing reached the server: safe to try again, deploy_update included.
      retry_later(call, Millis{0},
                  fmt::format("could not reach {}: {}", config_.base_url, response.error));
      return;
    case http::Transport::no_answer:
      if (call->is_deploy) {
        fail(CallStatus::unknown_outcome,
             fmt::format("deploy_update was sent but no answer came ({}); Upswift may or may not "
                         "have started the update",
                         response.error));
      } else {
        retry_later(call, Millis{0},
                    fmt::format("{}: no answer ({})", call->endpoint, response.error));
      }
      return;
    case http::Transport::ok:
      break;
  }
  const long status = response.status;
  if (status == 200) {
    limiter_.on_success();
    if (call->is_deploy) {
      if (auto instead = upswift::check_deploy_accepted(response.body)) {
        fail(CallStatus::unknown_outcome,
             fmt::format("deploy_update got HTTP 200 with {} instead of Upswift's answer (a proxy "
                         "or a portal in the way?): Upswift may or may not have started the update",
                         *instead));
        return;
      }
    }
    call->finish(std::move(response.body), CallError{CallStatus::ok, 200, {}, call->attempts});
    return;
  }
  if (status == 400) {
    auto message = upswift::parse_error_message(response.body);
    fail(CallStatus::refused,
         message ? fmt::format("Upswift refused {}: \"{}\"", call->endpoint, *message)
                 : fmt::format("Upswift refused {} (HTTP 400 without an error_message)",
                               call->endpoint));
    return;
  }
  if (status == 429) {
    ++stats_.throttled;
    limiter_.on_throttled(Clock::now());
    const Millis floor = parse_retry_after(response.retry_after).value_or(Millis{0});
    retry_later(call, floor, fmt::format("{}: rate limited by Upswift (HTTP 429)", call->endpoint));
    return;
  }
  if (status >= 500) {
    if (call->is_deploy) {
      fail(CallStatus::unknown_outcome,
           fmt::format("deploy_update got HTTP {}: Upswift may or may not have started the update",
                       status));
    } else {
      const Millis floor = parse_retry_after(response.retry_after).value_or(Millis{0});
      retry_later(call, floor, fmt::format("{}: HTTP {} from Upswift", call->endpoint, status));
    }
    return;
  }
  fail(CallStatus::failed,
       fmt::format("{}: unexpected HTTP {} from {}", call->endpoint, status, config_.base_url));
}

void UpswiftClient::retry_later(std::shared_ptr<Call> call, Millis floor, std::string why) {
  const auto give_up = [&](std::string message) {
    call->finish(std::nullopt,
                 CallError{CallStatus::failed, 0, safe(std::move(message)), call->attempts});
  };
  if (call->attempts >= config_.retry.max_attempts) {
    give_up(fmt::format("gave up after {} attempts: {}", call->attempts, why));
    return;
  }
  const Millis delay = std::max(floor, backoff_delay(config_.retry, call->attempts, rng_));
  if (call->waited + delay > config_.retry.budget) {
    give_up(fmt::format("gave up after {} attempts ({} ms retry budget spent): {}", call->attempts,
                        config_.retry.budget.count(), why));
    return;
  }
  call->waited += delay;
  ++stats_.retries;
  if (retry_notice_)
    retry_notice_(
        {call->endpoint, safe(why), call->attempts + 1, config_.retry.max_attempts, delay});
  after(delay, std::move(call), &UpswiftClient::start);
}

void UpswiftClient::deploy_update(const upswift::DeployRequest& request,
                                  std::function<void(upswift::Result<upswift::Accepted>)> done) {
  auto call = std::make_shared<Call>();
  call->endpoint = "deploy_update";
  call->method = "POST";
  call->body = upswift::deploy_update_body(request, config_.user_token);
  call->is_deploy = true;
  call->finish = [done = std::move(done)](std::optional<std::string> body, CallError error) {
    if (body) {
      done({upswift::Accepted{}, error});
    } else {
      done({std::nullopt, std::move(error)});
    }
  };
  start(std::move(call));
}

namespace {

template <typename Page>
std::function<void(std::optional<std::string>, CallError)> parse_with(
    std::optional<Page> (*parse)(std::string_view, std::string*), std::string endpoint,
    std::function<std::string(std::string)> safe, std::function<void(upswift::Result<Page>)> done) {
  return [parse, endpoint = std::move(endpoint), safe = std::move(safe), done = std::move(done)](
             std::optional<std::string> body, CallError error) {
    if (!body) {
      done({std::nullopt, std::move(error)});
      return;
    }
    std::string why;
    auto page = parse(*body, &why);
    if (!page) {
      done({std::nullopt,
            CallError{CallStatus::failed, 200,
                      safe(fmt::format("{}: unexpected answer from Upswift: {}", endpoint, why)),
                      error.attempts}});
      return;
    }
    done({std::move(page), error});
  };
}

}  // namespace

void UpswiftClient::devices_details(
    const upswift::DevicesQuery& query,
    std::function<void(upswift::Result<upswift::DevicesPage>)> done) {
  auto call = std::make_shared<Call>();
  call->endpoint = "devices_details";
  call->method = "GET";
  call->body = upswift::devices_details_body(query, config_.user_token);
  call->finish = parse_with<upswift::DevicesPage>(
      &upswift::parse_devices_page, call->endpoint,
      [this](std::string text) { return safe(std::move(text)); }, std::move(done));
  start(std::move(call));
}

void UpswiftClient::get_devices_state(
    const upswift::StatesQuery& query,
    std::function<void(upswift::Result<upswift::StatesPage>)> done) {
  auto call = std::make_shared<Call>();
  call->endpoint = "get_devices_state";
  call->method = "GET";
  call->body = upswift::get_devices_state_body(query, config_.user_token);
  call->finish = parse_with<upswift::StatesPage>(
      &upswift::parse_states_page, call->endpoint,
      [this](std::string text) { return safe(std::move(text)); }, std::move(done));
  start(std::move(call));
}

}  // namespace rollout::client
