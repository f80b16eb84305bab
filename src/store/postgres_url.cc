// What a PostgreSQL state URL may carry, and how messages show it: plain string work, in a
// build with or without libpq.
#include "store/postgres_url.h"

#include <algorithm>

#include <fmt/format.h>

#include "util/safe_text.h"

namespace rollout::store {

namespace {

bool has_password_parameter(const std::string& url) {
  const std::size_t query = url.find('?');
  if (query == std::string::npos) return false;
  std::size_t at = query + 1;
  while (at < url.size()) {
    const std::size_t end = std::min(url.find('&', at), url.size());
    if (url.compare(at, 9, "password=") == 0 || url.compare(at, 12, "sslpassword=") == 0)
      return true;
    at = end + 1;
  }
  return false;
}

}  // namespace

std::optional<std::string> postgres_url_refusal(const std::string& url) {
  const auto info = url_user_info(url);
  if ((info &&
       url.substr(info->first, info->second - info->first).find(':') != std::string::npos) ||
      has_password_parameter(url)) {
    return fmt::format(
        "the state URL {} carries a password: give it in PGPASSWORD, ~/.pgpass or a "
        "service file instead (a password in a URL ends up in shell histories, process lists "
        "and logs); nothing was changed",
        redact_postgres_url(url));
  }
  return std::nullopt;
}

std::string redact_postgres_url(const std::string& url) {
  std::string out = url;
  if (const auto info = url_user_info(out)) {
    const std::size_t colon = out.find(':', info->first);
    if (colon != std::string::npos && colon < info->second)
      out.replace(colon + 1, info->second - colon - 1, "***");
  }
  for (std::size_t at = out.find("password="); at != std::string::npos;
       at = out.find("password=", at + 1)) {
    const std::size_t end = std::min(out.find('&', at), out.size());
    out.replace(at + 9, end - at - 9, "***");
  }
  return out;
}

}  // namespace rollout::store
