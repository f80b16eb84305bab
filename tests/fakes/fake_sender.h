// A webhook receiver as the notifier sees it: every request is kept with its time, and the
// test answers each (a status, or a transport failure) when it likes, or lets it hang.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "http/curl_client.h"
#include "util/clock.h"

namespace rollout::test {

class FakeSender : public http::Sender {
 public:
  explicit FakeSender(const Clock& clock) : clock_(clock) {}

  struct Sent {
    http::Request request;
    WallTime at;
  };
  std::vector<Sent> sent;

  void send(http::Request request, std::function<void(http::Response)> done) override {
    sent.push_back({request, clock_.now()});
    waiting_.push_back(std::move(done));
  }

  std::size_t unanswered() const { return waiting_.size(); }

  // Answers the oldest request still waiting.
  void answer(long status) {
    http::Response r;
    r.status = status;
    take()(r);
  }
  void fail(const std::string& why) {
    http::Response r;
    r.transport = http::Transport::not_sent;
    r.error = why;
    take()(r);
  }

 private:
  std::function<void(http::Response)> take() {
    auto done = std::move(waiting_.front());
    waiting_.pop_front();
    return done;
  }
  const Clock& clock_;
  std::deque<std::function<void(http::Response)>> waiting_;
};

}  // namespace rollout::test
