// A PostgreSQL state URL: what it may not carry (a password) and how messages show it.
// No libpq: a build without PostgreSQL still refuses and redacts such URLs.
#pragma once

#include <optional>
#include <string>

namespace rollout::store {

// Why `url` cannot name a state database (it carries a password, it is no URL), or nullopt.
std::optional<std::string> postgres_url_refusal(const std::string& url);

// `url` as messages may show it: any password replaced by "***".
std::string redact_postgres_url(const std::string& url);

}  // namespace rollout::store
