// The state database's migrations, compiled in from schema/migrations/sqlite/ and
// schema/migrations/postgresql/, each in file order. Migration N takes a database from
// schema version N-1 to N (SQLite: PRAGMA user_version; PostgreSQL: rollout_schema).
#pragma once

#include <string_view>
#include <vector>

namespace rollout::store {

struct Migration {
  std::string_view file;
  std::string_view sql;
};

const std::vector<Migration>& sqlite_migrations();
const std::vector<Migration>& postgres_migrations();

}  // namespace rollout::store
