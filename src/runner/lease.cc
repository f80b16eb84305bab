#include "runner/lease.h"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>

#include <fmt/format.h>

namespace rollout::runner {

Millis lease_stale_after() {
  if (const char* test = std::getenv("ROLLOUT_TEST_LEASE_MS"); test && std::atoi(test) > 0)
    return Millis{std::atoi(test)};
  return Millis{30000};
}

std::string current_user() {
  if (const passwd* pw = getpwuid(geteuid()); pw && pw->pw_name) return pw->pw_name;
  if (const char* user = std::getenv("USER")) return user;
  return fmt::format("uid {}", geteuid());
}

state::LeaseOwner this_process() {
  // $HOSTNAME where it is exported (containers set it to their name), else the machine's.
  if (const char* named = std::getenv("HOSTNAME"); named && *named)
    return {named, static_cast<std::int64_t>(getpid()), current_user()};
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return {host, static_cast<std::int64_t>(getpid()), current_user()};
}

bool process_is_gone(const state::LeaseOwner& owner) {
  return owner.host == this_process().host && ::kill(static_cast<pid_t>(owner.pid), 0) != 0 &&
         errno == ESRCH;
}

std::optional<state::Lease> try_lease(state::StateStore& store, const std::string& run_id) {
  const state::LeaseOwner me = this_process();
  const WallTime now = std::chrono::system_clock::now();
  auto held = store.acquire_lease(run_id, me, now, lease_stale_after());
  if (held && process_is_gone(held->owner)) {
    // Its owner on this machine is gone: the lease is stale whatever its heartbeat says.
    held = store.acquire_lease(run_id, me, now, lease_stale_after(), /*take_over=*/true);
  }
  return held;
}

state::RunClaim run_claim(bool allow_concurrent) {
  state::RunClaim claim{
      this_process(), std::chrono::system_clock::now(), lease_stale_after(), allow_concurrent, {}};
  claim.owner_gone = [](const state::LeaseOwner& owner) { return process_is_gone(owner); };
  return claim;
}

}  // namespace rollout::runner
