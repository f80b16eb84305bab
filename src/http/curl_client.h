// HTTP over libcurl's multi interface, driven by an Asio io_context: no thread per
// request, no blocking call; many requests in flight at once, each with its own timeout.
// libcurl lives here and nowhere else.
//
// Shape (after curl's maintained multi-uv.c): one CURLM used only from the io_context's
// thread; a context per socket, attached with curl_multi_assign and held by a
// shared_ptr; async_wait on a stream_descriptor that is release()d (never closed: the
// socket is curl's) on CURL_POLL_REMOVE; completions are posted, so user code never
// runs inside a libcurl callback and may start new requests freely.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/asio.h"

namespace rollout::http {

struct Request {
  std::string method = "GET";  // GET with a body is sent as a GET carrying that body
  std::string url;
  std::string body;
  std::chrono::milliseconds timeout{30000};
  std::chrono::milliseconds connect_timeout{10000};
  // A call that must never be sent twice (deploy_update). libcurl re-sends a request on its
  // own when a reused keep-alive connection dies before any answer (and re-issues refused
  // HTTP/2 streams); such a request goes on a connection of its own, opened for it and
  // closed after it, over HTTP/1.1, where libcurl has nothing to retry.
  bool idempotent = true;
  // Asked once the connection is up, just before the first byte of the request is written:
  // a reason not to send (the run's lease was lost), or nullopt. Runs inside libcurl's
  // callback: it must not call libcurl.
  std::function<std::optional<std::string>()> before_send;
};

enum class Transport {
  ok,         // an HTTP answer arrived (any status)
  not_sent,   // failed before the request went out (resolve, connect, TLS): certainly not applied
  no_answer,  // the request went out, but no complete answer came (timeout, reset)
  withheld,   // before_send refused: certainly not sent
  cancelled,  // cancel_idempotent() ended it: an idempotent request, nothing to record
};

struct Response {
  Transport transport = Transport::ok;
  long status = 0;
  std::string body;
  std::string retry_after;  // the Retry-After header, if any
  std::string error;        // for a person, when transport != ok
};

// What sends a request: CurlClient, or a test's fake.
class Sender {
 public:
  virtual ~Sender() = default;
  virtual void send(Request request, std::function<void(Response)> done) = 0;
};

class CurlClient : public Sender {
 public:
  explicit CurlClient(asio::io_context& io);
  ~CurlClient() override;
  CurlClient(const CurlClient&) = delete;
  CurlClient& operator=(const CurlClient&) = delete;

  // Must be called from the io_context's thread. `done` runs later, on that thread.
  void send(Request request, std::function<void(Response)> done) override;

  std::size_t in_flight() const;

  // Ends every idempotent request in flight at once (their `done` gets Transport::cancelled);
  // a non-idempotent one runs to its answer or its timeout.
  void cancel_idempotent();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rollout::http
