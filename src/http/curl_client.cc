#include "http/curl_client.h"

#include <cctype>
#include <map>
#include <mutex>

#include <curl/curl.h>
#include <fmt/format.h>

namespace rollout::http {

namespace {

constexpr std::size_t kMaxBodyBytes = 64 * 1024 * 1024;

void global_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  Request request;
  std::function<void(Response)> done;
  Response response;
  char error_buffer[CURL_ERROR_SIZE] = {};
  bool body_too_large = false;
  std::optional<std::string> withheld;  // why before_send refused

  ~Transfer() {
    if (headers) curl_slist_free_all(headers);
    if (easy) curl_easy_cleanup(easy);
  }
};

struct SocketContext {
  SocketContext(asio::io_context& io, curl_socket_t fd) : descriptor(io, fd), socket(fd) {}
  asio::posix::stream_descriptor descriptor;
  curl_socket_t socket;
  int want = 0;  // CURL_POLL_IN / OUT / INOUT
  bool waiting_read = false;
  bool waiting_write = false;
  bool removed = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  if (t->response.body.size() + n > kMaxBodyBytes) {
    t->body_too_large = true;
    return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  t->response.body.append(data, n);
  return n;
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  std::string_view line(data, n);
  constexpr std::string_view kName = "retry-after:";
  if (line.size() > kName.size()) {
    bool match = true;
    for (std::size_t i = 0; i < kName.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(line[i])) != kName[i]) match = false;
    }
    if (match) {
      std::string_view value = line.substr(kName.size());
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
      while (!value.empty() &&
             (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
        value.remove_suffix(1);
      }
      t->response.retry_after = std::string(value);
    }
  }
  return n;
}

// CURLOPT_PREREQFUNCTION: the connection is up and the request not yet written.
int before_request(void* user, char*, char*, int, int) {
  auto* t = static_cast<Transfer*>(user);
  if (!t->request.before_send) return CURL_PREREQFUNC_OK;
  t->withheld = t->request.before_send();
  return t->withheld ? CURL_PREREQFUNC_ABORT : CURL_PREREQFUNC_OK;
}

}  // namespace

struct CurlClient::Impl {
  explicit Impl(asio::io_context& context) : io(context), timer(context) {
    global_init_once();
    multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &Impl::on_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &Impl::on_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
  }

  ~Impl() {
    *alive = false;
    timer.cancel();
    for (auto& [easy, transfer] : transfers) curl_multi_remove_handle(multi, easy);
    transfers.clear();
    curl_multi_cleanup(multi);
  }

  // libcurl tells which sockets to watch. Only Asio waits are set up here: no call back
  // into libcurl's transfer functions from inside its own callback.
  static int on_socket(CURL*, curl_socket_t s, int what, void* userp, void* socketp) {
    auto* self = static_cast<Impl*>(userp);
    auto* holder = static_cast<std::shared_ptr<SocketContext>*>(socketp);
    if (what == CURL_POLL_REMOVE) {
      if (holder) {
        std::shared_ptr<SocketContext> ctx = *holder;
        ctx->removed = true;
        boost::system::error_code ignored;
        ctx->descriptor.cancel(ignored);
        ctx->descriptor.release();  // the socket is curl's to close
        delete holder;
        curl_multi_assign(self->multi, s, nullptr);
      }
      return 0;
    }
    if (!holder) {
      holder = new std::shared_ptr<SocketContext>(std::make_shared<SocketContext>(self->io, s));
      curl_multi_assign(self->multi, s, holder);
    }
    (*holder)->want = what;
    self->arm(*holder);
    return 0;
  }

  static int on_timer(CURLM*, long timeout_ms, void* userp) {
    auto* self = static_cast<Impl*>(userp);
    if (timeout_ms < 0) {
      self->timer.cancel();
      return 0;
    }
    self->timer.expires_after(std::chrono::milliseconds(timeout_ms));
    self->timer.async_wait([self, alive = self->alive](const boost::system::error_code& ec) {
      if (ec || !*alive) return;  // operation_aborted: rearmed or shutting down
      self->act(CURL_SOCKET_TIMEOUT, 0);
    });
    return 0;
  }

  void arm(const std::shared_ptr<SocketContext>& ctx) {
    if ((ctx->want & CURL_POLL_IN) && !ctx->waiting_read) {
      ctx->waiting_read = true;
      ctx->descriptor.async_wait(asio::posix::stream_descriptor::wait_read,
                                 [this, ctx, alive = alive](const boost::system::error_code& ec) {
                                   ctx->waiting_read = false;
                                   if (ec || !*alive || ctx->removed) return;
                                   act(ctx->socket, CURL_CSELECT_IN);
                                   if (!ctx->removed) arm(ctx);
                                 });
    }
    if ((ctx->want & CURL_POLL_OUT) && !ctx->waiting_write) {
      ctx->waiting_write = true;
      ctx->descriptor.async_wait(asio::posix::stream_descriptor::wait_write,
                                 [this, ctx, alive = alive](const boost::system::error_code& ec) {
                                   ctx->waiting_write = false;
                                   if (ec || !*alive || ctx->removed) return;
                                   act(ctx->socket, CURL_CSELECT_OUT);
                                   if (!ctx->removed) arm(ctx);
                                 });
    }
  }

  void act(curl_socket_t s, int events) {
    int running = 0;
    curl_multi_socket_action(multi, s, events, &running);
    collect_finished();
  }

  void collect_finished() {
    int pending = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &pending)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* easy = msg->easy_handle;
      const CURLcode code = msg->data.result;
      auto it = transfers.find(easy);
      if (it == transfers.end()) continue;
      std::unique_ptr<Transfer> t = std::move(it->second);
      transfers.erase(it);
      curl_multi_remove_handle(multi, easy);
      finish(*t, code);
      // Post: the caller's code runs outside libcurl's call stack.
      asio::post(io, [done = std::move(t->done), response = std::move(t->response)]() mutable {
        done(std::move(response));
      });
    }
  }

  static void finish(Transfer& t, CURLcode code) {
    Response& r = t.response;
    if (code == CURLE_OK) {
      r.transport = Transport::ok;
      curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &r.status);
      return;
    }
    r.status = 0;
    r.body.clear();
    if (t.withheld) {
      r.transport = Transport::withheld;
      r.error = *t.withheld;
      return;
    }
    long request_bytes = 0;
    curl_easy_getinfo(t.easy, CURLINFO_REQUEST_SIZE, &request_bytes);
    r.transport = request_bytes > 0 ? Transport::no_answer : Transport::not_sent;
    const std::string detail = t.error_buffer[0] ? t.error_buffer : curl_easy_strerror(code);
    if (t.body_too_large) {
      // Which call, and why it could be: the path names the endpoint (no query, which may
      // carry what a user typed).
      const std::string& url = t.request.url;
      const std::string path = url.substr(0, url.find('?'));
      r.error = fmt::format(
          "the answer to {} {} was larger than {} MiB, the most this tool reads in one answer: a "
          "page this large holds very long texts (a device's name, tags, or the comment of an "
          "update sent to it earlier)",
          t.request.method, path, kMaxBodyBytes / (1024 * 1024));
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
      r.error = fmt::format("no answer within {} ms ({})", t.request.timeout.count(), detail);
    } else {
      r.error = detail;
    }
  }

  asio::io_context& io;
  asio::steady_timer timer;
  CURLM* multi = nullptr;
  std::map<CURL*, std::unique_ptr<Transfer>> transfers;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
};

CurlClient::CurlClient(asio::io_context& io) : impl_(std::make_unique<Impl>(io)) {}
CurlClient::~CurlClient() = default;

std::size_t CurlClient::in_flight() const {
  return impl_->transfers.size();
}

void CurlClient::cancel_idempotent() {
  for (auto it = impl_->transfers.begin(); it != impl_->transfers.end();) {
    if (!it->second->request.idempotent) {
      ++it;
      continue;
    }
    std::unique_ptr<Transfer> t = std::move(it->second);
    it = impl_->transfers.erase(it);
    curl_multi_remove_handle(impl_->multi, t->easy);
    Response cancelled;
    cancelled.transport = Transport::cancelled;
    cancelled.error = "cancelled";
    asio::post(impl_->io, [done = std::move(t->done), cancelled]() { done(cancelled); });
  }
}

void CurlClient::send(Request request, std::function<void(Response)> done) {
  auto t = std::make_unique<Transfer>();
  t->request = std::move(request);
  t->done = std::move(done);
  t->easy = curl_easy_init();
  CURL* e = t->easy;
  const Request& r = t->request;
  curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(r.timeout.count()));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(r.connect_timeout.count()));
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);  // never turned off
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "rollout/" ROLLOUT_VERSION);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error_buffer);
  curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, &before_request);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, t.get());
  if (!r.idempotent) {
    // Never on a connection that was used before, never one left for later, never HTTP/2:
    // libcurl's own re-send ("Connection died, retrying a fresh connect") happens only on a
    // reused connection or a refused HTTP/2 stream, so it cannot happen to this request.
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  }
  t->headers = curl_slist_append(t->headers, "Content-Type: application/json");
  t->headers = curl_slist_append(t->headers, "Accept: application/json");
  t->headers = curl_slist_append(t->headers, "Expect:");  // no 100-continue round trip
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  if (r.method == "POST" || !r.body.empty()) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(r.body.size()));
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, r.body.c_str());
    // Upswift's GET calls carry a JSON body: a GET request line with a body.
    if (r.method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
  }
  CURL* key = e;
  impl_->transfers.emplace(key, std::move(t));
  const CURLMcode added = curl_multi_add_handle(impl_->multi, key);
  if (added != CURLM_OK) {
    auto node = impl_->transfers.extract(key);
    Response failed;
    failed.transport = Transport::not_sent;
    failed.error = curl_multi_strerror(added);
    asio::post(impl_->io, [done = std::move(node.mapped()->done), failed]() { done(failed); });
  }
}

}  // namespace rollout::http
