#include "sim/server.h"

#include <chrono>
#include <cstdio>
#include <random>
#include <stdexcept>

#include <fmt/format.h>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "upswift/api.h"

namespace rollout::sim {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kBodyLimit = 1024 * 1024;
constexpr std::string_view kPrefix = "/v1/";

enum class Fault { none, too_many, server_error, slow, drop, drop_after_apply, foreign_200 };

std::string_view name(Fault f) {
  switch (f) {
    case Fault::none:
      return "none";
    case Fault::too_many:
      return "429";
    case Fault::server_error:
      return "5xx";
    case Fault::slow:
      return "slow";
    case Fault::drop:
      return "drop";
    case Fault::drop_after_apply:
      return "drop_after_apply";
    case Fault::foreign_200:
      return "foreign_200";
  }
  return "none";
}

struct Answer {
  unsigned status = 200;
  std::string body;
  bool applied = false;  // a deploy_update that started updates
  std::size_t targeted = 0;
};

// Upswift's routing: three endpoints, each with its method; 400 with error_message for
// any request it refuses.
Answer route(Fleet& fleet, bhttp::verb method, std::string_view endpoint, std::string_view body,
             SimTime now) {
  auto refuse = [](std::string message) { return Answer{400, upswift::error_json(message)}; };
  if (endpoint == "deploy_update") {
    if (method != bhttp::verb::post)
      return Answer{405, upswift::error_json("deploy_update takes POST")};
    auto parsed = upswift::parse_deploy_update(body);
    if (!parsed.parsed) return refuse(parsed.error);
    if (parsed.parsed->user_token.empty()) return refuse("user_token is missing");
    auto outcome = fleet.deploy(parsed.parsed->request, now);
    if (outcome.error) return refuse(*outcome.error);
    return Answer{200, upswift::success_json(), true, outcome.targeted};
  }
  if (endpoint == "devices_details") {
    if (method != bhttp::verb::get)
      return Answer{405, upswift::error_json("devices_details takes GET")};
    auto parsed = upswift::parse_devices_details(body);
    if (!parsed.query) return refuse(parsed.error);
    if (parsed.user_token.empty()) return refuse("user_token is missing");
    auto outcome = fleet.devices_details(*parsed.query, now);
    if (outcome.error) return refuse(*outcome.error);
    return Answer{200, upswift::devices_page_json(outcome.page)};
  }
  if (endpoint == "get_devices_state") {
    if (method != bhttp::verb::get)
      return Answer{405, upswift::error_json("get_devices_state takes GET")};
    auto parsed = upswift::parse_get_devices_state(body);
    if (!parsed.query) return refuse(parsed.error);
    if (parsed.user_token.empty()) return refuse("user_token is missing");
    auto outcome = fleet.devices_state(*parsed.query, now);
    if (outcome.error) return refuse(*outcome.error);
    return Answer{200, upswift::states_page_json(outcome.page)};
  }
  return Answer{404, upswift::error_json(fmt::format("unknown endpoint '{}'", endpoint))};
}

std::string iso_now() {
  const auto now = std::chrono::system_clock::now();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  return fmt::format("{}.{:03}Z", format_sim_time(SimTime(ms)).replace(10, 1, "T"), ms % 1000);
}

bool is_loopback(const asio::ip::address& a) {
  return a.is_loopback();
}

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(asio::io_context& context, Fleet& f, ServerOptions o, std::function<SimTime()> clock)
      : io(context),
        acceptor(context),
        fleet(f),
        options(std::move(o)),
        now(std::move(clock)),
        rng(options.seed) {}

  ~Impl() {
    if (log) std::fclose(log);
  }

  asio::io_context& io;
  tcp::acceptor acceptor;
  Fleet& fleet;
  ServerOptions options;
  std::function<SimTime()> now;
  std::mt19937_64 rng;
  ServerCounters counters;
  std::FILE* log = nullptr;
  bool stopped = false;

  Fault pick_fault(std::string_view endpoint) {
    const Faults& f = options.faults;
    std::uniform_real_distribution<double> u(0.0, 1.0);
    if (f.rate_drop > 0 && u(rng) < f.rate_drop) return Fault::drop;
    if (f.rate_429 > 0 && u(rng) < f.rate_429) return Fault::too_many;
    if (f.rate_5xx > 0 && u(rng) < f.rate_5xx) return Fault::server_error;
    if (endpoint == "deploy_update" && f.rate_drop_after_apply > 0 &&
        u(rng) < f.rate_drop_after_apply) {
      return Fault::drop_after_apply;
    }
    if (endpoint == "deploy_update" && f.rate_foreign_200 > 0 && u(rng) < f.rate_foreign_200) {
      return Fault::foreign_200;
    }
    if (f.rate_slow > 0 && u(rng) < f.rate_slow) return Fault::slow;
    return Fault::none;
  }

  void write_log(std::string_view endpoint, std::string_view method, std::string_view body,
                 unsigned status, Fault fault, const Answer& answer, SimTime sim_now) {
    if (!log) return;
    nlohmann::ordered_json line{{"time", iso_now()},         {"sim_time", format_sim_time(sim_now)},
                                {"sim_ms", sim_now.count()}, {"endpoint", endpoint},
                                {"method", method},          {"status", status},
                                {"fault", name(fault)}};
    if (endpoint == "deploy_update") {
      line["applied"] = answer.applied;
      line["targeted"] = answer.targeted;
    }
    try {
      line["body"] = nlohmann::ordered_json::parse(upswift::redact_token(body));
    } catch (const std::exception&) {
      line["body"] = upswift::redact_token(body);
    }
    const std::string text =
        line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
    std::fwrite(text.data(), 1, text.size(), log);
    std::fflush(log);  // append-only and complete per line: tests read it while we run
  }
};

namespace {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, std::shared_ptr<Server::Impl> server)
      : stream_(std::move(socket)), server_(std::move(server)), delay_(server_->io) {}

  void start() { read(); }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(kBodyLimit);
    stream_.expires_after(std::chrono::seconds(60));
    bhttp::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      // end_of_stream: the client closed; anything else (timeout, garbage): drop it.
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
      return;
    }
    auto request = parser_->release();
    Server::Impl& s = *server_;
    ++s.counters.requests;
    const std::string target(request.target());
    const std::string method(request.method_string());
    const bool keep_alive = request.keep_alive();
    std::string endpoint = target.rfind(kPrefix, 0) == 0 ? target.substr(kPrefix.size()) : target;
    if (s.options.on_request) s.options.on_request(endpoint, request.body());
    const SimTime sim_now = s.now();
    const Fault fault = s.stopped ? Fault::none : s.pick_fault(endpoint);
    if (fault != Fault::none) ++s.counters.faults;

    Answer answer;
    switch (fault) {
      case Fault::drop:
        s.write_log(endpoint, method, request.body(), 0, fault, answer, sim_now);
        close();
        return;
      case Fault::too_many:
        answer = Answer{429, "{}"};
        break;
      case Fault::server_error:
        answer = Answer{500, upswift::error_json("Internal server error")};
        break;
      default:
        answer = route(s.fleet, request.method(), endpoint, request.body(), sim_now);
        break;
    }
    if (answer.applied) ++s.counters.deploys_applied;
    if (fault == Fault::drop_after_apply) {
      s.write_log(endpoint, method, request.body(), 0, fault, answer, sim_now);
      close();
      return;
    }
    s.write_log(endpoint, method, request.body(), answer.status, fault, answer, sim_now);
    if (fault == Fault::foreign_200) {
      static constexpr const char* kForeign[] = {
          "<html><body>Please sign in to continue</body></html>", "", R"({"status":"ok"})"};
      answer.status = 200;
      answer.body = kForeign[s.counters.faults % 3];
    }

    response_ = {};
    response_.version(request.version());
    response_.result(answer.status);
    response_.set(bhttp::field::server, "rollout-sim");
    response_.set(bhttp::field::content_type, "application/json");
    response_.keep_alive(keep_alive);
    response_.body() = std::move(answer.body);
    response_.prepare_payload();
    if (fault == Fault::slow) {
      delay_.expires_after(s.options.faults.slow);
      delay_.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
        if (!wait_ec) self->write();
      });
      return;
    }
    write();
  }

  void write() {
    bhttp::async_write(stream_, response_,
                       [self = shared_from_this()](beast::error_code ec, std::size_t) {
                         if (ec) return;
                         if (!self->response_.keep_alive()) {
                           self->close();
                           return;
                         }
                         self->read();
                       });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> response_;
  std::shared_ptr<Server::Impl> server_;
  asio::steady_timer delay_;
};

void accept(std::shared_ptr<Server::Impl> s) {
  s->acceptor.async_accept([s](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || s->stopped) return;  // normal shutdown
    } else {
      socket.set_option(tcp::no_delay(true));
      std::make_shared<Connection>(std::move(socket), s)->start();
    }
    accept(s);
  });
}

}  // namespace

Server::Server(asio::io_context& io, Fleet& fleet, ServerOptions options,
               std::function<SimTime()> now)
    : impl_(std::make_shared<Impl>(io, fleet, std::move(options), std::move(now))) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(impl_->options.address, ec);
  if (ec)
    throw std::runtime_error(fmt::format("'{}' is not an IP address", impl_->options.address));
  if (!is_loopback(address)) {
    throw std::runtime_error(
        fmt::format("the simulator listens on loopback only, not on '{}'", impl_->options.address));
  }
  const tcp::endpoint endpoint(address, impl_->options.port);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
  impl_->acceptor.bind(endpoint, ec);
  if (ec) {
    throw std::runtime_error(fmt::format("cannot listen on {}:{}: {}", impl_->options.address,
                                         impl_->options.port, ec.message()));
  }
  impl_->acceptor.listen(asio::socket_base::max_listen_connections);
  if (!impl_->options.request_log.empty()) {
    impl_->log = std::fopen(impl_->options.request_log.c_str(), "a");
    if (!impl_->log) {
      throw std::runtime_error(
          fmt::format("cannot open the request log '{}'", impl_->options.request_log));
    }
  }
  accept(impl_);
}

Server::~Server() {
  stop();
}

unsigned short Server::port() const {
  return impl_->acceptor.local_endpoint().port();
}

std::string Server::base_url() const {
  const auto ep = impl_->acceptor.local_endpoint();
  const std::string host = ep.address().is_v6() ? fmt::format("[{}]", ep.address().to_string())
                                                : ep.address().to_string();
  return fmt::format("http://{}:{}/v1/", host, ep.port());
}

const ServerCounters& Server::counters() const {
  return impl_->counters;
}

void Server::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
}

std::function<SimTime()> scaled_clock(double scale) {
  return scaled_clock(scale, std::chrono::duration_cast<Millis>(
                                 std::chrono::system_clock::now().time_since_epoch()));
}

std::function<SimTime()> scaled_clock(double scale, SimTime start_wall) {
  const auto start_steady = std::chrono::steady_clock::now();
  return [=] {
    const auto elapsed =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_steady);
    return start_wall + Millis(static_cast<std::int64_t>(elapsed.count() * scale));
  };
}

}  // namespace rollout::sim
