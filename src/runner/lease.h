// Who runs a run: this process's claim on a run's lease, and whether another's holder is gone.
// Every process that drives a run (apply, resume, retry, abort --rollback, a worker) claims it
// the same way; the engine's heartbeat keeps it.
#pragma once

#include <optional>
#include <string>

#include "state/store.h"
#include "util/time.h"

namespace rollout::runner {

// A run's lease goes stale this long after its last heartbeat (30 s): another process may
// take the run over then, and the one that held it stops at its next write or send.
// ROLLOUT_TEST_LEASE_MS shortens it for the freeze-and-takeover tests.
Millis lease_stale_after();

// Who this process is in a lease: $HOSTNAME (else the machine's name), pid, user. Only a
// lease of the same host can be told dead by its pid; others go stale.
state::LeaseOwner this_process();
// The OS user this process runs as (getpwuid(geteuid()); $USER only where the system has no
// entry for it).
std::string current_user();

// The lease's owner runs on this host and its pid no longer exists. Elsewhere nobody can
// tell: only the heartbeat's age says.
bool process_is_gone(const state::LeaseOwner& owner);

// Takes the run's lease (over a dead process's on this host, too); nullopt when it did,
// else the lease of the process that holds it.
std::optional<state::Lease> try_lease(state::StateStore& store, const std::string& run_id);

// How this process claims a run: for a new run's check of a live run beside it, and the
// same check when an existing run goes on (dead owners on this host hold nothing back).
state::RunClaim run_claim(bool allow_concurrent);

}  // namespace rollout::runner
