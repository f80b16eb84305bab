// The state database a test runs on: SQLite by default; PostgreSQL when
// ROLLOUT_TEST_STATE=postgresql, on the throw-away server whose directory
// ROLLOUT_TEST_PG_DIR names (scripts/pg.sh: its `url` and `password`), a fresh database per
// call. The same tests then run on both backends: parameterised, not copied.
#pragma once

#if ROLLOUT_WITH_POSTGRESQL
#include <libpq-fe.h>
#endif

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <unistd.h>

#include "store/sql_store.h"
#include "store/sqlite_store.h"

namespace rollout::test {

inline bool on_postgres() {
  const char* backend = std::getenv("ROLLOUT_TEST_STATE");
  return backend && std::string(backend) == "postgresql";
}

inline std::string read_line(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  return line;
}

// The server's URL without its database ("postgresql://rollout@127.0.0.1:PORT/"); sets
// PGPASSWORD from the server's directory. Throws when there is no server: a test that was
// asked to run on PostgreSQL never passes on SQLite instead.
inline std::string postgres_server() {
  const char* dir = std::getenv("ROLLOUT_TEST_PG_DIR");
  if (!dir || !*dir) {
    throw std::runtime_error(
        "ROLLOUT_TEST_STATE=postgresql needs ROLLOUT_TEST_PG_DIR (scripts/pg.sh start DIR)");
  }
  const std::string url = read_line(std::filesystem::path(dir) / "url");
  if (url.empty()) throw std::runtime_error(fmt::format("no server's url in {}", dir));
  setenv("PGPASSWORD", read_line(std::filesystem::path(dir) / "password").c_str(), 1);
  return url.substr(0, url.rfind('/') + 1);
}

// A new, empty PostgreSQL database on the test server; its URL.
inline std::string new_postgres_database() {
#if !ROLLOUT_WITH_POSTGRESQL
  throw std::runtime_error("ROLLOUT_TEST_STATE=postgresql in a build without PostgreSQL");
#else
  static std::atomic<int> counter{0};
  const std::string server = postgres_server();
  const std::string name = fmt::format("t_{}_{}", getpid(), ++counter);
  PGconn* admin = PQconnectdb((server + "postgres").c_str());
  if (PQstatus(admin) != CONNECTION_OK) {
    const std::string why = PQerrorMessage(admin);
    PQfinish(admin);
    throw std::runtime_error("the test server: " + why);
  }
  PGresult* r = PQexec(admin, fmt::format("CREATE DATABASE {}", name).c_str());
  const bool made = PQresultStatus(r) == PGRES_COMMAND_OK;
  const std::string why = PQerrorMessage(admin);
  PQclear(r);
  PQfinish(admin);
  if (!made) throw std::runtime_error("CREATE DATABASE: " + why);
  return server + name;
#endif
}

// Where a test's state lives: a fresh SQLite file named after `name`, or a fresh PostgreSQL
// database. Two stores opened on it share it (two processes).
inline std::string fresh_state_location(const std::string& name) {
  if (on_postgres()) return new_postgres_database();
  auto p =
      std::filesystem::temp_directory_path() / fmt::format("rollout-test-{}-{}.db", name, getpid());
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(p.string() + suffix);
  return p.string();
}

// A fresh store: SQLite in memory, or a fresh PostgreSQL database.
inline std::unique_ptr<store::SqlStore> fresh_store() {
  if (on_postgres()) return store::open_state(new_postgres_database(), true);
  return std::make_unique<store::SqliteStore>(":memory:");
}

// SQLite's own check where the store is SQLite's; PostgreSQL keeps its own consistency.
inline bool integrity_ok(store::SqlStore& s) {
  if (auto* sqlite = dynamic_cast<store::SqliteStore*>(&s))
    return sqlite->integrity_check() == "ok";
  return true;
}

}  // namespace rollout::test
