// Before a run's first deploy_update (apply, and resume of a run that never started): the
// plan's projects and groups read from the API (preview/preflight.h). What cannot work is
// refused with exit 2, naming the stage and field, before anything is written or sent.
#include <csignal>
#include <iostream>

#include <fmt/format.h>

#include "cli/error.h"
#include "cli/exit_codes.h"
#include "cli/session.h"
#include "preview/preflight.h"

namespace rollout::cli {

void preflight(const plan::Plan& plan, const std::string& url, const runner::ApiOptions& api,
               const std::string& what_now) {
  asio::io_context io;
  auto connection = ApiConnection::open(io, plan, url, api);
  std::optional<upswift::Result<std::vector<preview::Finding>>> checked;
  connection->client().set_retry_notice([](const client::UpswiftClient::RetryNotice& n) {
    std::cerr << "rollout: " << describe_retry(n) << "\n";
  });
  // Ctrl-C ends its reads (a slow server, an unreachable one being retried) at once.
  bool interrupted = false;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    interrupted = true;
    connection->api().cancel_reads();
  });
  preview::preflight(connection->api(), plan,
                     [&](upswift::Result<std::vector<preview::Finding>> r) {
                       checked = std::move(r);
                       signals.cancel();
                     });
  io.run();
  if (interrupted) {
    throw CommandError(kExitInterrupted,
                       "interrupted while reading the plan's projects and groups from the API, "
                       "before the first deploy_update: no run was started, nothing was sent");
  }
  if (!checked || !checked->ok()) {
    throw CommandError(
        kExitError,
        fmt::format("could not read the plan's projects and groups from the API before the "
                    "first deploy_update: {}; nothing was sent",
                    checked ? checked->error.message : "no answer"));
  }
  if (checked->value->empty()) return;
  throw CommandError(
      kExitInvalidInput,
      fmt::format("plan '{}' cannot work against {}:\n{}Nothing was sent. {}", plan.name,
                  url.rfind(kSimulated, 0) == 0 ? "the simulated fleet" : url,
                  preview::describe(*checked->value), what_now));
}

}  // namespace rollout::cli
