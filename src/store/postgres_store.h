// The state on a PostgreSQL server a team shares: every machine that runs, approves, watches
// or resumes rollouts points at one database. libpq lives in store/ only.
#pragma once

#include <optional>
#include <string>

#include "store/postgres_url.h"
#include "store/sql_store.h"
#include "util/clock.h"

namespace rollout::store {

class PostgresStore : public SqlStore {
 public:
  // Connects to `url` (postgresql://USER@HOST:PORT/DB?sslmode=...) and migrates its
  // database, which must exist. The password comes from PGPASSWORD, ~/.pgpass or a service
  // file: a URL that carries one is refused (it would sit in argv, shell histories and
  // logs), and no message ever shows it. Refuses a schema newer than this build knows. A
  // server that does not answer a statement within `answer_timeout` is an error (StoreError),
  // and the connection is given up: a frozen server stops the run instead of hanging it.
  // A connection lost between transactions (the server restarted, a network blip) is made
  // again, with backoff, for up to `reconnect_for` before that is an error too; one lost
  // inside a transaction is an error at once (what it wrote is rolled back by the server).
  explicit PostgresStore(const std::string& url, Millis answer_timeout = std::chrono::seconds(30),
                         Millis reconnect_for = std::chrono::seconds(60));

  static int latest_schema_version();
};

}  // namespace rollout::store
