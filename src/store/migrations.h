// The state database's migrations, compiled in from schema/migrations/ in file order.
// Migration N takes the database from PRAGMA user_version N-1 to N.
#pragma once

#include <string_view>
#include <vector>

namespace rollout::store {

struct Migration {
  std::string_view file;
  std::string_view sql;
};

const std::vector<Migration>& migrations();

}  // namespace rollout::store
