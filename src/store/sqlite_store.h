// The state in a SQLite file (WAL, synchronous=FULL: an intent that was committed survives
// a crash or a power cut): the default, for one machine. sqlite3 lives in store/ only.
#pragma once

#include <string>

#include "store/sql_store.h"

namespace rollout::store {

class SqliteStore : public SqlStore {
 public:
  // Opens and migrates; creates the file only when `create` (a new run does; commands that
  // read or continue runs must not leave an empty database behind a mistyped path). Refuses
  // a database whose schema is newer than this build knows. ":memory:" for tests.
  explicit SqliteStore(const std::string& path, bool create = true);

  static int latest_schema_version();
  std::string integrity_check();
};

}  // namespace rollout::store
