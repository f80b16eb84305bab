// `rollout state migrate`: every run of one state database copied into another (SQLite to
// PostgreSQL, or back), in one transaction of the destination that commits only once every
// table's row count and content hash match the source's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/sql_store.h"
#include "util/clock.h"

namespace rollout::store {

struct CopiedTable {
  std::string name;
  std::int64_t rows = 0;
  std::string sha256;  // of the rows' contents (ids that each database numbers itself aside)
};

struct CopyReport {
  std::vector<std::string> runs;
  std::vector<CopiedTable> tables;
};

// Copies every run of `from` into `to`. Refused, with nothing written, when `from` holds a
// run that a process runs now (a lease heard from within `stale_after` of `now`), or when a
// run is in `to` already. Throws StoreError saying why.
CopyReport copy_state(SqlStore& from, SqlStore& to, WallTime now, Millis stale_after);

}  // namespace rollout::store
