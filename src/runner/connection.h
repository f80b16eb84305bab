// What a run talks to: Upswift, a simulator over HTTP, or an in-process simulator for a
// "simulated:" run; always through the libcurl client. And where a run's clock starts.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "client/upswift_client.h"
#include "plan/model.h"
#include "state/store.h"
#include "util/asio.h"
#include "util/time.h"

namespace rollout::runner {

struct ApiOptions {
  std::string simulate_fleet;     // --simulate FLEET: an in-process simulator
  double time_scale = 1.0;        // --time-scale: simulated fleets only
  bool time_scale_given = false;  // ... said by the person (else the run's own)
  // A run against an in-process simulator keeps what its fleet applied here, so that the
  // run can go on in another process (resume, approve, retry, abort --rollback); set by
  // run_api_options. Empty: the fleet lives only as long as the process (rollout plan).
  std::string sim_journal;
  // The run has sent calls: its fleet changed, and a missing record cannot be rebuilt.
  bool sim_journal_required = false;
  WallTime sim_start{};  // where the simulated fleet's clock starts (the run's clock too)
};

// A run's API URL for an in-process simulator: this, then the fleet file's path.
inline constexpr std::string_view kSimulated = "simulated:";

// The API URL a new run of `plan` records: "simulated:FLEET" with a simulated fleet, else
// the plan's api.url, else UPSWIFT_API_URL, else Upswift's.
std::string run_api_url(const plan::Plan& plan, const ApiOptions& api);

// Why a run cannot go to `url` with these options (no token, --time-scale off a simulator,
// plain http off loopback), or nullopt. Asked before anything is written, and again when a
// process of the run opens its connection.
std::optional<std::string> api_refusal(const std::string& url, const ApiOptions& api);

// Where a run against an in-process simulator keeps its fleet: beside a SQLite state file
// (`state` is the state's path or URL); for a PostgreSQL state, in $XDG_STATE_HOME (else
// ~/.local/state)/rollout/sim/ of the machine that ran it.
std::string sim_journal_path(const std::string& state, const std::string& run_id);

// The API options for a process of `run`: where its clock starts (a time-scaled run goes
// on from its records), and for a simulated run, where its fleet is kept.
ApiOptions run_api_options(state::StateStore& store, const std::string& state,
                           const state::RunRecord& run, const ApiOptions& given);

// "API not answering as it should: devices_details: ...; try 3 of 8 in 4.0 s".
std::string describe_retry(const client::UpswiftClient::RetryNotice& n);

class InProcessSim;

class ApiConnection {
 public:
  ~ApiConnection();
  upswift::FleetApi& api() { return *client_; }
  client::UpswiftClient& client() { return *client_; }
  // Where the run's clock starts: options.sim_start, or, for a simulated fleet whose
  // journal goes further, the journal's last time (the fleet's time never goes back).
  WallTime start() const { return start_; }

  // Throws RunError saying why, when it cannot.
  static std::unique_ptr<ApiConnection> open(asio::io_context& io, const plan::Plan& plan,
                                             const std::string& url, const ApiOptions& options);

 private:
  ApiConnection() = default;
  std::unique_ptr<InProcessSim> sim_;
  std::unique_ptr<client::UpswiftClient> client_;
  WallTime start_{};
};

}  // namespace rollout::runner
