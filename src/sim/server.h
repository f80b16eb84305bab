// The fleet simulator's HTTP server (Boost.Beast, loopback only): Upswift's v1 endpoints
// over a simulated fleet, with fault injection and an append-only request log.
// Beast lives here and nowhere else.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "sim/fleet.h"
#include "util/asio.h"

namespace rollout::sim {

struct Faults {
  double rate_429 = 0;   // answer 429 {} instead
  double rate_5xx = 0;   // answer 500 without acting
  double rate_slow = 0;  // answer after `slow`
  Millis slow{2000};
  double rate_drop = 0;              // close the connection without acting or answering
  double rate_drop_after_apply = 0;  // act (deploy_update applies), then close without answering
  // deploy_update applies, then a 200 that is not Upswift's answer comes back (an HTML page,
  // an empty body, another JSON shape, in turn), as a proxy or a captive portal would send.
  double rate_foreign_200 = 0;
};

struct ServerOptions {
  std::string address = "127.0.0.1";  // loopback only
  unsigned short port = 0;            // 0: the system picks one
  Faults faults;
  std::string request_log;  // JSON lines; empty: no log
  std::uint64_t seed = 1;   // for fault injection
  // Observer of every request as it arrived (raw body, token included): for tests that
  // assert the exact bytes on the wire. Runs on the server's thread.
  std::function<void(const std::string& endpoint, const std::string& raw_body)> on_request;
};

// What the server did, for tests and the console.
struct ServerCounters {
  std::int64_t requests = 0;
  std::int64_t deploys_applied = 0;
  std::int64_t faults = 0;
};

class Server {
 public:
  // Binds at once; throws std::runtime_error (with the reason) when it cannot, or when
  // the address is not loopback. `now` gives the simulated time.
  Server(asio::io_context& io, Fleet& fleet, ServerOptions options, std::function<SimTime()> now);
  ~Server();

  unsigned short port() const;
  std::string base_url() const;  // http://127.0.0.1:PORT/v1/
  const ServerCounters& counters() const;
  void stop();

  struct Impl;  // shared with the connections, which may outlive a stop()

 private:
  std::shared_ptr<Impl> impl_;
};

// Simulated time that runs `scale` times faster than the steady clock, starting now.
std::function<SimTime()> scaled_clock(double scale);
// The same from `start` (a simulated run that goes on from where its time had got to).
std::function<SimTime()> scaled_clock(double scale, SimTime start);

}  // namespace rollout::sim
